"""Every output the commands write by default is ignored by git, so running them in a
checkout never leaves a dirty tree or a file a careless `git add .` would commit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

OUTPUTS = [
    ".alchemiser/ledger.jsonl",  # run / invoke: the local ledger and state
    ".alchemiser/idempotency.json",
    "backtest-output/equity.png",  # backtest --out default
    "backtest-output/summary.json",
    "build/layer/python/numpy/__init__.py",  # make build
    "build/functions/worker/alchemiser/__init__.py",
    ".aws-sam/build/template.yaml",  # sam deploy's packaged template
    "htmlcov/index.html",  # make coverage
    ".coverage",
    ".venv/bin/python",  # make's environment
    ".tools/bin/uv",
    ".hypothesis/examples/x",
    "src/alchemiser/__pycache__/cli.cpython-312.pyc",
    "alchemiser.egg-info/PKG-INFO",
]


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout"
)
@pytest.mark.parametrize("path", OUTPUTS)
def test_command_outputs_are_ignored(path: str) -> None:
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "--quiet", path],
        cwd=ROOT,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, f"{path} is not ignored by .gitignore"
