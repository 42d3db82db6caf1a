"""What a backtest marks its account at each close: each held symbol's last close, read
from one forward-filled matrix, and the simulated account's cash and quantities."""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from alchemiser.adapters.sim.broker import SimBroker
from alchemiser.adapters.sim.preloaded import last_closes_matrix
from alchemiser.domain.orders import OrderRequest, Side
from alchemiser.domain.prices import PriceHistory
from tests.conftest import LAST


def test_last_closes_are_each_sessions_latest_known_close() -> None:
    generator = np.random.default_rng(7)
    closes = generator.uniform(1, 100, size=(60, 5))
    closes[generator.random(closes.shape) < 0.3] = np.nan
    closes[:10, 2] = np.nan  # a fund that did not trade yet
    closes[:, 4] = np.nan  # one never priced
    closes[17, 1] = np.inf
    closes[5, 0] = -np.inf
    dates = np.datetime64("2026-01-01") + np.arange(60)
    history = PriceHistory(dates=dates, symbols=("A", "B", "C", "D", "E"), closes=closes)
    marks = last_closes_matrix(history)
    assert marks.shape == closes.shape
    for row in range(60):
        for column in range(5):
            known = closes[: row + 1, column][np.isfinite(closes[: row + 1, column])]
            if known.size:
                assert marks[row, column] == known[-1]
            else:
                assert np.isnan(marks[row, column])


def test_holdings_are_the_snapshots_cash_and_quantities(store, clock) -> None:
    sim = SimBroker(market=store, session=LAST, clock=clock, starting_cash=Decimal(10_000))
    assert sim.holdings() == (Decimal(10_000), [])
    for cid, symbol, qty in (("a", "TLT", "3"), ("b", "SPY", "1.25"), ("c", "TLT", "1")):
        sim.submit_order(
            OrderRequest(client_order_id=cid, symbol=symbol, side=Side.BUY, qty=Decimal(qty))
        )
    cash, held = sim.holdings()
    snapshot = sim.snapshot()
    assert cash == snapshot.cash
    assert held == [(p.symbol, p.qty) for p in snapshot.positions]
    assert held == [("SPY", Decimal("1.25")), ("TLT", Decimal(4))]
