"""Two processes run the same trigger against one account at once (two machines, a
manual rerun beside the scheduled one): the broker receives one plan, not two.

The first process's positions read is held back at the exchange; the second starts
once the first is waiting there, and runs in that gap. Each has its own state
directory, so neither can be answered from the other's ledger: only what they see at
the broker keeps them apart.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser.exchange import Fault, LocalExchange
from tests.integration.alpaca_fixtures import (
    SCHEDULED,
    cli_env,
    create_secret,
    exchange,
    moto_server,
    popen_cli,
    secret_document,
    unique_secret_name,
    write_config,
)

__all__ = ["exchange", "moto_server"]  # fixtures
pytestmark = pytest.mark.integration

HELD_BACK_SECONDS = 4.0
START_WAIT_SECONDS = 60
POLL_SECONDS = 0.02


def _wait_for_positions_read(exchange: LocalExchange) -> None:
    """A guard against a hang only: a generous bound on polls, far from a normal start."""
    for _ in range(int(START_WAIT_SECONDS / POLL_SECONDS)):
        if exchange.fault_hits():
            return
        time.sleep(POLL_SECONDS)
    pytest.fail("the first process never read the positions")


def test_two_processes_on_one_trigger_place_one_plan(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    exchange.engine.set_position("QQQ", Decimal(60), Decimal(400))
    exchange.engine.set_position("BND", Decimal(200), Decimal(70))
    secret = create_secret(moto_server, unique_secret_name(), secret_document())
    config = write_config(tmp_path, exchange.url, secret_id=secret)
    env = cli_env(moto_server)
    exchange.add_fault(
        Fault(method="GET", path="/v2/positions", nth=1, delay_seconds=HELD_BACK_SECONDS)
    )

    def start(name: str):  # type: ignore[no-untyped-def]
        state = tmp_path / name
        args = ["run", "--config", str(config), "--state-dir", str(state), "--json"]
        return popen_cli([*args, "--scheduled-time", SCHEDULED], env, cwd=tmp_path)

    first = start("first")
    _wait_for_positions_read(exchange)
    second = start("second")
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    reports = [json.loads(out) for out, _ in outputs]

    traded = [r for r in reports if r["orders"]]
    idle = [r for r in reports if not r["orders"]]
    assert len(traded) == 1, [(r["status"], r["errors"]) for r in reports]
    assert traded[0]["status"] == "completed"
    (other,) = idle
    assert other["status"] == "noop" or [e["code"] for e in other["errors"]] == [
        "CONCURRENT_ATTEMPT"
    ]
    accepted = exchange.engine.accepted_orders()
    ids = [o.client_order_id for o in accepted]
    assert len(ids) == len(set(ids))
    sides = Counter((o.symbol, str(o.side)) for o in accepted)
    assert all(n == 1 for n in sides.values()), sides
    assert exchange.engine.cash() >= 0
