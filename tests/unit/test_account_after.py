"""The report's account after a run is valued as the broker sees it: at the broker's own
current price, or, where it gives none, at the run's fill prices; never at the
reference closes the plan was sized on. The real service and the simulated broker over
the bundled prices, with slippage, so that fills and the broker's prices differ."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from alchemiser import bootstrap
from alchemiser.adapters.alpaca.broker import _positions
from alchemiser.adapters.clock import ManualClock
from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.config import load_config
from alchemiser.domain.account import (
    AccountSnapshot,
    AccountValuation,
    Position,
    marks_after,
)
from alchemiser.domain.orders import Fill, Side
from alchemiser.domain.prices import reference_prices
from alchemiser.domain.report import Mode, RunReport, RunStatus
from alchemiser.domain.values import ZERO, to_cents
from alchemiser.service import RunRequest, rebalance

YESTERDAY = date(2026, 7, 29)
TODAY = date(2026, 7, 30)
CONFIG = """account = "marks"
[[strategies]]
name = "core"
allocation = 1.0
weights = {{ {weights} }}
[rebalance]
drift_abs = "0.2"
drift_rel = "1"
[sim]
slippage_bps = "30"
"""


def run(directory: Path, weights: str, as_of: date, session: date) -> RunReport:
    """One run planned on ``as_of``'s closes, filled by the simulator in ``session``
    (the simulated account kept in ``directory``)."""
    path = directory / f"{as_of}-{session}.toml"
    path.write_text(CONFIG.format(weights=weights))
    settings = load_config(path)
    clock = ManualClock(datetime.combine(session, datetime.min.time(), tzinfo=UTC))
    deps = bootstrap.build(
        settings,
        market=FilePriceStore.bundled(),
        session=session,
        clock=clock,
        state_dir=directory / "state",
    )
    request = RunRequest(
        run_id=f"marks-{as_of}-{session}",
        as_of=as_of,
        trading_date=session,
        scheduled_time=None,
        mode=Mode.SIM,
        account=settings.account,
    )
    return rebalance(request, deps)


def closes(session: date) -> dict[str, Decimal]:
    store = FilePriceStore.bundled()
    symbols = ["GLD", "SPY", "TLT"]
    return reference_prices(store.history(symbols, session, 1), symbols, session)


def marks(valuation: AccountValuation | None) -> dict[str, Decimal]:
    assert valuation is not None
    return {p.symbol: p.price for p in valuation.positions}


def test_the_account_after_is_what_the_broker_shows(tmp_path: Path) -> None:
    report = run(tmp_path, "SPY = 0.6, TLT = 0.4", TODAY, TODAY)

    assert report.status is RunStatus.COMPLETED
    fills = {f.symbol: f.price for f in report.fills}
    assert set(fills) == {"SPY", "TLT"}
    shown = closes(TODAY)  # what the simulator marks its positions at
    assert all(fills[s] != shown[s] for s in fills)  # slippage: fills are elsewhere
    after = report.account_after
    assert marks(after) == {s: shown[s] for s in fills}
    assert after is not None
    held = sum((p.qty * shown[p.symbol] for p in after.positions), Decimal(0))
    assert abs(after.equity - (after.cash + held)) <= Decimal("0.01") * len(fills)


def test_a_symbol_not_traded_is_valued_at_the_brokers_price_not_the_plans(tmp_path: Path) -> None:
    """Planned on yesterday's closes, filled at today's: a held symbol the run did not
    trade is worth today's close (the simulator's own price), not yesterday's."""
    first = run(tmp_path, "SPY = 0.6, TLT = 0.4", YESTERDAY, YESTERDAY)
    assert first.status is RunStatus.COMPLETED

    # SPY 0.6 -> 0.3 and GLD 0 -> 0.3 leave the 0.2 band; TLT stays within it.
    report = run(tmp_path, "SPY = 0.3, TLT = 0.4, GLD = 0.3", YESTERDAY, TODAY)

    assert report.status is RunStatus.COMPLETED
    fills = {f.symbol: f.price for f in report.fills}
    assert set(fills) == {"SPY", "GLD"}
    today, yesterday = closes(TODAY), closes(YESTERDAY)
    assert today["TLT"] != yesterday["TLT"]
    after = marks(report.account_after)
    assert after == {"SPY": today["SPY"], "GLD": today["GLD"], "TLT": today["TLT"]}
    before = marks(report.account_before)
    assert before["TLT"] == yesterday["TLT"]  # the plan's own prices, as it saw them


def fill(symbol: str, qty: str, price: str, side: Side = Side.BUY) -> Fill:
    return Fill(
        client_order_id=f"r-{side.value}-{symbol}-{qty}",
        symbol=symbol,
        side=side,
        qty=Decimal(qty),
        price=Decimal(price),
        notional=to_cents(Decimal(qty) * Decimal(price)),
    )


def test_marks_after_in_order_of_precedence() -> None:
    after = AccountSnapshot(
        cash=Decimal(100),
        buying_power=Decimal(100),
        positions=(
            # Filled twice in the run, priced by the broker: the broker's price.
            Position(symbol="SPY", qty=Decimal(4), current_price=Decimal(999)),
            # Filled twice in the run, no broker price: volume-weighted fills.
            Position(symbol="IWM", qty=Decimal(4)),
            # Not traded: the broker's own price, not the plan's.
            Position(symbol="TLT", qty=Decimal(2), current_price=Decimal("90.5")),
            # Not traded, no broker price (a broker without one): the plan's price.
            Position(symbol="GLD", qty=Decimal(1)),
            # Appeared during the run, never priced by anyone: its average entry price.
            Position(symbol="ZZZ", qty=Decimal(3), avg_entry_price=Decimal(7)),
            # Appeared during the run, priced by the broker.
            Position(symbol="YYY", qty=Decimal(1), current_price=Decimal(11)),
            Position(symbol="QQQ", qty=Decimal(0)),  # nothing held: needs no price
        ),
    )
    fills = [
        fill("SPY", "1", "100"),
        fill("SPY", "3", "104"),
        fill("IWM", "1", "100"),
        fill("IWM", "3", "104"),
        fill("GLD", "0", "1"),
    ]
    reference = {"SPY": Decimal(50), "IWM": Decimal(50), "TLT": Decimal(80), "GLD": Decimal(300)}

    marks, unplanned = marks_after(after, fills, reference)

    assert marks == {
        "SPY": Decimal(999),
        "IWM": Decimal("103.0000"),  # (1 x 100 + 3 x 104) / 4
        "TLT": Decimal("90.5"),
        "GLD": Decimal(300),
        "ZZZ": Decimal(7),
        "YYY": Decimal(11),
    }
    assert unplanned == {"ZZZ": "its average entry price", "YYY": "the broker's price"}


def test_a_broker_price_that_is_not_a_price_is_not_used() -> None:
    after = AccountSnapshot(
        cash=ZERO,
        buying_power=ZERO,
        positions=(Position(symbol="TLT", qty=Decimal(2), current_price=ZERO),),
    )
    marks, _ = marks_after(after, [], {"TLT": Decimal(80)})
    assert marks == {"TLT": Decimal(80)}


def test_alpaca_positions_carry_the_brokers_current_price() -> None:
    raw = {
        "symbol": "SPY",
        "qty": "2",
        "avg_entry_price": "500",
        "market_value": "1040.5",
        "current_price": "520.25",
        "asset_class": "us_equity",
    }
    (priced, unpriced), _ = _positions([raw, {**raw, "symbol": "TLT", "current_price": None}])
    assert priced.current_price == Decimal("520.25")
    assert unpriced.current_price is None
