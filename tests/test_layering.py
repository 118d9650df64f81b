"""The house: every layer imports only the layers below it, and no two files import each other.

The contracts live in pyproject.toml ([tool.importlinter]); import-linter checks them against the
package's real import graph.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = [
    sys.executable,
    "-c",
    "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
]


def _lint(src: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src)}  # this copy of rnnlab, not the installed one
    args = [*LINT, str(ROOT / "pyproject.toml"), "--no-cache"]
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_package_keeps_its_layers_and_has_no_cycles(tmp_path):
    result = _lint(ROOT / "src", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "back_up", "contract"),
    [
        ("nn/state.py", "import rnnlab.train.loop", "each layer imports only the layers below it BROKEN"),
        ("data/batches.py", "import rnnlab.cli", "each layer imports only the layers below it BROKEN"),
        ("train/optim.py", "import rnnlab.train.loop", "no import cycles between files BROKEN"),
        ("nn/dropout.py", "import rnnlab.config", "rnnlab.nn never reads a config BROKEN"),
    ],
)
def test_a_back_up_import_breaks_a_contract(tmp_path, module, back_up, contract):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "rnnlab", src / "rnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    with open(src / "rnnlab" / module, "a", encoding="utf-8") as f:
        f.write(f"\n{back_up}  # noqa\n")
    result = _lint(src, tmp_path)
    assert result.returncode != 0
    assert contract in result.stdout
