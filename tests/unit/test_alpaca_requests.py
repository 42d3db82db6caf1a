"""The adapters write every query and body themselves; each must be what alpaca-py's
own request models send (the models are imported here only: they load pandas)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from alpaca.common.enums import Sort
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.requests import (
    StockBarsRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
)
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.requests import ClosePositionRequest, GetCalendarRequest, GetOrdersRequest

from alchemiser.adapters.alpaca.broker import ORDERS_PAGE, AlpacaBroker, orders_query
from alchemiser.adapters.alpaca.clients import rest_client
from alchemiser.adapters.alpaca.market_data import AlpacaMarketData
from alchemiser.adapters.alpaca.policy import RetryPolicy
from alchemiser.adapters.alpaca.transport import Transport
from alchemiser.adapters.clock import ManualClock

NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2024, 1, 5, 15, 5, tzinfo=UTC)


class Recorder:
    """Stands in for a client's request methods: records (method, path, data)."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.calls: list[tuple[str, str, Any]] = []

    def method(self, name: str) -> Any:
        def call(path: str, data: Any = None) -> Any:
            self.calls.append((name, path, None if data is None else dict(data)))
            return self.reply(name, path, data) if callable(self.reply) else self.reply

        return call


def client(reply: Any) -> tuple[Any, Recorder]:
    made = rest_client("https://paper-api.alpaca.markets", "k", "s")
    recorder = Recorder(reply)
    for name in ("get", "post", "delete"):
        setattr(made, name, recorder.method(name))
    return made, recorder


def wire(query: dict[str, Any]) -> str | None:
    """The query string requests sends for ``query`` (enums and TimeFrame as text)."""
    return requests.Request("GET", "https://host/v2", params=query).prepare().url


def transport() -> Transport:
    return Transport(ManualClock(NOW), RetryPolicy())


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (
            orders_query("open"),
            GetOrdersRequest(status=QueryOrderStatus.OPEN, limit=ORDERS_PAGE),
        ),
        (
            orders_query("all", newest_first=True),
            GetOrdersRequest(status=QueryOrderStatus.ALL, limit=ORDERS_PAGE, direction=Sort.DESC),
        ),
        (
            orders_query(
                "all",
                after=datetime(2024, 1, 4, tzinfo=NEW_YORK),
                until=datetime(2024, 1, 5, 14, 30, 0, 1, tzinfo=UTC),
                newest_first=True,
            ),
            GetOrdersRequest(
                status=QueryOrderStatus.ALL,
                limit=ORDERS_PAGE,
                after=datetime(2024, 1, 4, tzinfo=NEW_YORK),
                until=datetime(2024, 1, 5, 14, 30, 0, 1, tzinfo=UTC),
                direction=Sort.DESC,
            ),
        ),
        (
            orders_query("all", after=datetime(2024, 1, 4, 9, 30)),
            GetOrdersRequest(
                status=QueryOrderStatus.ALL, limit=ORDERS_PAGE, after=datetime(2024, 1, 4, 9, 30)
            ),
        ),
    ],
)
def test_orders_queries_are_alpaca_pys(ours: dict[str, Any], theirs: GetOrdersRequest) -> None:
    assert list(ours.items()) == list(theirs.to_request_fields().items())


def test_close_position_and_cancel_are_alpaca_pys() -> None:
    order = {
        "id": "904837E3-3B76-47EC-B432-046DB621571B",
        "client_order_id": "c",
        "symbol": "SPY",
        "side": "sell",
        "qty": "2.5",
        "status": "new",
        "filled_qty": "0",
    }
    made, recorder = client(lambda name, path, data: None if path.startswith("/orders/") else order)
    broker = AlpacaBroker(made, transport())
    record = broker.close_position("SPY", Decimal("2.50"))
    broker.cancel_order(record)
    assert recorder.calls == [
        ("delete", "/positions/SPY", ClosePositionRequest(qty="2.50").to_request_fields()),
        ("delete", "/orders/904837e3-3b76-47ec-b432-046db621571b", None),
    ]


def test_market_data_queries_are_alpaca_pys() -> None:
    def reply(name: str, path: str, data: Any) -> Any:
        if path == "/calendar":
            return [{"date": d} for d in ("2024-01-03", "2024-01-04", "2024-01-05")]
        if path == "/stocks/bars":
            return {"bars": {"SPY": [{"t": "2024-01-04T05:00:00Z", "c": 1.0}]}}
        if path == "/stocks/quotes/latest":
            return {"quotes": {}}
        return {"trades": {"SPY": {"p": 1.0, "t": "2024-01-05T15:00:00Z"}}}

    trading, on_trading = client(reply)
    data, on_data = client(reply)
    market = AlpacaMarketData(trading, data, transport(), feed="sip", max_price_age_seconds=1e9)
    market.history(["SPY", "QQQ"], date(2024, 1, 4), 1)
    market.latest_quotes(["SPY", "QQQ"])
    market.latest_prices(["SPY"], date(2024, 1, 5))

    ((_, calendar_path, calendar),) = on_trading.calls
    assert calendar_path == "/calendar"
    assert (
        calendar
        == GetCalendarRequest(
            start=date.fromisoformat(calendar["start"]), end=date.fromisoformat(calendar["end"])
        ).to_request_fields()
    )
    bars_request = StockBarsRequest(
        symbol_or_symbols=["QQQ", "SPY"],
        timeframe=TimeFrame.Day,
        start=datetime.combine(date(2024, 1, 4), time(0), NEW_YORK),
        end=datetime.combine(date(2024, 1, 4), time(23, 59), NEW_YORK),
        adjustment=Adjustment.ALL,
        feed=DataFeed.SIP,
    )
    # alpaca-py's get_stock_bars adds the page size and the page token (None: unsent).
    bars = {**bars_request.to_request_fields(), "limit": 10_000, "page_token": None}
    quotes = StockLatestQuoteRequest(symbol_or_symbols=["QQQ", "SPY"], feed=DataFeed.SIP)
    trades = StockLatestTradeRequest(symbol_or_symbols=["SPY"], feed=DataFeed.SIP)
    assert [(p, wire(q)) for _, p, q in on_data.calls] == [
        ("/stocks/bars", wire(bars)),
        ("/stocks/quotes/latest", wire(quotes.to_request_fields())),
        ("/stocks/trades/latest", wire(trades.to_request_fields())),
    ]


def test_an_unknown_feed_is_refused() -> None:
    made, _ = client(None)
    with pytest.raises(ValueError, match="not a valid DataFeed"):
        AlpacaMarketData(made, made, transport(), feed="nasdaq")
