"""The market-data adapter against the local exchange: one multi-symbol request per
page of bars, the broker's calendar, and the checks that keep bad bars from trading."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from alchemiser.adapters.alpaca.clients import rest_client
from alchemiser.adapters.alpaca.market_data import AlpacaMarketData
from alchemiser.adapters.alpaca.policy import RetryPolicy
from alchemiser.adapters.alpaca.transport import Transport
from alchemiser.adapters.clock import SystemClock
from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.errors import AlchemiserError, BrokerError, DataError, DataErrorKind
from alchemiser.exchange import ExchangeSettings, LocalExchange
from alchemiser.exchange.faults import Fault
from tests.conftest import write_prices

pytestmark = pytest.mark.integration

BARS = "/v2/stocks/bars"


def adapter(exchange: LocalExchange, **kwargs: int) -> AlpacaMarketData:
    transport = Transport(SystemClock(), RetryPolicy(initial_backoff_seconds=0.01))
    trading = rest_client(exchange.url, "k", "s")
    data = rest_client(exchange.url, "k", "s")
    return AlpacaMarketData(trading, data, transport, **kwargs)


@pytest.fixture
def bundled() -> Iterator[LocalExchange]:
    with LocalExchange() as exchange:
        yield exchange


def test_history_matches_the_bundled_prices_in_as_few_requests_as_pages(
    bundled: LocalExchange,
) -> None:
    store = FilePriceStore.bundled()
    symbols = ["SPY", "TLT", "GLD", "QQQ", "BIL", "XLK", "XLP", "VTI"]
    market = adapter(bundled)
    end = market.latest_session(before=date(2026, 7, 31))
    assert end == date(2026, 7, 30)
    history = market.history(symbols, end, 2000)
    expected = store.history(symbols, end, 2000)
    assert list(history.dates) == list(expected.dates)
    np.testing.assert_allclose(history.closes, expected.closes, rtol=1e-9)
    bars = 2000 * len(symbols)
    assert bundled.count("GET", BARS) == math.ceil(bars / 10_000)
    assert bundled.count("GET", "/v2/calendar") == 2  # the first read, widened once


def test_calendar_sessions(bundled: LocalExchange) -> None:
    market = adapter(bundled)
    assert market.is_session(date(2026, 7, 31))
    assert not market.is_session(date(2026, 7, 4))  # Independence Day (a Saturday)
    assert not market.is_session(date(2026, 6, 19))  # Juneteenth
    assert market.latest_session(before=date(2026, 6, 22)) == date(2026, 6, 18)


def test_stale_bars_are_refused(bundled: LocalExchange) -> None:
    bundled.configure(stale_bars_sessions=1)
    with pytest.raises(DataError) as raised:
        adapter(bundled).history(["SPY", "TLT"], date(2026, 7, 30), 20)
    assert raised.value.code == "DATA_STALE"
    assert "2026-07-29" in str(raised.value)


def test_a_gap_longer_than_allowed_is_refused(tmp_path: Path) -> None:
    sessions = [str(d) for d in FilePriceStore.bundled().sessions()[-30:]]
    closes = {
        "SPY": dict.fromkeys(sessions, 500.0),
        "HOLE": {d: 10.0 for i, d in enumerate(sessions) if not 10 <= i < 15},
    }
    directory = write_prices(tmp_path / "prices", closes)
    end = date.fromisoformat(sessions[-2])
    with LocalExchange(directory, ExchangeSettings(session=date.fromisoformat(sessions[-1]))) as ex:
        with pytest.raises(DataError) as raised:
            adapter(ex, max_gap_sessions=3).history(["SPY", "HOLE"], end, 25)
        assert raised.value.code == "DATA_MISSING"
        assert "HOLE (5 sessions)" in str(raised.value)
        allowed = adapter(ex, max_gap_sessions=5).history(["SPY", "HOLE"], end, 25)
        assert int(np.isnan(allowed.column("HOLE")).sum()) == 5


def test_a_symbol_without_any_bars_is_left_to_the_strategy(bundled: LocalExchange) -> None:
    history = adapter(bundled).history(["SPY", "NOSUCH"], date(2026, 7, 30), 5)
    assert bool(np.isnan(history.column("NOSUCH")).all())
    assert not bool(np.isnan(history.column("SPY")).any())


def test_the_lookback_is_capped(bundled: LocalExchange) -> None:
    history = adapter(bundled, max_sessions=100).history(["SPY"], date(2026, 7, 30), 1_000_000)
    assert len(history.dates) == 100


def _bars_reply(body: object) -> Fault:
    """Every bars request answered with ``body`` (so a retry meets it again)."""
    return Fault(method="GET", path=BARS, status=200, body=body, every=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(None, id="empty-body"),
        pytest.param([{"bars": {}}], id="a-list"),
        pytest.param("<html>maintenance</html>", id="not-json"),
        pytest.param({"message": "ok"}, id="no-bars-key"),
        pytest.param({"bars": {}, "quotes": {}}, id="two-data-keys"),
        pytest.param({"bars": 5}, id="bars-a-number"),
        pytest.param({"bars": [{"t": "2026-07-30T04:00:00Z", "c": 1}]}, id="bars-a-list"),
        pytest.param({"bars": {"SPY": 5}}, id="symbol-bars-a-number"),
        pytest.param({"bars": {"SPY": [5]}}, id="bar-a-number"),
        pytest.param({"bars": {"SPY": [{"c": 520.1}]}}, id="bar-without-time"),
        pytest.param({"bars": {}, "next_page_token": 7}, id="page-token-a-number"),
        pytest.param({"bars": {}, "next_page_token": {"a": 1}}, id="page-token-an-object"),
        pytest.param({"bars": {}, "next_page_token": ""}, id="page-token-empty"),
    ],
)
def test_a_bars_page_not_shaped_as_documented_is_a_typed_error(
    bundled: LocalExchange, body: object
) -> None:
    market = adapter(bundled)
    end = market.latest_session(before=date(2026, 7, 31))
    bundled.add_fault(_bars_reply(body))

    with pytest.raises(AlchemiserError) as raised:
        market.history(["SPY", "TLT"], end, 30)

    error = raised.value
    if isinstance(error, DataError):
        assert error.kind is DataErrorKind.MALFORMED
    else:  # the transport's typed malformed reply, retried as any unreadable read is
        assert isinstance(error, BrokerError)
        assert error.broker_code == "malformed"
    assert all("page_token" not in r.query for r in bundled.requests)  # no bad token followed


def test_a_page_token_offered_again_is_not_followed_forever(bundled: LocalExchange) -> None:
    market = adapter(bundled)
    end = market.latest_session(before=date(2026, 7, 31))
    bundled.add_fault(_bars_reply({"bars": {}, "next_page_token": "again"}))

    with pytest.raises(BrokerError) as raised:
        market.history(["SPY", "TLT"], end, 30)

    assert raised.value.broker_code == "malformed"
    # each attempt: the first page, then the token once; never a third page
    pages = [r.query.get("page_token") for r in bundled.requests if r.path == BARS]
    assert pages.count(["again"]) == pages.count(None) <= 5


def test_pages_beyond_the_bars_asked_for_are_refused(bundled: LocalExchange) -> None:
    market = adapter(bundled)
    end = market.latest_session(before=date(2026, 7, 31))
    for n in range(1, 13):  # a fresh token on each page: 2 symbols x 30 sessions fit in one
        page = {"bars": {}, "next_page_token": f"t{n}"}
        bundled.add_fault(Fault(method="GET", path=BARS, status=200, body=page, nth=n))

    with pytest.raises(BrokerError) as raised:
        market.history(["SPY", "TLT"], end, 30)

    assert raised.value.broker_code == "malformed"
