"""The deployable stack without Docker or ``sam build``: one dependency layer, three lean
function directories, and ``.aws-sam/build/template.yaml`` pointing at them.

``make build`` runs ``python -m alchemiser.devstack.artifact``:

- ``build/layer/python/``: the locked runtime dependencies (``uv export`` of uv.lock, with
  hashes, minus ``EXCLUDED_DISTRIBUTIONS``) installed once for Lambda's python3.12 on
  arm64 (manylinux wheels only), with test directories and type stubs removed;
- ``build/functions/<LogicalId>/``: the ``alchemiser`` package minus ``DEV_ONLY``;
- both byte-compiled by a Python 3.12 interpreter (Lambda's) when one is found;
- ``.aws-sam/build/template.yaml``: template.yaml with each function's ``CodeUri`` and
  the layer's ``ContentUri`` pointing at those directories. It is the template
  ``sam deploy`` reads by default (where ``sam build`` would write it), so ``make build``
  then ``sam deploy`` deploys exactly what was built; ``sam build`` is not used (it
  would overwrite it with three copies of every dependency).

``make build-host`` runs it with ``--host --out build-host``: the same layer and functions
for the running interpreter and platform instead (bytecode from that interpreter, the
demo prices kept, no deploy template), for ``alchemiser invoke EVENT --artifact
build-host`` on a developer's machine. Never deploy it.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from alchemiser.devstack.layer import (
    EXCLUDED_DISTRIBUTIONS,
    export_requirements,
    filter_requirements,
    install_layer,
)

PACKAGE = "alchemiser"
LAYER_ID = "DependenciesLayer"
FUNCTION_IDS = ("OrchestratorFunction", "RebalanceFunction", "WatchdogFunction")
HANDLER_MODULES = (
    "alchemiser.handlers.orchestrator",
    "alchemiser.handlers.worker",
    "alchemiser.handlers.watchdog",
)
LAMBDA_PYTHON = (3, 12)

DEV_ONLY: tuple[str, ...] = (
    "alchemiser.exchange",  # the local exchange
    "alchemiser.devstack",  # the local stack and this build
    "alchemiser.backtest",
    "alchemiser.simulation",  # the backtest's session loop
    "alchemiser.reporting",  # backtest statistics, outputs and HTML pages
    "alchemiser.cli",
    "alchemiser.bench",
)
"""Modules (and packages, with everything under them) that only run on a developer's
machine. The one list: the function build leaves them out and a test fails if anything
it keeps imports one."""

FORBIDDEN_IMPORTS: tuple[str, ...] = (
    *(m for modules in EXCLUDED_DISTRIBUTIONS.values() for m in modules),
    "alpaca.trading",  # imports pandas
    "alpaca.data",  # imports pandas
    "matplotlib",  # backtest charts; not a runtime dependency
)
"""What no module of the function build may import (outside ``if TYPE_CHECKING:``)."""

# --- the functions -------------------------------------------------------------------


def module_name(path: Path, root: Path) -> str:
    """The dotted module name of ``path`` (a .py file or package directory) under ``root``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _matches(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def is_dev_only(name: str) -> bool:
    return _matches(name, DEV_ONLY)


NOT_CODE = ("requirements.txt", "__pycache__")
"""What ``src/`` holds for the build, not for the functions."""

DEMO_DATA = ("alchemiser/data/prices",)
"""The embedded default's demo prices (1.7 MB): the local demo's data. A deployed
function trades on the broker's market data, and a simulated run there has nothing to
check, so they stay out of the functions (a run that still asks for them fails closed
with a typed DataError naming the missing file)."""


def copy_function(source_root: Path, destination: Path, *, demo_data: bool = False) -> None:
    """Copy ``source_root`` (``src/``, the template's ``CodeUri``) to ``destination``:
    the ``alchemiser`` package without the ``DEV_ONLY`` modules, and whatever else is
    there (a deployed config, e.g. ``src/deploy/``, that ``ConfigPath`` names), without
    requirements, bytecode caches, ``*.pyi``, egg-info or (unless ``demo_data``, for a
    local run of the simulated default) ``DEMO_DATA``."""

    def ignore(directory: str, names: list[str]) -> set[str]:
        here = Path(directory)
        skipped = set()
        for name in names:
            path = here / name
            cache = name in NOT_CODE or name.endswith((".pyc", ".pyi", ".egg-info"))
            demo = not demo_data and path.relative_to(source_root).as_posix() in DEMO_DATA
            module = path.is_dir() or name.endswith(".py")
            if cache or demo or (module and is_dev_only(module_name(path, source_root))):
                skipped.add(name)
        return skipped

    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(source_root, destination, ignore=ignore)


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def _imports(tree: ast.AST, package: str) -> Iterator[tuple[int, str]]:
    """Every module an import statement names (relative ones resolved against
    ``package``), skipping ``if TYPE_CHECKING:`` blocks."""
    for node in ast.iter_child_nodes(tree):
        if _type_checking_only(node):
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # `from alchemiser import cli` names a module
                yield node.lineno, f"{base}.{alias.name}"
        yield from _imports(node, package)


def forbidden_imports(root: Path) -> list[str]:
    """Each import, in the modules under ``root``, of a ``DEV_ONLY`` module or a
    ``FORBIDDEN_IMPORTS`` one, as ``module:line imports name``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        reported: set[int] = set()
        for line, imported in _imports(tree, package):
            if line in reported:
                continue
            if is_dev_only(imported) or _matches(imported, FORBIDDEN_IMPORTS):
                found.append(f"{name}:{line} imports {imported}")
                reported.add(line)
    return found


# --- bytecode, sizes, template -------------------------------------------------------


def find_python(version: tuple[int, int], uv: Path | None = None) -> str | None:
    """An interpreter of exactly ``version``: ``python3.12`` on the PATH, ``uv python
    find``, or a pyenv install; None when there is none."""
    label = f"{version[0]}.{version[1]}"
    candidates: list[str] = []
    on_path = shutil.which(f"python{label}")
    if on_path:
        candidates.append(on_path)
    if uv is not None and uv.exists():
        found = subprocess.run(
            [str(uv), "python", "find", label],
            capture_output=True,
            text=True,
            check=False,
        )
        if found.returncode == 0 and found.stdout.strip():
            candidates.append(found.stdout.strip())
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(p) for p in sorted(pyenv.glob(f"{label}*/bin/python{label}"))]
    for candidate in candidates:
        probe = subprocess.run(
            [candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == label:
            return candidate
    return None


def compile_bytecode(root: Path, python: str) -> None:
    """Byte-compile every module under ``root`` with ``python``. Unchecked hashes: the
    deployed files never change, and Lambda's read-only code cannot be recompiled."""
    subprocess.run(
        [
            python,
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            str(root),
        ],
        check=True,
    )


@dataclass(frozen=True)
class Size:
    unzipped: int
    zipped: int


def measure(root: Path) -> Size:
    """The bytes of the files under ``root``, and of their deflated zip (as deployed)."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    unzipped = sum(p.stat().st_size for p in files)
    with tempfile.TemporaryFile() as handle:
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, path.relative_to(root).as_posix())
        zipped = handle.tell()
    return Size(unzipped, zipped)


def deploy_template(source: str, code: dict[str, str]) -> str:
    """template.yaml with the ``CodeUri``/``ContentUri`` of each resource in ``code``
    replaced, the rest byte for byte. Each named resource must have exactly one."""
    lines = source.splitlines(keepends=True)
    resource: str | None = None
    replaced: dict[str, int] = dict.fromkeys(code, 0)
    for index, line in enumerate(lines):
        header = re.match(r"^  ([A-Za-z0-9]+):\s*$", line)
        if header:
            resource = header.group(1)
            continue
        if re.match(r"^\S", line):
            resource = None
        uri = re.match(r"^(\s+)(CodeUri|ContentUri):\s*\S.*$", line)
        if uri and resource in code:
            lines[index] = f"{uri.group(1)}{uri.group(2)}: {code[resource]}\n"
            replaced[resource] += 1
    wrong = {name: count for name, count in replaced.items() if count != 1}
    if wrong:
        raise ValueError(f"expected one CodeUri/ContentUri per resource, found {wrong}")
    return "".join(lines)


def build_functions(
    source_root: Path, out: Path, python: str | None, *, demo_data: bool = False
) -> dict[str, Path]:
    """One code directory per function under ``out``; bytecode when ``python`` is given."""
    built = {}
    for logical_id in FUNCTION_IDS:
        destination = out / logical_id
        copy_function(source_root, destination, demo_data=demo_data)
        if python is not None:
            compile_bytecode(destination, python)
        built[logical_id] = destination
    return built


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:7.2f} MB"


def build(root: Path, uv: Path) -> int:
    out = root / "build"
    python = find_python(LAMBDA_PYTHON, uv)
    if python is None:
        print(
            "WARNING: no Python 3.12 interpreter found (python3.12, `uv python find 3.12`, "
            "pyenv): building WITHOUT bytecode. Lambda compiles in memory on each cold start.",
            file=sys.stderr,
        )
    sam = root / ".aws-sam" / "build"
    for stale in (out, sam):  # never deploy an older build, or a `sam build`
        if stale.exists():
            shutil.rmtree(stale)
    functions = build_functions(root / "src", out / "functions", python)
    problems = forbidden_imports(out / "functions" / FUNCTION_IDS[0])
    if problems:
        # Fail the build: a function importing what the layer leaves out would fail in
        # Lambda at run time, and no deploy template is written for it.
        print(
            "ERROR: the function code imports what the build leaves out (these imports "
            "would fail in Lambda); no deploy template written:",
            file=sys.stderr,
        )
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    requirements = filter_requirements(export_requirements(root, uv), EXCLUDED_DISTRIBUTIONS)
    (out / "requirements.txt").write_text(requirements, encoding="utf-8")
    layer = out / "layer"
    install_layer(requirements, layer / "python", uv)
    if python is not None:
        compile_bytecode(layer / "python", python)

    sam.mkdir(parents=True)
    relative = Path(os.path.relpath(out, sam))
    code = {name: f"{(relative / 'functions' / name).as_posix()}/" for name in functions}
    code[LAYER_ID] = f"{(relative / 'layer').as_posix()}/"
    template = deploy_template((root / "template.yaml").read_text(encoding="utf-8"), code)
    (sam / "template.yaml").write_text(template, encoding="utf-8")

    print(f"{'':24} {'unzipped':>10} {'zipped':>10}")
    for name, directory in [(LAYER_ID, layer), *functions.items()]:
        size = measure(directory)
        print(f"{name:24} {_megabytes(size.unzipped)} {_megabytes(size.zipped)}")
    print(f"bytecode: {python or 'none'}; deploy template: {sam / 'template.yaml'}")
    return 0


def build_host(root: Path, uv: Path, out: Path) -> Path:
    """The layer (``out/layer/python``) and the functions (``out/functions/``) for the
    running interpreter and platform: the same requirements and exclusions as ``build``,
    bytecode from this interpreter, the demo prices kept. For local runs only."""
    if out.exists():
        shutil.rmtree(out)
    requirements = filter_requirements(export_requirements(root, uv), EXCLUDED_DISTRIBUTIONS)
    out.mkdir(parents=True)
    (out / "requirements.txt").write_text(requirements, encoding="utf-8")
    install_layer(
        requirements,
        out / "layer" / "python",
        uv,
        python_version=None,
        python_platform=None,
        python=sys.executable,
    )
    compile_bytecode(out / "layer" / "python", sys.executable)
    build_functions(root / "src", out / "functions", sys.executable, demo_data=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--uv", type=Path, default=Path(".tools/bin/uv"))
    parser.add_argument(
        "--host",
        action="store_true",
        help="build for this interpreter and platform, for local runs (never deployed)",
    )
    parser.add_argument("--out", type=Path, help="with --host (default: build-host)")
    options = parser.parse_args(argv)
    root = options.root.resolve()
    uv = options.uv if options.uv.is_absolute() else root / options.uv
    if options.out is not None and not options.host:
        parser.error("--out is for --host (make build always writes build/)")
    if options.host:
        out = build_host(root, uv, (options.out or root / "build-host").resolve())
        print(
            f"host build ({sys.executable}): {out}; run it with "
            f"alchemiser invoke EVENT --artifact {out}"
        )
        return 0
    return build(root, uv)


if __name__ == "__main__":
    raise SystemExit(main())
