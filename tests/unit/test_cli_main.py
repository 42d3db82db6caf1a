"""``alchemiser`` in-process: the text report, exit codes and argument errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alchemiser.cli import main

CONFIG = """
account = "t"
trading_state = "{state}"
[[strategies]]
name = "core"
allocation = 1.0
weights = {{ SPY = 0.6, TLT = 0.4 }}
[risk]
max_order_notional = "{max_notional}"
"""


def _config(tmp_path: Path, state: str = "ACTIVE", max_notional: str = "1000000") -> str:
    path = tmp_path / "c.toml"
    path.write_text(CONFIG.format(state=state, max_notional=max_notional))
    return str(path)


def test_text_report_and_convergence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(tmp_path / "state")
    assert main(["run", "--config", _config(tmp_path), "--state-dir", state]) == 0
    first = capsys.readouterr().out
    assert "Target weights (core 100%)" in first
    assert "APPROVED" in first
    assert "Status: COMPLETED" in first
    assert main(["run", "--config", _config(tmp_path), "--state-dir", state]) == 0
    second = capsys.readouterr().out
    assert "Order intents: none" in second
    assert "within_band" in second
    assert "Status: NOOP" in second


def test_shrunk_and_denied_orders_are_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = str(tmp_path / "state")
    assert (
        main(["run", "--config", _config(tmp_path, max_notional="10000"), "--state-dir", state])
        == 0
    )
    assert "ORDER_NOTIONAL_EXCEEDS_MAX" in capsys.readouterr().out
    assert main(["run", "--config", _config(tmp_path, state="HALTED"), "--state-dir", state]) == 0
    out = capsys.readouterr().out
    assert "DENIED" in out
    assert "TRADING_HALTED" in out


def test_failure_is_exit_1_with_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--as-of", "2026-08-01", "--state-dir", str(tmp_path), "--json"])
    captured = capsys.readouterr()
    assert code == 1
    assert json.loads(captured.out)["errors"][0]["code"] == "DATA_MISSING"
    assert captured.err.startswith("alchemiser: run failed: DATA_MISSING")


def test_time_travel_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = str(tmp_path / "state")
    assert main(["run", "--state-dir", state]) == 0
    assert main(["run", "--state-dir", state, "--as-of", "2026-07-01"]) == 2
    assert "--reset" in capsys.readouterr().err


def test_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--as-of", "yesterday"])
    assert exit_.value.code == 2
    assert main(["invoke", str(tmp_path / "missing.json")]) == 2
    event = tmp_path / "e.json"
    event.write_text("{not json")
    assert main(["invoke", str(event)]) == 1
    assert main(["invoke", str(event), "--env", "NOEQUALS"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
