"""metrics.jsonl: one JSON object per line, appended as the run goes, truncatable on resume.

JSON has no nan or inf: they are written as the strings ``"nan"``, ``"inf"`` and ``"-inf"``
(:func:`json_number`), and :func:`read_metrics` turns them back into floats, wherever they sit (a list
such as the monitor's ``dldh`` included). Readers then test numbers with :func:`finite` alone.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from rnnlab.errors import RnnlabError

_NON_FINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
TEXT_KEYS = frozenset({"event", "text", "prefix", "reason", "error", "source", "unit"})  # never numbers


def json_number(value: float) -> float | str:
    """``value`` as the log stores it: finite floats as they are, nan/inf as strings."""
    return value if math.isfinite(value) else str(value)


def finite(value) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _clean(value):
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else json_number(value)
    return value


def _decode(value):
    if isinstance(value, str):
        return _NON_FINITE.get(value, value)
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
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
    """All records of a metrics.jsonl, nan/inf decoded; a torn last line (a crash mid-write) is skipped."""
    path = Path(path)
    if not path.exists():
        raise RnnlabError(f"{path} does not exist; is this a run directory?")
    records = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if i != len(lines) - 1:
                raise RnnlabError(f"{path} line {i + 1} is not JSON; was the file edited?") from e
            continue
        if isinstance(record, dict):
            record = {k: v if k in TEXT_KEYS else _decode(v) for k, v in record.items()}
        records.append(record)
    return records
