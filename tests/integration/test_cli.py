"""The ``alchemiser`` command end to end, in a fresh process, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def alchemiser(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "alchemiser.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_run_prints_every_section_and_converges(tmp_path: Path) -> None:
    first = alchemiser("run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    for section in (
        "Target weights",
        "Account before",
        "Order intents (",
        "Risk review",
        "Orders:",
        "Account after",
        "Status: COMPLETED",
    ):
        assert section in first.stdout
    assert (tmp_path / ".alchemiser" / "sim-demo.json").exists()
    second = alchemiser("run", "--json", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["status"] == "noop"
    assert report["orders"] == []
    # Nothing traded: the same cash and shares. At the open the plan values them at the
    # closes it decided on (the session before), the account after at the broker's
    # prices now, so only the prices differ.
    before, after = report["account_before"], report["account_after"]
    assert before["cash"] == after["cash"]
    assert [(p["symbol"], p["qty"]) for p in before["positions"]] == [
        (p["symbol"], p["qty"]) for p in after["positions"]
    ]
    ledger = (tmp_path / ".alchemiser" / "ledger.jsonl").read_text().splitlines()
    statuses = [json.loads(line)["status"] for line in ledger]
    assert statuses == ["started", "completed", "started", "noop"]


def test_reset_starts_over(tmp_path: Path) -> None:
    assert alchemiser("run", cwd=tmp_path).returncode == 0
    again = alchemiser("run", "--reset", "--json", cwd=tmp_path)
    assert json.loads(again.stdout)["account_before"]["equity"] == "100000.00"
    assert "reset" in again.stderr


def test_json_report_contract(tmp_path: Path) -> None:
    report = json.loads(alchemiser("run", "--json", cwd=tmp_path).stdout)
    for key in (
        "run_id",
        "as_of",
        "mode",
        "targets",
        "intents",
        "decisions",
        "orders",
        "fills",
        "account_before",
        "account_after",
        "errors",
        "timings_ms",
    ):
        assert key in report
    assert {s["name"]: s["allocation"] for s in report["strategies"]} == {
        "nuclear": 0.3,
        "tecl": 0.5,
        "kmlm-switcher": 0.2,
    }
    for target in report["targets"].values():
        assert target["weight"] == pytest.approx(sum(target["attribution"].values()))
        assert set(target["attribution"]) <= {"nuclear", "tecl", "kmlm-switcher"}
    assert sum(t["weight"] for t in report["targets"].values()) == pytest.approx(1.0)
    order = report["orders"][0]
    assert order["client_order_id"].startswith(report["run_id"])
    assert order["status"] == "filled"
    assert {d["verdict"] for d in report["decisions"]} == {"approved"}


def test_a_session_without_data_fails_with_one_line(tmp_path: Path) -> None:
    result = alchemiser("run", "--as-of", "2026-08-01", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "DATA_MISSING" in result.stderr
    assert not (tmp_path / ".alchemiser" / "sim-demo.json").exists()


def test_bad_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[[strategies]]\nname = "x"\nallocation = 1\nweights = { SPY = 0.8, TLT = 0.4 }\n'
    )
    result = alchemiser("run", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "strategies[0].weights" in result.stderr
    assert "sum to 1.2" in result.stderr


def test_invoke_runs_the_real_handlers_with_the_environment_overridden(tmp_path: Path) -> None:
    """``alchemiser invoke`` (tests/integration/test_local_invoke.py has the details):
    ``--env`` reaches the functions, here the simulated account's state directory."""
    result = alchemiser(
        "invoke",
        str(ROOT / "events" / "market_open.json"),
        "--template",
        str(ROOT / "template.yaml"),
        "--env",
        f"ALCHEMISER_STATE_DIR={tmp_path / 'state'}",
        "--env",
        "ALCHEMISER_CONFIG=builtin:default",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "-- delivery 1: RebalanceFunction (alchemiser.handlers.worker.handler)" in result.stdout
    assert "status=completed" in result.stdout
    assert (tmp_path / "state" / "sim-demo.json").exists()
