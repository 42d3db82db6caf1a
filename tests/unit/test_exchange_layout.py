"""The local exchange's modules stay small and say what they are for."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

EXCHANGE = Path(__file__).resolve().parents[2] / "src" / "alchemiser" / "exchange"
MAX_LINES = 450
MODULES = sorted(EXCHANGE.glob("*.py"))


def test_the_exchange_has_modules() -> None:
    assert len(MODULES) > 1


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_each_module_starts_with_a_docstring(module: Path) -> None:
    docstring = ast.get_docstring(ast.parse(module.read_text(encoding="utf-8")))
    assert docstring, f"{module.name} has no module docstring"
    assert docstring.splitlines()[0].strip(), f"{module.name}: the first line says nothing"


@pytest.mark.parametrize("module", MODULES, ids=lambda path: path.name)
def test_each_module_is_under_the_line_limit(module: Path) -> None:
    lines = len(module.read_text(encoding="utf-8").splitlines())
    assert lines < MAX_LINES, f"{module.name} has {lines} lines (limit {MAX_LINES})"
