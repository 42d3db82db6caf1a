"""Latest prices (the close window's stand-in for today's close) from the Market Data
API's latest trades against the local exchange: batched requests, and every trade that
cannot stand for today's close refused with the DataError of its kind."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from alchemiser.adapters.alpaca.clients import rest_client
from alchemiser.adapters.alpaca.market_data import (
    NEW_YORK,
    PRICE_CLOCK_SKEW_SECONDS,
    QUOTES_BATCH,
    AlpacaMarketData,
)
from alchemiser.adapters.alpaca.policy import AlpacaConfig, RetryPolicy
from alchemiser.adapters.alpaca.transport import Transport
from alchemiser.adapters.clock import ManualClock
from alchemiser.errors import DataError, DataErrorKind
from alchemiser.exchange import ExchangeSettings, LocalExchange
from alchemiser.exchange.engine import utc_text
from alchemiser.exchange.faults import Fault
from tests.conftest import SESSIONS, write_prices

pytestmark = pytest.mark.integration

TRADES = "/v2/stocks/trades/latest"
BUNDLED = ["SPY", "TLT", "GLD", "QQQ", "BIL", "XLK", "XLP", "VTI"]
MAX_AGE = 900


def adapter(exchange: LocalExchange, max_age: float = MAX_AGE) -> AlpacaMarketData:
    """The adapter on a clock that reads the exchange's now (the exchange clock then runs
    on in real time: by the few milliseconds of a test)."""
    clock = ManualClock(exchange.engine.now())
    transport = Transport(clock, RetryPolicy(initial_backoff_seconds=0.01))
    trading = rest_client(exchange.url, "k", "s")
    data = rest_client(exchange.url, "k", "s")
    return AlpacaMarketData(trading, data, transport, max_price_age_seconds=max_age)


def today(exchange: LocalExchange) -> date:
    """The exchange's session (its clock's New York date)."""
    return exchange.engine.now().astimezone(NEW_YORK).date()


def before_close(exchange: LocalExchange) -> datetime:
    """Moves the exchange to 15:45 New York of its session; returns that instant."""
    session = today(exchange)
    at = datetime.combine(session, time(15, 45), NEW_YORK)
    exchange.configure(now=at)
    return at


@pytest.fixture
def exchange() -> Iterator[LocalExchange]:
    with LocalExchange() as running:
        before_close(running)
        yield running


def reply(body: Any) -> Fault:
    return Fault(method="GET", path=TRADES, status=200, body=body)


def trade(price: object, at: object) -> dict[str, object]:
    return {"t": at, "x": "V", "p": price, "s": 100, "c": ["@"], "i": 1, "z": "C"}


def fresh(exchange: LocalExchange, seconds: float = 0) -> str:
    return utc_text(exchange.engine.now() + timedelta(seconds=seconds))


def refused(exchange: LocalExchange, symbols: list[str], **kwargs: Any) -> DataError:
    market = adapter(exchange, **kwargs)
    with pytest.raises(DataError) as raised:
        market.latest_prices(symbols, today(exchange))
    return raised.value


def test_the_exchange_price_of_every_symbol_in_one_request(exchange: LocalExchange) -> None:
    exchange.engine.set_price("SPY", Decimal("612.34"))
    session = today(exchange)

    prices = adapter(exchange).latest_prices([*BUNDLED, "SPY"], session)

    assert sorted(prices) == sorted(BUNDLED)
    assert prices["SPY"] == 612.34
    for symbol, price in prices.items():
        assert type(price) is float, symbol
        assert math.isfinite(price), symbol
        assert price > 0, symbol
    assert exchange.count("GET", TRADES) == 1


def test_no_symbols_no_request(exchange: LocalExchange) -> None:
    session = today(exchange)
    assert adapter(exchange).latest_prices([], session) == {}
    assert exchange.count("GET", TRADES) == 0


def test_symbols_are_asked_for_in_batches(tmp_path: Path) -> None:
    symbols = ["SPY", *(f"Z{i:04d}" for i in range(2 * QUOTES_BATCH + 10))]
    closes = {s: {d: 10.0 + i for i, d in enumerate(SESSIONS)} for s in symbols}
    directory = write_prices(tmp_path / "prices", closes, gz=False)
    with LocalExchange(directory, ExchangeSettings()) as running:
        before_close(running)
        session = today(running)

        prices = adapter(running).latest_prices(symbols, session)

        assert sorted(prices) == sorted(symbols)
        assert set(prices.values()) == {10.0 + len(SESSIONS) - 1}
        assert running.count("GET", TRADES) == math.ceil(len(symbols) / QUOTES_BATCH)


def test_a_symbol_without_a_trade_is_missing(exchange: LocalExchange) -> None:
    error = refused(exchange, ["SPY", "NOSUCH", "TLT"])

    assert error.kind is DataErrorKind.MISSING
    assert "NOSUCH" in str(error)
    assert "SPY" not in str(error)


def test_a_trade_older_than_the_max_age_is_stale(exchange: LocalExchange) -> None:
    exchange.configure(stale_trades_seconds=MAX_AGE + 60)

    error = refused(exchange, ["SPY", "TLT"])

    assert error.kind is DataErrorKind.STALE
    assert "SPY" in str(error)
    assert "TLT" in str(error)
    exchange.configure(stale_trades_seconds=MAX_AGE - 60)
    session = today(exchange)
    assert set(adapter(exchange).latest_prices(["SPY", "TLT"], session)) == {"SPY", "TLT"}


def test_yesterdays_trade_is_stale_whatever_the_max_age(exchange: LocalExchange) -> None:
    # 09:30:01, the open: the last trade of the session before is 17.5 hours old.
    exchange.configure(now=exchange.engine.calendar.hours(today(exchange))[0])
    yesterday = exchange.engine.now() - timedelta(hours=17, minutes=30)
    exchange.add_fault(
        reply(
            {
                "trades": {
                    "SPY": trade(612.0, fresh(exchange)),
                    "TLT": trade(88.0, utc_text(yesterday)),
                }
            }
        )
    )

    error = refused(exchange, ["SPY", "TLT"], max_age=3600 * 24)

    assert error.kind is DataErrorKind.STALE
    assert "TLT (a trade of " in str(error)
    assert "SPY" not in str(error)


def test_a_trade_stamped_ahead_of_our_clock_is_refused(exchange: LocalExchange) -> None:
    ahead = PRICE_CLOCK_SKEW_SECONDS + 120
    exchange.add_fault(
        reply(
            {
                "trades": {
                    "SPY": trade(612.0, fresh(exchange, ahead)),
                    "TLT": trade(88.0, fresh(exchange, PRICE_CLOCK_SKEW_SECONDS / 2)),
                }
            }
        )
    )

    error = refused(exchange, ["SPY", "TLT"])

    assert error.kind is DataErrorKind.STALE
    assert "SPY" in str(error)
    assert "ahead" in str(error)
    assert "TLT" not in str(error)


@pytest.mark.parametrize(
    ("price", "kind"),
    [
        pytest.param(0, DataErrorKind.NON_POSITIVE, id="zero"),
        pytest.param(0.0, DataErrorKind.NON_POSITIVE, id="zero-float"),
        pytest.param(-1.5, DataErrorKind.NON_POSITIVE, id="negative"),
        pytest.param(float("nan"), DataErrorKind.NON_FINITE, id="nan"),
        pytest.param(float("inf"), DataErrorKind.NON_FINITE, id="infinite"),
    ],
)
def test_a_price_that_cannot_be_a_close_is_refused(
    exchange: LocalExchange, price: float, kind: DataErrorKind
) -> None:
    exchange.add_fault(
        reply(
            {
                "trades": {
                    "SPY": trade(612.0, fresh(exchange)),
                    "GLD": trade(price, fresh(exchange)),
                }
            }
        )
    )

    error = refused(exchange, ["SPY", "GLD"])

    assert error.kind is kind
    assert "GLD" in str(error)
    assert "SPY" not in str(error)


def test_an_error_names_ten_symbols_and_counts_the_rest(exchange: LocalExchange) -> None:
    symbols = [f"Z{i:02d}" for i in range(25)]

    error = refused(exchange, symbols)

    assert error.kind is DataErrorKind.MISSING
    assert str(error).endswith("Z09 and 15 more")


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"quotes": {"SPY": {"t": "2026-07-31T19:45:00Z"}}}, id="quotes-reply"),
        pytest.param({"bars": {}}, id="bars-reply"),
        pytest.param({"message": "ok"}, id="no-trades-key"),
        pytest.param({"trades": []}, id="trades-not-an-object"),
        pytest.param({"trades": None}, id="trades-null"),
        pytest.param({"trades": {"SPY": "612.0"}}, id="trade-not-an-object"),
        pytest.param({"trades": {"SPY": [trade(1, "2026-07-31T19:45:00Z")]}}, id="trade-a-list"),
        pytest.param({"trades": {"SPY": {"t": "2026-07-31T19:45:00Z"}}}, id="price-missing"),
        pytest.param({"trades": {"SPY": trade("612.0", "2026-07-31T19:45:00Z")}}, id="price-text"),
        pytest.param({"trades": {"SPY": trade(True, "2026-07-31T19:45:00Z")}}, id="price-bool"),
        pytest.param({"trades": {"SPY": {"p": 612.0}}}, id="time-missing"),
        pytest.param({"trades": {"SPY": trade(612.0, None)}}, id="time-null"),
        pytest.param({"trades": {"SPY": trade(612.0, "")}}, id="time-empty"),
        pytest.param({"trades": {"SPY": trade(612.0, 1785527100)}}, id="time-a-number"),
        pytest.param({"trades": {"SPY": trade(612.0, "at the close")}}, id="time-not-a-time"),
        pytest.param([{"trades": {}}], id="a-list"),
        pytest.param("<html>maintenance</html>", id="not-json"),
        pytest.param(None, id="empty-body"),
    ],
)
def test_a_reply_not_shaped_as_documented_is_malformed(exchange: LocalExchange, body: Any) -> None:
    exchange.add_fault(reply(body))

    error = refused(exchange, ["SPY"])

    assert error.kind is DataErrorKind.MALFORMED
    assert exchange.count("GET", TRADES) == 1  # not retried: the same reply would come back


def test_a_transient_failure_is_retried(exchange: LocalExchange) -> None:
    exchange.add_fault(Fault.server_error(503, method="GET", path=TRADES))
    session = today(exchange)

    assert list(adapter(exchange).latest_prices(["SPY"], session)) == ["SPY"]
    assert exchange.count("GET", TRADES) == 2


def test_the_max_age_is_configured_and_bounded() -> None:
    config = AlpacaConfig(secret_id="s")
    assert config.max_latest_price_age_seconds == MAX_AGE
    for wrong in (0, 5, 3601):
        with pytest.raises(ValueError, match="max_latest_price_age_seconds"):
            AlpacaConfig(secret_id="s", max_latest_price_age_seconds=wrong)
