"""The dependency layer of the deploy build: the locked runtime requirements minus what
no function imports, installed once as wheels for Lambda's platform, inert files removed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

LAMBDA_PLATFORM = "aarch64-manylinux_2_28"  # arm64, Amazon Linux 2023 (glibc 2.34)

EXCLUDED_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    # distribution: the top-level modules it installs
    "pandas": ("pandas",),  # alpaca-py's models and clients; the Lambda code uses RESTClient
    "pytz": ("pytz",),  # pandas
    "websockets": ("websockets",),  # alpaca-py's streaming
    "sseclient-py": ("sseclient",),  # alpaca-py's streaming
    "msgpack": ("msgpack",),  # alpaca-py's streaming
    "tqdm": ("tqdm",),  # the command line's progress bar; the CLI is not in the functions
}
"""Locked runtime dependencies the layer leaves out: nothing the functions run imports
them (``python -X importtime`` of the handlers and the Alpaca transport). ``tzdata`` stays:
``zoneinfo`` falls back to it for America/New_York where the runtime image has no system
time-zone database, and the market calendar cannot work without one."""
INERT_SUFFIXES = (".pyi",)
INERT_DIRECTORIES = ("tests",)  # a package's own test suite, never imported at run time
INERT_PATHS = (
    "numpy/f2py",  # the Fortran wrapper generator: a build tool, imported only on demand
    "numpy/_core/include",  # C headers for compiling extensions
    "numpy/random/_examples",  # example extension sources
)
"""Paths under the layer's root that no run imports."""


# --- requirements --------------------------------------------------------------------


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def filter_requirements(exported: str, excluded: Iterable[str]) -> str:
    """``uv export``'s requirements text without the ``excluded`` distributions: each
    requirement with its hashes and comments, the others verbatim (versions and hashes
    kept, so the install takes only the locked files)."""
    drop = {_normalise(name) for name in excluded}
    kept: list[str] = []
    skipping = False
    for line in exported.splitlines(keepends=True):
        if line[:1] not in ("", " ", "\t", "#", "\n", "\r"):
            match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
            if match is None:
                raise ValueError(f"unexpected requirement line: {line.rstrip()!r}")
            skipping = _normalise(match.group(0)) in drop
        elif line[:1] == "#":
            skipping = False
        if not skipping:
            kept.append(line)
    return "".join(kept)


def requirement_names(requirements: str) -> set[str]:
    """The normalised distribution names a requirements text pins."""
    names = set()
    for line in requirements.splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==", line)
        if match:
            names.add(_normalise(match.group(1)))
    return names


def export_requirements(root: Path, uv: Path) -> str:
    """The lock's runtime requirements with hashes (what ``make requirements`` writes)."""
    result = subprocess.run(
        [str(uv), "export", "--frozen", "--no-dev", "--no-emit-project", "--quiet"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


# --- the layer -----------------------------------------------------------------------


def install_layer(
    requirements: str,
    target: Path,
    uv: Path,
    *,
    python_version: str | None = "3.12",
    python_platform: str | None = LAMBDA_PLATFORM,
    python: str | None = None,
) -> None:
    """Install ``requirements`` (complete and hashed) into ``target``, no dependency
    resolution (so nothing excluded comes back), wheels only."""
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        listing = Path(scratch) / "requirements.txt"
        listing.write_text(requirements, encoding="utf-8")
        command = [
            str(uv),
            "pip",
            "install",
            "--quiet",
            "--target",
            str(target),
            "--no-deps",
            "--require-hashes",
            "--only-binary",
            ":all:",
            "--no-compile",
            "-r",
            str(listing),
        ]
        if python is not None:
            command += ["--python", python]
        if python_version is not None:
            command += ["--python-version", python_version]
        if python_platform is not None:
            command += ["--python-platform", python_platform]
        subprocess.run(command, check=True)
    strip_inert(target)


def strip_inert(root: Path) -> None:
    """Remove what nothing imports: packages' test directories, type stubs and
    ``INERT_PATHS``."""
    for relative in INERT_PATHS:
        shutil.rmtree(root / relative, ignore_errors=True)
    for directory in sorted(root.rglob("*"), reverse=True):
        inside_a_package = (directory.parent / "__init__.py").exists()
        if directory.is_dir() and directory.name in INERT_DIRECTORIES and inside_a_package:
            shutil.rmtree(directory)
    for path in root.rglob("*"):
        if path.is_file() and path.name.endswith(INERT_SUFFIXES):
            path.unlink()
