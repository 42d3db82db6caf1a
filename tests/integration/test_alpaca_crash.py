"""A run killed mid-execution (SIGKILL: no cleanup, no report; its ledger entry stays
"started"), then
run again for the same trigger, ends where one clean run ends, and nothing is placed
twice.

The account holds QQQ and BND and targets SPY / TLT / GLD, so the plan is two sells
(BND, QQQ), then three buys (GLD, SPY, TLT). One order's response hangs at the
exchange after the order was accepted, and the CLI is killed while it waits.

Why the numbers match. The retry answers the same ``--scheduled-time``, so it has the
same run id and its orders the same client_order_ids. It plans from a fresh snapshot,
which already holds what the killed attempt's orders did: a position already sold is
gone, a symbol already bought to its target is within its drift band and left alone,
and only what is still missing is ordered. The killed attempt sized its orders from the
same snapshot, targets and reference prices (the previous close) as the clean run, so
those orders equal the clean run's. The exchange here fills at exactly the reference
price (flat prices, no slippage), so the account the retry starts from is worth, to the
cent, what the clean run's was, and the retry sizes what is left exactly as the clean
run sized it. Hence positions agree to the share (a dollar order's quantity is rounded
by the exchange to 9 places: a split GLD buy lands within a millionth) and cash to the
cent. With real prices the retry would value the killed attempt's fills at the previous
close rather than at what they cost, and size the rest from an equity off by that gap
(a fraction of a percent): close, but too loose to tell a small order placed twice
from the market moving.

When the killed attempt's order is still working at the retry (the half-filled
variant), the retry cancels it first, then finds the plan's id taken by that finished
(cancelled) order and places the next leg (``...-1``) for what is still missing.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.exchange import Fault, LocalExchange
from alchemiser.exchange.engine import SimOrder
from tests.conftest import write_prices
from tests.integration.alpaca_fixtures import (
    SCHEDULED,
    assert_no_secrets,
    assert_state_clean,
    cli_env,
    create_secret,
    exchange_settings,
    popen_cli,
    run_cli,
    secret_document,
    unique_secret_name,
    write_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ORDERS = "/v2/orders"
POST_ORDERS = f"POST {ORDERS}"
SEED = {"QQQ": (Decimal(60), Decimal(400)), "BND": (Decimal(200), Decimal(70))}
CASH = Decimal(20_000)
"""Small enough that no buy reaches the default $50,000 per-order risk limit: every
order goes out as planned, in the clean run and in the retry."""
TARGETS = {"SPY": 0.5, "TLT": 0.3, "GLD": 0.19}
PLAN = [("sell", "BND"), ("sell", "QQQ"), ("buy", "GLD"), ("buy", "SPY"), ("buy", "TLT")]
QTY_TOLERANCE = 1e-5
"""Relative, per symbol: the exchange rounds a dollar order's quantity to 9 places."""
CASH_TOLERANCE = Decimal("0.05")
KILL_WAIT_SECONDS = 120  # a hang guard only: the orders normally arrive within seconds


FLAT = {"SPY": 740.0, "TLT": 82.5, "GLD": 377.0, "QQQ": 684.0, "BND": 72.5}
"""Every symbol's close, the same on every session (exact in binary floating point)."""
SESSIONS = 60


@pytest.fixture(scope="module")
def flat_prices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The last sessions of the bundled calendar, at flat prices: the exchange fills at
    exactly the plan's reference price (with no slippage either), so any difference
    between the crashed-and-retried account and the clean one is an order placed twice
    or not at all, not the market moving between the previous close and today's."""
    sessions = FilePriceStore.bundled().sessions()[-SESSIONS:]
    closes = {symbol: {str(day): close for day in sessions} for symbol, close in FLAT.items()}
    return write_prices(tmp_path_factory.mktemp("flat") / "prices", closes)


def seeded(prices: Path, **settings: Any) -> LocalExchange:
    exchange = LocalExchange(
        prices, exchange_settings(cash=CASH, slippage_bps=Decimal(0), **settings)
    )
    for symbol, (qty, price) in SEED.items():
        exchange.engine.set_position(symbol, qty, price)
    return exchange


def run_args(config: Path, state_dir: Path) -> list[str]:
    return [
        "run",
        *("--config", str(config), "--state-dir", str(state_dir)),
        *("--scheduled-time", SCHEDULED, "--json"),
    ]


@dataclass
class Outcome:
    """An exchange after a run (or a killed run and its retry), and what it reported."""

    report: dict[str, Any]
    orders: list[SimOrder]
    positions: dict[str, Decimal]
    cash: Decimal
    posts: list[tuple[str | None, bool | None]]
    """(client_order_id, accepted) of every POST /v2/orders, in order."""
    killed_orders: list[SimOrder]
    """What the exchange had accepted when the first attempt was killed."""


def outcome(exchange: LocalExchange, report: dict[str, Any], killed: list[SimOrder]) -> Outcome:
    posts = [r for r in exchange.requests if r.endpoint == POST_ORDERS]
    return Outcome(
        report=report,
        orders=exchange.engine.accepted_orders(),
        positions={s: p.qty for s, p in exchange.engine.positions().items()},
        cash=exchange.engine.cash(),
        posts=[(r.client_order_id, r.accepted) for r in posts],
        killed_orders=killed,
    )


@pytest.fixture(scope="module")
def cli(moto_server: str) -> tuple[str, dict[str, str]]:
    secret = create_secret(moto_server, unique_secret_name(), secret_document("paper"))
    return secret, cli_env(moto_server)


def complete(args: list[str], env: dict[str, str], cwd: Path, state_dir: Path) -> dict[str, Any]:
    result = run_cli(args, env, cwd=cwd)
    assert_no_secrets(result.stdout, result.stderr)
    assert_state_clean(state_dir)
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["status"] == "completed"
    return report


@pytest.fixture(scope="module")
def clean(
    tmp_path_factory: pytest.TempPathFactory, cli: tuple[str, dict[str, str]], flat_prices: Path
) -> Outcome:
    """The reference: a fresh exchange with the same seed, no faults, one run."""
    secret, env = cli
    tmp_path = tmp_path_factory.mktemp("clean")
    with seeded(flat_prices) as exchange:
        config = write_config(tmp_path, exchange.url, secret_id=secret)
        state_dir = tmp_path / "state"
        report = complete(run_args(config, state_dir), env, tmp_path, state_dir)
        return outcome(exchange, report, [])


@dataclass(frozen=True)
class Crash:
    name: str
    nth: int
    """The nth POST /v2/orders is accepted, and its response never comes."""
    partial: bool = False
    """That order fills only half (and stays working) before the kill."""


CRASHES = [
    Crash("after-first-sell", nth=1),
    Crash("after-first-buy", nth=3),
    Crash("first-buy-half-filled", nth=3, partial=True),
]


@pytest.fixture(scope="module", params=CRASHES, ids=[c.name for c in CRASHES])
def crashed(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    cli: tuple[str, dict[str, str]],
    flat_prices: Path,
) -> Iterator[Outcome]:
    crash: Crash = request.param
    secret, env = cli
    tmp_path = tmp_path_factory.mktemp(crash.name)
    state_dir = tmp_path / "state"
    partial = {"GLD": 0.5} if crash.partial else {}
    with seeded(flat_prices, partial_fills=partial) as exchange:
        exchange.add_fault(Fault.slow(30, when="after", method="POST", path=ORDERS, nth=crash.nth))
        config = write_config(tmp_path, exchange.url, secret_id=secret)
        args = run_args(config, state_dir)
        proc = popen_cli(args, env, cwd=tmp_path)
        try:
            wait_for_accepted(exchange, crash.nth, proc)
        finally:
            proc.kill()  # SIGKILL: a crash, nothing gets to clean up or write a report
            out, err = proc.communicate(timeout=10)
        assert_no_secrets(out, err)
        assert proc.returncode < 0
        # The killed attempt is visible: started, never finished.
        lines = (state_dir / "ledger.jsonl").read_text(encoding="utf-8").splitlines()
        assert [json.loads(line)["status"] for line in lines] == ["started"]
        killed = exchange.engine.accepted_orders()
        assert [(o.side, o.symbol) for o in killed] == PLAN[: crash.nth]
        if crash.partial:
            assert killed[-1].status == "partially_filled"
        exchange.clear_faults()
        exchange.configure(partial_fills={})

        report = complete(args, env, tmp_path, state_dir)  # the same command again
        yield outcome(exchange, report, killed)


def wait_for_accepted(exchange: LocalExchange, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + KILL_WAIT_SECONDS
    while len(exchange.engine.accepted_orders()) < count:
        assert proc.poll() is None, f"the run ended before the crash: {proc.communicate()}"
        assert time.monotonic() < deadline, "the orders never arrived"
        time.sleep(0.01)


def filled(orders: list[SimOrder]) -> dict[tuple[str, str], Decimal]:
    """Filled quantity per (symbol, side)."""
    summed: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for order in orders:
        summed[order.symbol, order.side] += order.filled_qty
    return dict(summed)


def test_the_clean_run_sells_then_buys(clean: Outcome) -> None:
    assert [(o["side"], o["symbol"]) for o in clean.report["orders"]] == PLAN
    assert [(o.side, o.symbol) for o in clean.orders] == PLAN
    assert set(clean.positions) == set(TARGETS)


def test_the_retry_is_the_same_run(crashed: Outcome, clean: Outcome) -> None:
    assert crashed.report["run_id"] == clean.report["run_id"]
    # It saw what the killed attempt did: none of the sold, some of the bought.
    before = {p["symbol"] for p in crashed.report["account_before"]["positions"]}
    sold = {o.symbol for o in crashed.killed_orders if o.side == "sell"}
    bought = {o.symbol for o in crashed.killed_orders if o.side == "buy"}
    assert before.isdisjoint(sold)
    assert bought <= before


def test_positions_and_cash_match_the_clean_run(crashed: Outcome, clean: Outcome) -> None:
    assert set(crashed.positions) == set(clean.positions) == set(TARGETS)
    for symbol, qty in clean.positions.items():
        assert float(crashed.positions[symbol]) == pytest.approx(float(qty), rel=QTY_TOLERANCE), (
            symbol
        )
    assert crashed.report["account_before"]["equity"] == clean.report["account_before"]["equity"]
    assert abs(crashed.cash - clean.cash) <= CASH_TOLERANCE


def test_nothing_was_placed_twice(crashed: Outcome, clean: Outcome) -> None:
    ids = Counter(o.client_order_id for o in crashed.orders)
    assert all(n == 1 for n in ids.values()), ids
    accepted_posts = Counter(coid for coid, accepted in crashed.posts if accepted)
    assert all(n == 1 for n in accepted_posts.values()), accepted_posts
    # Per symbol and side, no more traded than the one clean run traded.
    reference = filled(clean.orders)
    for key, qty in filled(crashed.orders).items():
        assert float(qty) <= float(reference[key]) * (1 + QTY_TOLERANCE), key


def test_the_retry_did_not_resubmit_what_was_done(crashed: Outcome) -> None:
    done = {o.client_order_id for o in crashed.killed_orders}
    reported = {o["client_order_id"] for o in crashed.report["orders"]}
    assert reported.isdisjoint(done)
    # Whatever the retry sent under a done id was refused as a duplicate, not accepted.
    assert all(not accepted for coid, accepted in crashed.posts[len(done) :] if coid in done)


def test_the_retry_notes_the_working_order_it_cancelled_and_topped_up(
    crashed: Outcome,
) -> None:
    working = [o for o in crashed.killed_orders if o.status != "filled"]
    notes = crashed.report["notes"]
    if not working:
        # Everything the killed attempt placed had finished: nothing to cancel or top up.
        assert not any("cancelled our earlier order" in note for note in notes), notes
        return
    (order,) = working
    assert any(f"cancelled our earlier order {order.client_order_id}" in note for note in notes), (
        notes
    )
    following = order.client_order_id.removesuffix("-0") + "-1"
    assert any(
        order.client_order_id in note and f"placing {following}" in note for note in notes
    ), notes
    assert following in {o["client_order_id"] for o in crashed.report["orders"]}
