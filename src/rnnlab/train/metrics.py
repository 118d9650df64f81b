"""metrics.jsonl: one JSON object per line, appended as the run goes, truncatable on resume."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from rnnlab.errors import RnnlabError


def _clean(value):
    # JSON has no inf/nan: write them as strings a reader can still parse with float().
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, float):
        return round(value, 6)
    return value


class MetricsLog:
    """Append-only JSON-lines log.

    Args:
        path: the file; created if absent.
        truncate_to: on resume, cut the file back to this many bytes (what it held at the checkpoint),
            so the lines an interrupted run wrote after its checkpoint are written again, once.
    """

    def __init__(self, path: str | Path, truncate_to: int | None = None):
        self.path = Path(path)
        if truncate_to is not None and self.path.exists():
            with open(self.path, "rb+") as f:
                f.truncate(truncate_to)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (lives as long as the run)

    def write(self, event: str, **values) -> None:
        record = {"event": event, **{k: _clean(v) for k, v in values.items()}}
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()

    def size(self) -> int:
        self._file.flush()
        return os.path.getsize(self.path)

    def close(self) -> None:
        self._file.close()


def read_metrics(path: str | Path) -> list[dict]:
    """All records of a metrics.jsonl; a torn last line (a crash mid-write) is skipped."""
    path = Path(path)
    if not path.exists():
        raise RnnlabError(f"{path} does not exist; is this a run directory?")
    records = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i != len(lines) - 1:
                raise RnnlabError(f"{path} line {i + 1} is not JSON; was the file edited?") from e
    return records
