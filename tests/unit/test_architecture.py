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


LAMBDA_AND_CORE = [
    "handlers",
    "domain",
    "strategy",
    "portfolio",
    "execution",
    "adapters",
    "service.py",
    "bootstrap.py",
    "config.py",
    "ports.py",
    "errors.py",
]
TEST_PEERS = ("alchemiser.devstack", "alchemiser.exchange")
"""The local stack and the local exchange: local tools, never used by a run itself."""
DEVSTACK_MAX_LINES = 450


def _lambda_and_core_modules() -> list[Path]:
    paths: list[Path] = []
    for entry in LAMBDA_AND_CORE:
        target = PACKAGE / entry
        paths += [target] if target.suffix == ".py" else _modules(entry)
    return paths


def _imported(path: Path, node: ast.Import | ast.ImportFrom) -> list[str]:
    """Every module name ``node`` may import, relative imports resolved against ``path``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    module = node.module or ""
    if node.level:
        package = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if path.name != "__init__.py":
            package = package[:-1]
        base = package[: len(package) - (node.level - 1)]
        module = ".".join([*base, module] if module else base)
    return [module, *(f"{module}.{alias.name}" for alias in node.names)]


@pytest.mark.parametrize(
    "path", _lambda_and_core_modules(), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_lambda_and_core_never_import_the_local_stack_or_exchange(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):  # every import, those inside functions included
        if not isinstance(node, ast.Import | ast.ImportFrom):
            continue
        for name in _imported(path, node):
            assert not any(name == peer or name.startswith(peer + ".") for peer in TEST_PEERS), (
                path,
                name,
                node.lineno,
            )


def test_the_check_sees_every_import_form() -> None:
    source = (
        "import alchemiser.exchange\n"
        "from alchemiser import devstack\n"
        "def f():\n"
        "    from alchemiser.devstack.session import run\n"
    )
    path = PACKAGE / "handlers" / "example.py"
    found = [
        name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in _imported(path, node)
    ]
    assert "alchemiser.exchange" in found
    assert "alchemiser.devstack" in found
    assert "alchemiser.devstack.session" in found
    relative = ast.parse("from ..exchange import server\n").body[0]
    assert isinstance(relative, ast.ImportFrom)
    assert "alchemiser.exchange" in _imported(path, relative)


@pytest.mark.parametrize("path", _modules("devstack"), ids=lambda p: p.name)
def test_devstack_modules_are_documented_and_small(path: Path) -> None:
    text = path.read_text()
    assert ast.get_docstring(ast.parse(text)), f"{path.name} has no module docstring"
    lines = len(text.splitlines())
    assert lines < DEVSTACK_MAX_LINES, f"{path.name}: {lines} lines"


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path, known: set[str]) -> set[str]:
    """The package's modules ``path`` imports outside functions (``if TYPE_CHECKING:``
    blocks included: a cycle through type hints is still a knot in the design)."""
    module = _module_of(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    body = list(ast.parse(path.read_text()).body)
    while body:
        node = body.pop()
        if isinstance(node, ast.If | ast.Try):
            body.extend(node.body + node.orelse)
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        found.update(n for n in names if n in known and n != module)
    return found


def test_no_import_cycles() -> None:
    paths = sorted(PACKAGE.rglob("*.py"))
    known = {_module_of(p) for p in paths}
    graph = {_module_of(p): _top_level_imports(p, known) for p in paths}
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                cycle = (
                    [*trail[trail.index(target) :], target] if target in trail else [node, target]
                )
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*trail, target])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
