"""``alchemiser invoke --artifact``: the handlers run from a build (the host build, the
same layer and functions as ``make build`` for this machine's Python), each in an
isolated interpreter with only the function's directory and the layer on ``sys.path``."""

from __future__ import annotations

import re
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest

from alchemiser.devstack import child
from alchemiser.devstack.functions import FunctionSpec, lambda_environment
from alchemiser.devstack.runner import child_command, run_child
from tests.integration.test_local_invoke import (
    DEMO,
    EVENTS,
    assert_no_failure,
    invoke,
    ledger_rows,
    sections,
)

pytestmark = pytest.mark.integration

PROBE = """\
import importlib.util, sys


def handler(event, context):
    import alchemiser.handlers.orchestrator as orchestrator

    return {
        "handler_file": orchestrator.__file__,
        "pandas": importlib.util.find_spec("pandas") is not None,
        "flags": [sys.flags.isolated, sys.flags.no_site, sys.flags.dont_write_bytecode],
        "path": sys.path,
        "files": sorted({getattr(m, "__file__", None) or "" for m in list(sys.modules.values())}),
        "function": context.function_name,
    }
"""


def test_a_missing_build_is_refused_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "layer" / "python").mkdir(parents=True)
    result = invoke(str(EVENTS / "market_open.json"), "--artifact", str(tmp_path), cwd=tmp_path)
    assert result.returncode != 0
    assert "functions/OrchestratorFunction" in result.stdout + result.stderr
    assert "moto server" not in result.stdout


def test_the_child_command_is_isolated_only_with_a_layer(tmp_path: Path) -> None:
    plain = child_command("m.handler", tmp_path / "e", tmp_path / "r", tmp_path / "code", None)
    assert plain[:2] == [sys.executable, "-P"]
    assert plain[2].endswith("devstack/child.py")
    assert "--path" not in plain
    built = child_command("m.handler", tmp_path / "e", tmp_path / "r", tmp_path / "f", tmp_path)
    assert built[:4] == [sys.executable, "-I", "-S", "-B"]
    assert built[built.index("--path") + 1] == str(tmp_path / "f")
    assert built[len(built) - built[::-1].index("--path")] == str(tmp_path)


@pytest.mark.slow
def test_the_child_sees_only_the_function_and_the_layer(host_build: Path, tmp_path: Path) -> None:
    code = tmp_path / "Probe"
    shutil.copytree(host_build / "functions" / "OrchestratorFunction", code)
    (code / "probe.py").write_text(PROBE)
    layer = host_build / "layer" / "python"
    spec = FunctionSpec("Probe", "probe.handler", ".", 30, 256, {})
    env = lambda_environment(spec, code)
    invocation = run_child(spec, {}, env, code, tmp_path, layer=layer)
    assert invocation.ok, invocation.logs
    seen = invocation.response
    assert Path(seen["handler_file"]).is_relative_to(code)
    assert seen["pandas"] is False
    assert seen["flags"] == [1, 1, 1]
    assert seen["path"][:2] == [str(code), str(layer)]
    assert not [p for p in seen["path"] if "site-packages" in p]
    script = str(Path(child.__file__).resolve())  # __main__: the runtime's own entry
    outside = [
        f
        for f in seen["files"]
        if f and f != script and not any(Path(f).is_relative_to(p) for p in (code, layer))
    ]
    stdlib = [Path(sysconfig.get_paths()[key]) for key in ("stdlib", "platstdlib")]
    assert [f for f in outside if not any(Path(f).is_relative_to(s) for s in stdlib)] == []
    assert not [f for f in seen["files"] if "site-packages" in f]
    assert seen["function"] == "Probe"


@pytest.mark.slow
def test_the_sim_run_from_the_build(host_build: Path, tmp_path: Path) -> None:
    result = invoke(
        str(EVENTS / "market_open.json"), "--artifact", str(host_build), *DEMO, cwd=tmp_path
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "layer/python only (python -I -S" in out
    assert [name for name, _ in sections(out)] == ["OrchestratorFunction", "RebalanceFunction"]
    (_, worker) = sections(out)[1]
    assert "status=completed" in worker
    assert "RunSucceeded = 1" in worker
    (row,) = ledger_rows(out)
    assert re.match(r"\S+  demo  2026-07-31  completed  orders=[1-9]", row)
    assert "== exit 0" in out


@pytest.mark.slow
def test_the_not_configured_run_from_the_build(host_build: Path, tmp_path: Path) -> None:
    result = invoke(
        str(EVENTS / "market_open.json"),
        "--artifact",
        str(host_build),
        "--env",
        "ALCHEMISER_CONFIG=",
        cwd=tmp_path,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert [name for name, _ in sections(out)] == ["OrchestratorFunction"]
    (row,) = ledger_rows(out)
    assert re.match(r"\S+  default  2026-07-31  skipped  orders=0", row)
    assert "RunSkipped = 1" in out
    assert_no_failure(out)


@pytest.mark.slow
def test_the_alpaca_run_from_the_build(host_build: Path, tmp_path: Path) -> None:
    result = invoke(
        str(EVENTS / "market_open.json"), "--alpaca", "--artifact", str(host_build), cwd=tmp_path
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    accepted = int(re.search(r"the local exchange accepted (\d+) order", output).group(1))  # type: ignore[union-attr]
    assert accepted > 0
    (row,) = ledger_rows(result.stdout)
    assert "local-paper  2026-07-31  completed" in row
