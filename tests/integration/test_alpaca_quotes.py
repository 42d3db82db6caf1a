"""Latest quotes from the Market Data API against the local exchange: batched requests,
quotes that cannot price an order left out, and replies not shaped as documented."""

from __future__ import annotations

import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from alchemiser.adapters.alpaca.clients import rest_client
from alchemiser.adapters.alpaca.market_data import QUOTES_BATCH, AlpacaMarketData
from alchemiser.adapters.alpaca.policy import RetryPolicy
from alchemiser.adapters.alpaca.transport import Transport
from alchemiser.adapters.clock import SystemClock
from alchemiser.errors import BrokerUnknown
from alchemiser.exchange import LocalExchange
from alchemiser.exchange.faults import Fault

pytestmark = pytest.mark.integration

QUOTES = "/v2/stocks/quotes/latest"
ZERO = Decimal(0)
BUNDLED = ["SPY", "TLT", "GLD", "QQQ", "BIL", "XLK", "XLP", "VTI"]


def adapter(exchange: LocalExchange) -> AlpacaMarketData:
    transport = Transport(SystemClock(), RetryPolicy(initial_backoff_seconds=0.01))
    trading = rest_client(exchange.url, "k", "s")
    data = rest_client(exchange.url, "k", "s")
    return AlpacaMarketData(trading, data, transport)


@pytest.fixture
def exchange() -> Iterator[LocalExchange]:
    with LocalExchange() as running:
        yield running


def reply(body: Any) -> Fault:
    return Fault(method="GET", path=QUOTES, status=200, body=body)


def quote(bid: object, ask: object) -> dict[str, object]:
    return {"t": "2026-07-31T19:45:00Z", "bp": bid, "bs": 100, "ap": ask, "as": 100}


def test_quotes_bracket_the_exchange_price_in_one_request(exchange: LocalExchange) -> None:
    quotes = adapter(exchange).latest_quotes([*BUNDLED, "SPY"])

    assert sorted(quotes) == sorted(BUNDLED)
    for symbol, found in quotes.items():
        assert found.symbol == symbol
        assert ZERO < found.bid < found.ask
        assert found.ask / found.bid < Decimal("1.01")  # a spread, not a different price
        assert found.at is not None
    assert exchange.count("GET", QUOTES) == 1


def test_symbols_are_asked_for_in_batches(exchange: LocalExchange) -> None:
    unknown = [f"Z{i:04d}" for i in range(2 * QUOTES_BATCH + 10)]

    quotes = adapter(exchange).latest_quotes([*unknown, "SPY"])

    assert list(quotes) == ["SPY"]  # the exchange has no price for the others
    assert exchange.count("GET", QUOTES) == math.ceil((len(unknown) + 1) / QUOTES_BATCH)


def test_no_symbols_no_request(exchange: LocalExchange) -> None:
    assert adapter(exchange).latest_quotes([]) == {}
    assert exchange.count("GET", QUOTES) == 0


def test_quotes_that_cannot_price_an_order_are_left_out(exchange: LocalExchange) -> None:
    exchange.add_fault(
        reply(
            {
                "quotes": {
                    "SPY": quote(520.1, 520.2),
                    "TLT": quote(0, 90.5),  # no bid
                    "GLD": quote(200.1, 0),  # no ask
                    "QQQ": quote(-1, 400),
                    "BIL": quote(91.6, 91.5),  # crossed
                    "XLK": quote(float("nan"), 210),
                    "VTI": quote(250, float("inf")),
                    "UNASKED": quote(10, 11),
                }
            }
        )
    )

    quotes = adapter(exchange).latest_quotes([*BUNDLED])

    assert list(quotes) == ["SPY"]  # XLP is missing from the reply
    assert quotes["SPY"].bid == Decimal("520.1")
    assert quotes["SPY"].ask == Decimal("520.2")
    assert exchange.fault_hits()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"bars": {}}, id="another-endpoint's-reply"),
        pytest.param({"message": "ok"}, id="no-quotes-key"),
        pytest.param({"quotes": []}, id="quotes-not-an-object"),
        pytest.param({"quotes": None}, id="quotes-null"),
        pytest.param({"quotes": {"SPY": "520.1"}}, id="quote-not-an-object"),
        pytest.param({"quotes": {"SPY": [quote(1, 2)]}}, id="quote-a-list"),
        pytest.param({"quotes": {"SPY": {"ap": 520.2}}}, id="bid-missing"),
        pytest.param({"quotes": {"SPY": quote("520.1", 520.2)}}, id="bid-a-string"),
        pytest.param({"quotes": {"SPY": quote(True, 520.2)}}, id="bid-a-boolean"),
        pytest.param([{"quotes": {}}], id="a-list"),
        pytest.param("<html>maintenance</html>", id="not-json"),
        pytest.param(None, id="empty-body"),
    ],
)
def test_a_reply_not_shaped_as_documented_is_malformed(exchange: LocalExchange, body: Any) -> None:
    exchange.add_fault(reply(body))

    with pytest.raises(BrokerUnknown) as raised:
        adapter(exchange).latest_quotes(["SPY", "TLT"])

    assert raised.value.broker_code == "malformed"
    assert exchange.count("GET", QUOTES) == 1  # not retried: the same reply would come back


def test_a_transient_failure_is_retried(exchange: LocalExchange) -> None:
    exchange.add_fault(Fault.server_error(503, method="GET", path=QUOTES))

    quotes = adapter(exchange).latest_quotes(["SPY"])

    assert list(quotes) == ["SPY"]
    assert exchange.count("GET", QUOTES) == 2
