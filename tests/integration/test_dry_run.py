"""A dry run against Alpaca's API, offline: the real CLI (and the Lambda path through
``alchemiser invoke``) reads the secret, the account and the market, plans and
reports, and the local exchange sees no request that could change anything."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from alchemiser.exchange import LocalExchange
from alchemiser.service import make_run_id
from tests.integration.alpaca_fixtures import (
    DEFAULT_WEIGHTS,
    SCHEDULED,
    assert_no_secrets,
    assert_state_clean,
    cli_env,
    create_secret,
    run_cli,
    secret_document,
    unique_secret_name,
    write_config,
)
from tests.integration.test_local_invoke import EVENTS, invoke, ledger_rows, sections

pytestmark = pytest.mark.integration

ACCOUNT = "paper-test"
WRITES = ("POST", "PATCH", "PUT", "DELETE")


def _config(tmp_path: Path, moto: str, exchange: LocalExchange, *, dry_run: bool = False) -> Path:
    secret = create_secret(moto, unique_secret_name(), secret_document("paper"))
    path = write_config(tmp_path, exchange.url, account=ACCOUNT, secret_id=secret)
    if dry_run:
        path.write_text("dry_run = true\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def _run(
    tmp_path: Path, moto: str, config: Path, *extra: str
) -> tuple[int, str, str, dict[str, Any] | None]:
    state = tmp_path / "state"
    args = ["run", "--config", str(config), "--state-dir", str(state), *extra]
    result = run_cli(args, cli_env(moto), cwd=tmp_path)
    assert_no_secrets(result.stdout, result.stderr)
    assert_state_clean(state)
    report = json.loads(result.stdout) if "--json" in extra else None
    return result.returncode, result.stdout, result.stderr, report


def _exchange_state(exchange: LocalExchange) -> tuple[object, ...]:
    engine = exchange.engine
    orders = [(o.client_order_id, o.status, o.filled_qty) for o in engine.orders()]
    return engine.account_json()["cash"], engine.positions_json(), orders


def _writes(exchange: LocalExchange) -> int:
    return sum(exchange.count(method) for method in WRITES)


def test_dry_run_reads_plans_and_sends_nothing_then_a_real_run_trades(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    config = _config(tmp_path, moto_server, exchange)
    before = _exchange_state(exchange)

    code, out, err, _ = _run(
        tmp_path, moto_server, config, "--dry-run", "--scheduled-time", SCHEDULED
    )

    assert code == 0, err
    assert out.startswith("DRY RUN: nothing was submitted or cancelled\n")
    assert "A real run would place 3 order(s)" in out
    for symbol in DEFAULT_WEIGHTS:
        assert re.search(rf"^  buy\s+{symbol}\s", out, flags=re.M), symbol
    assert "Status: DRY_RUN" in out
    # It read the account and the market, and sent nothing that changes anything.
    assert exchange.count("GET", "/v2/account") >= 1
    assert exchange.count("GET", r"/v2/stocks/.*") + exchange.count("GET", r"/v2/stocks") >= 1
    assert _writes(exchange) == 0, exchange.counts()
    assert _exchange_state(exchange) == before
    rows = [json.loads(line) for line in (tmp_path / "state" / "ledger.jsonl").open()]
    assert [(r["status"], r["dry_run"]) for r in rows] == [("started", True), ("dry_run", True)]
    trigger = datetime.fromisoformat(SCHEDULED)
    assert rows[-1]["run_id"] == make_run_id(ACCOUNT, date(2026, 7, 31), trigger) + "-dry"

    # The same trigger, for real: not answered from the dry run's row, it trades.
    code, _, err, report = _run(
        tmp_path, moto_server, config, "--json", "--scheduled-time", SCHEDULED
    )

    assert code == 0, err
    assert report is not None
    assert report["status"] == "completed"
    assert report["dry_run"] is False
    assert report["run_id"] == make_run_id(ACCOUNT, date(2026, 7, 31), trigger)
    assert exchange.count("POST", "/v2/orders") == 3
    assert {o.symbol for o in exchange.engine.accepted_orders()} == set(DEFAULT_WEIGHTS)


def test_dry_run_leaves_an_earlier_attempts_open_order_working(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    config = _config(tmp_path, moto_server, exchange)
    exchange.configure(fill_delay_seconds=3600)  # nothing fills during the test
    run_id = make_run_id(ACCOUNT, date(2026, 7, 31), datetime.fromisoformat(SCHEDULED))
    earlier = f"{run_id}-buy-SPY-0"
    exchange.engine.submit_order(
        {
            "client_order_id": earlier,
            "symbol": "SPY",
            "side": "buy",
            "qty": "1",
            "type": "market",
            "time_in_force": "day",
        }
    )
    before = _exchange_state(exchange)

    code, _, err, report = _run(
        tmp_path, moto_server, config, "--dry-run", "--json", "--scheduled-time", SCHEDULED
    )

    assert code == 0, err
    assert report is not None
    assert report["status"] == "dry_run"
    assert any(earlier in n and "a real run would cancel it first" in n for n in report["notes"])
    assert _writes(exchange) == 0, exchange.counts()
    assert _exchange_state(exchange) == before
    still = exchange.engine.order_by_client_id(earlier)
    assert still is not None
    assert still in exchange.engine.open_orders()


def test_dry_run_in_the_config_is_a_dry_run(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    config = _config(tmp_path, moto_server, exchange, dry_run=True)
    before = _exchange_state(exchange)

    code, _, err, report = _run(tmp_path, moto_server, config, "--json")

    assert code == 0, err
    assert report is not None
    assert report["dry_run"] is True
    assert report["status"] == "dry_run"
    assert report["run_id"].endswith("-dry")
    assert report["orders"] == []
    assert len(report["intents"]) == 3
    assert report["account_after"] == report["account_before"]
    assert _writes(exchange) == 0, exchange.counts()
    assert _exchange_state(exchange) == before


def test_the_lambda_dry_run_places_nothing_and_fails_nothing(tmp_path: Path) -> None:
    result = invoke(
        str(EVENTS / "market_open.json"),
        "--alpaca",
        "--repeat",
        "2",
        "--env",
        "ALCHEMISER_DRY_RUN=true",
        cwd=tmp_path,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    first, second = (text for name, text in sections(out) if name == "RebalanceFunction")
    assert "DryRun = 1" in first
    assert "RunFailed = 0" in first
    assert "RunSucceeded = 1" in first
    assert "OrdersSubmitted = 0" in first
    assert "answered from idempotency" in second  # the dry run's own idempotency record
    assert "RunFailed = 1" not in out
    assert "== the local exchange accepted 0 order(s)" in out
    (row,) = ledger_rows(out)
    assert re.match(r"\S+-dry  local-paper  2026-07-31  dry_run  orders=0 fills=0", row), row
    assert "DRY RUN: nothing was submitted or cancelled" not in result.stderr
