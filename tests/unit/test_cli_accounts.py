"""``alchemiser run`` with ``[[accounts]]``: one account by name, or all of them in turn;
never the file's top level by accident."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alchemiser.cli import main

CONFIG = """
account = "top"
[[strategies]]
name = "core"
allocation = 1.0
weights = { SPY = 0.6, TLT = 0.4 }

[[accounts]]
account = "broken"
strategies = [{ name = "gone", allocation = 1.0, weights = { ZZZZ = 1.0 } }]

[[accounts]]
account = "main"

[[accounts]]
account = "ira"
strategies = [{ name = "bonds", allocation = 1.0, weights = { TLT = 1.0 } }]
"""


def _write(tmp_path: Path, text: str = CONFIG) -> str:
    path = tmp_path / "accounts.toml"
    path.write_text(text)
    return str(path)


def _run(tmp_path: Path, *extra: str) -> int:
    return main(["run", "--config", _write(tmp_path), "--state-dir", str(tmp_path / "s"), *extra])


def _reports(out: str) -> list[dict[str, object]]:
    """The JSON reports printed one after the other."""
    decoder = json.JSONDecoder()
    reports, index = [], 0
    while index < len(out):
        if out[index].isspace():
            index += 1
            continue
        report, index = decoder.raw_decode(out, index)
        reports.append(report)
    return reports


def test_a_config_with_accounts_needs_account_or_all(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--account" in captured.err
    assert "--all" in captured.err
    assert "broken, main, ira" in captured.err
    assert not (tmp_path / "s").exists()  # nothing ran


def test_one_account_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(tmp_path, "--account", "ira", "--json") == 0
    (report,) = _reports(capsys.readouterr().out)
    assert report["account"] == "ira"
    assert report["status"] == "completed"
    assert {o["symbol"] for o in report["orders"]} == {"TLT"}  # type: ignore[attr-defined]
    assert (tmp_path / "s" / "sim-ira.json").exists()
    assert not (tmp_path / "s" / "sim-main.json").exists()


def test_an_unknown_account_is_a_usage_error_naming_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, "--account", "top") == 2
    err = capsys.readouterr().err
    assert "'top'" in err
    assert "broken, main, ira" in err


def test_all_runs_each_account_in_turn_and_fails_if_one_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, "--all", "--json") == 1
    captured = capsys.readouterr()
    reports = _reports(captured.out)
    assert [r["account"] for r in reports] == ["broken", "main", "ira"]
    assert [r["status"] for r in reports] == ["failed", "completed", "completed"]
    assert "broken" in captured.err
    assert "DATA_MISSING" in captured.err


def test_all_succeeds_when_every_account_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = CONFIG.replace("ZZZZ", "SPY")
    path = _write(tmp_path, text)
    assert main(["run", "--config", path, "--state-dir", str(tmp_path / "s"), "--all"]) == 0
    out = capsys.readouterr().out
    assert out.count("Status: COMPLETED") == 3


def test_account_and_all_exclude_each_other(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        _run(tmp_path, "--all", "--account", "main")
    assert exit_.value.code == 2


def test_a_config_without_accounts_runs_as_before(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    single = CONFIG.split("[[accounts]]", maxsplit=1)[0]
    path = _write(tmp_path, single)
    state = str(tmp_path / "s")
    assert main(["run", "--config", path, "--state-dir", state, "--json"]) == 0
    assert _reports(capsys.readouterr().out)[0]["account"] == "top"
    # Its one account may be named, or run with --all; another name is an error.
    assert main(["run", "--config", path, "--state-dir", state, "--account", "top"]) == 0
    assert main(["run", "--config", path, "--state-dir", state, "--all"]) == 0
    capsys.readouterr()
    assert main(["run", "--config", path, "--state-dir", state, "--account", "ira"]) == 2
    assert "'ira'" in capsys.readouterr().err


def test_under_all_an_account_that_cannot_run_does_not_stop_the_others(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --live with the simulated broker is refused, account by account.
    assert _run(tmp_path, "--all", "--live") == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    refused = [line for line in captured.err.splitlines() if "LIVE_NOT_CONFIRMED" in line]
    assert [line.split("'")[1] for line in refused] == ["broken", "main", "ira"]
