"""The Lambda handler in-process, with the shipped events and a Lambda-like context."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from alchemiser.devstack.runner import LocalContext
from alchemiser.errors import EventError
from alchemiser.handlers.events import BUILTIN_DEFAULT
from alchemiser.handlers.rebalance import RunFailed, handler
from alchemiser.observability import logger

pytestmark = pytest.mark.integration
EVENTS = Path(__file__).resolve().parents[2] / "events"


@pytest.fixture(autouse=True)
def lambda_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("ALCHEMISER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("ALCHEMISER_CONFIG", BUILTIN_DEFAULT)  # the demo, by name
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    return tmp_path / "state"


def _event(name: str) -> dict[str, object]:
    return json.loads((EVENTS / name).read_text())


def _emf(output: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            record = json.loads(line)
            for metric in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                values[metric["Name"]] = record[metric["Name"]][0]
    return values


def test_market_open_event_rebalances(capfd: pytest.CaptureFixture[str], lambda_env: Path) -> None:
    response = handler(_event("market_open.json"), LocalContext("RebalanceFunction", 1024, 300))
    assert response["status"] == "completed"
    assert response["as_of"] == "2026-07-30"
    assert response["trading_date"] == "2026-07-31"
    assert response["scheduled_time"] == "2026-07-31T13:30:00Z"
    assert {o["status"] for o in response["orders"]} == {"filled"}
    assert all(o["client_order_id"].startswith(response["run_id"]) for o in response["orders"])
    metrics = _emf(capfd.readouterr().out)
    assert metrics["OrdersSubmitted"] == len(response["orders"]) == metrics["OrdersFilled"]
    assert metrics["RunFailed"] == 0
    assert metrics["OrdersDenied"] == 0
    assert "RunDurationMs" in metrics
    assert (lambda_env / "ledger.jsonl").exists()


def test_redelivered_event_places_nothing_twice(capfd: pytest.CaptureFixture[str]) -> None:
    context = LocalContext("RebalanceFunction", 1024, 300)
    first = handler(_event("market_open.json"), context)
    second = handler(_event("market_open.json"), context)
    assert second["run_id"] == first["run_id"]
    # The ledger records the run as finished: the redelivery is answered from it, and
    # the simulated account shows nothing was placed twice.
    assert second["attempt_id"] == first["attempt_id"]
    assert second["orders"] == first["orders"]
    assert "answered from the ledger" in second["notes"][-1]


def test_logs_carry_run_id_as_correlation_id() -> None:
    stream = io.StringIO()
    sink = logging.StreamHandler(stream)
    sink.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.name).addHandler(sink)
    try:
        response = handler(_event("market_open.json"), LocalContext("RebalanceFunction", 1024, 300))
    finally:
        logging.getLogger(logger.name).removeHandler(sink)
    logs = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [entry["message"] for entry in logs] == ["run started", "run finished"]
    assert {entry["correlation_id"] for entry in logs} == {response["run_id"]}
    assert {entry["function_name"] for entry in logs} == {"RebalanceFunction"}


def test_malformed_event_is_refused_before_any_order(
    capfd: pytest.CaptureFixture[str], lambda_env: Path
) -> None:
    with pytest.raises(EventError):
        handler({"scheduled_time": "tomorrow"}, LocalContext("RebalanceFunction", 1024, 300))
    assert not lambda_env.exists()
    assert _emf(capfd.readouterr().out)["RunFailed"] == 1


def test_stale_data_fails_closed(capfd: pytest.CaptureFixture[str], lambda_env: Path) -> None:
    with pytest.raises(RunFailed, match="DATA_STALE"):
        handler(_event("stale_data.json"), LocalContext("RebalanceFunction", 1024, 300))
    assert not (lambda_env / "sim-demo.json").exists()
    output = capfd.readouterr().out
    assert _emf(output)["RunFailed"] == 1
    assert _emf(output)["OrdersSubmitted"] == 0


def test_bad_config_file_fails_before_any_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lambda_env: Path
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[strategies]]\nname = "x"\nallocation = 1\nweights = { SPY = 1.5 }\n')
    monkeypatch.setenv("ALCHEMISER_CONFIG", str(bad))
    with pytest.raises(Exception, match=r"strategies\[0\]\.weights"):
        handler(_event("market_open.json"), LocalContext("RebalanceFunction", 1024, 300))
    assert not lambda_env.exists()


def test_a_market_holiday_is_skipped_not_traded(
    capfd: pytest.CaptureFixture[str], lambda_env: Path
) -> None:
    holiday = {**_event("market_open.json"), "scheduled_time": "2026-07-03T13:30:00Z"}
    response = handler(holiday, LocalContext("RebalanceFunction", 1024, 300))
    assert response["status"] == "skipped"
    assert response["notes"] == ["2026-07-03 is not a trading session"]
    assert response["orders"] == []
    metrics = _emf(capfd.readouterr().out)
    assert metrics["RunSkipped"] == 1
    assert metrics["RunFailed"] == 0
    assert not (lambda_env / "sim-demo.json").exists()
