"""The boundaries in docs/ARCHITECTURE.md, checked on the source itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "alchemiser"
PURE = ["domain", "strategy", "portfolio"]
FORBIDDEN_IMPORTS = {
    "boto3",
    "botocore",
    "alpaca",
    "requests",
    "logging",
    "os",
    "time",
    "aws_lambda_powertools",
    "alchemiser.adapters",
    "importlib",
    "pathlib",
    "io",
    "alchemiser.service",
    "alchemiser.handlers",
}
FORBIDDEN_CALLS = {"now", "today", "utcnow", "getenv", "sleep", "read_text", "read_bytes", "open"}


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize(
    "path", [p for f in PURE for p in _modules(f)], ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_pure_core_does_no_io(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert not any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IMPORTS), (
                path,
                name,
            )
        if isinstance(node, ast.Attribute):
            assert node.attr not in FORBIDDEN_CALLS, (path, node.attr, node.lineno)


def test_no_sleep_bare_except_or_print_in_package() -> None:
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ExceptHandler):
                assert node.type is not None, f"bare except in {path}:{node.lineno}"
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "sleep"
                and isinstance(node.value, ast.Name)
            ):
                assert node.value.id != "time", f"time.sleep in {path}:{node.lineno}"
