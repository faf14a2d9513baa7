"""The package's shape, as tests: no function grows past a screen (issue 19).

A long function is where gathering, deciding and writing get mixed; the reconcilers are split
into gather -> pure plan -> apply so each part fits. Declarative data (a manifest written out in
full) may be longer: list it in ``DECLARATIVE`` with the reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "weavergen"
MAX_LINES = 60
DECLARATIVE: dict[str, str] = {}  # "module.py:function": why it is data, not logic


def functions(root: Path) -> list[tuple[str, int]]:
    """Every function and method under ``root``: (``path:name``, its length in lines)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None
                where = f"{path.relative_to(root)}:{node.name}"
                found.append((where, node.end_lineno - node.lineno + 1))
    return found


def test_no_function_in_the_package_is_longer_than_a_screen() -> None:
    measured = functions(PACKAGE)
    assert len(measured) > 500, "the scan found too few functions to mean anything"
    too_long = {w: n for w, n in measured if n > MAX_LINES and w not in DECLARATIVE}
    assert not too_long, f"over {MAX_LINES} lines (split them): {too_long}"


def test_the_scan_measures_methods_sync_and_async(tmp_path: Path) -> None:
    body = "        x = 1\n" * MAX_LINES
    (tmp_path / "m.py").write_text(
        f"class C:\n    def long(self):\n{body}\n    async def short(self):\n        pass\n"
    )
    assert functions(tmp_path) == [("m.py:long", MAX_LINES + 1), ("m.py:short", 2)]
