"""The house rules of ../shared/STYLE.md that a tool can check: one screen per concept.

A source file over 300 lines is usually two concepts, a function over 60 lines usually two steps.
Either may stay long with a reason: a ``# house: <why>`` comment in the file's first lines (a file) or
on the line above the ``def`` (a function).
"""

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "rnnlab"
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 60


def _sources() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _excused(lines: list[str], index: int) -> bool:
    """Whether line ``index`` (0-based) or the line above it carries a ``# house:`` reason."""
    return any("# house:" in lines[i] for i in (index - 1, index) if 0 <= i < len(lines))


def test_no_file_over_300_lines_without_a_reason():
    long = []
    for path in _sources():
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) > MAX_FILE_LINES and not any("# house:" in line for line in lines[:15]):
            long.append(f"{path.relative_to(SRC)}: {len(lines)} lines")
    assert not long, long


def _long_functions(text: str) -> list[tuple[str, int, int]]:
    """``(name, line, size)`` of every function over the limit that carries no reason."""
    lines, found = text.splitlines(), []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            size = node.end_lineno - node.lineno + 1
            if size > MAX_FUNCTION_LINES and not _excused(lines, first - 1):
                found.append((node.name, node.lineno, size))
    return found


def test_no_function_over_60_lines_without_a_reason():
    long = [
        f"{path.relative_to(SRC)}:{line} {name}: {size} lines"
        for path in _sources()
        for name, line, size in _long_functions(path.read_text(encoding="utf-8"))
    ]
    assert not long, long


def test_the_function_rule_sees_a_long_function_and_its_reason():
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert _long_functions(f"def f():\n{body}\n") == [("f", 1, MAX_FUNCTION_LINES + 1)]
    assert _long_functions(f"# house: one table, read top to bottom\ndef f():\n{body}\n") == []
    assert _long_functions(f"def f():\n{body[: body.rindex(chr(10))]}\n") == []


def test_no_dead_code():
    """vulture finds nothing unused that tests/vulture_whitelist.py does not justify."""
    whitelist = Path(__file__).with_name("vulture_whitelist.py")
    args = [sys.executable, "-m", "vulture", str(SRC), str(whitelist), "--min-confidence", "60"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
