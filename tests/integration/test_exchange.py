"""The local Alpaca-compatible exchange, through the real alpaca-py clients and raw HTTP.

alpaca-py (``TradingClient`` / ``StockHistoricalDataClient`` with ``url_override``) must
parse every response the product uses; raw ``requests`` observe what alpaca-py hides:
faults, status codes, headers, dropped connections.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest, StockLatestQuoteRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetCalendarRequest,
    GetOrdersRequest,
    MarketOrderRequest,
)

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.exchange import ExchangeSettings, Fault, LocalExchange
from alchemiser.exchange.engine import NEW_YORK, Engine
from tests.conftest import write_prices

pytestmark = pytest.mark.integration

KEY, SECRET = "key", "secret"
AUTH = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
# Two weeks of sessions; 2026-07-03 (Independence Day observed) and weekends absent.
SESSIONS = [
    "2026-06-29",
    "2026-06-30",
    "2026-07-01",
    "2026-07-02",
    "2026-07-06",
    "2026-07-07",
    "2026-07-08",
    "2026-07-09",
    "2026-07-10",
]
LAST = date(2026, 7, 10)
BASE = {"SPY": 500.0, "TLT": 90.0, "GLD": 200.0, "BRK": 400.0}


def close(symbol: str, day: str) -> Decimal:
    return Decimal(repr(round(BASE[symbol] * (1 + 0.01 * SESSIONS.index(day)), 2)))


def at(day: date, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=NEW_YORK)


@pytest.fixture(scope="module")
def prices(tmp_path_factory: pytest.TempPathFactory) -> Path:
    closes = {s: {d: float(close(s, d)) for d in SESSIONS} for s in BASE}
    extra = {"2025-11-26": 1.0, "2025-11-28": 1.0, "2025-12-24": 1.0, "2025-12-26": 1.0}
    closes["SPY"] = {**extra, **closes["SPY"]}  # calendar rows for early closes
    return write_prices(tmp_path_factory.mktemp("exchange") / "prices", closes)


@pytest.fixture
def exchange(prices: Path) -> Iterator[LocalExchange]:
    settings = ExchangeSettings(whole_share_symbols=frozenset({"BRK"}))
    with LocalExchange(prices, settings) as running:
        yield running


@pytest.fixture
def http(exchange: LocalExchange) -> Iterator[requests.Session]:
    session = requests.Session()
    session.headers.update(AUTH)
    yield session
    session.close()


@pytest.fixture
def trading(exchange: LocalExchange) -> TradingClient:
    return TradingClient(KEY, SECRET, url_override=exchange.url)


def market(symbol: str, side: OrderSide = OrderSide.BUY, **fields: Any) -> MarketOrderRequest:
    return MarketOrderRequest(symbol=symbol, side=side, time_in_force=TimeInForce.DAY, **fields)


def post_order(
    http: requests.Session, exchange: LocalExchange, symbol: str, side: str = "buy", **fields: Any
) -> requests.Response:
    body = {"symbol": symbol, "side": side, "type": "market", "time_in_force": "day", **fields}
    return http.post(f"{exchange.url}/v2/orders", json=body, timeout=10)


def get(http: requests.Session, exchange: LocalExchange, path: str, **params: Any) -> Any:
    response = http.get(exchange.url + path, params=params, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


# -- alpaca-py parses every response the product uses -------------------------------------


def test_trading_client_parses_every_response(
    exchange: LocalExchange, trading: TradingClient
) -> None:
    clock = trading.get_clock()
    assert clock.is_open
    assert clock.timestamp == at(LAST, 9, 30, 1).replace(microsecond=clock.timestamp.microsecond)
    assert clock.next_close == at(LAST, 16)
    account = trading.get_account()
    assert account.cash == "100000"
    assert account.status == "ACTIVE"
    assets = trading.get_all_assets()
    assert {a.symbol for a in assets} == set(BASE)
    assert trading.get_asset("BRK").fractionable is False
    days = trading.get_calendar(GetCalendarRequest(start=date(2026, 7, 1), end=LAST))
    assert [d.date.isoformat() for d in days] == SESSIONS[2:]

    by_qty = trading.submit_order(market("SPY", qty=10, client_order_id="run-1-SPY"))
    assert by_qty.status == OrderStatus.ACCEPTED
    assert by_qty.qty == "10"
    by_notional = trading.submit_order(market("GLD", notional=1000, client_order_id="run-1-GLD"))
    assert by_notional.notional == "1000"

    filled = trading.get_order_by_id(by_qty.id)
    assert filled.status == OrderStatus.FILLED
    assert filled.filled_qty == "10"
    assert Decimal(str(filled.filled_avg_price)) == (
        close("SPY", "2026-07-10") * Decimal("1.0005")
    ).quantize(Decimal("0.01"))
    assert trading.get_order_by_client_id("run-1-GLD").id == by_notional.id

    positions = {p.symbol: p for p in trading.get_all_positions()}
    assert set(positions) == {"SPY", "GLD"}
    assert positions["SPY"].qty == "10"
    gld = trading.get_open_position("GLD")
    assert Decimal(gld.qty) == (
        Decimal(1000) / (close("GLD", "2026-07-10") * Decimal("1.0005")).quantize(Decimal("0.01"))
    ).quantize(Decimal("1e-9"), "ROUND_DOWN")
    assert Decimal(gld.cost_basis) <= 1000

    every = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert [o.client_order_id for o in every] == ["run-1-GLD", "run-1-SPY"]
    later = trading.get_orders(
        GetOrdersRequest(status=QueryOrderStatus.ALL, after=by_qty.submitted_at)
    )
    assert [o.client_order_id for o in later] == ["run-1-GLD"]

    exchange.configure(fill_delay_seconds=600)
    resting = trading.submit_order(market("TLT", qty=1))
    assert [o.id for o in trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN))] == [
        resting.id
    ]
    trading.cancel_order_by_id(resting.id)
    assert trading.get_order_by_id(resting.id).status == OrderStatus.CANCELED
    second = trading.submit_order(market("TLT", qty=2))
    cancelled = trading.cancel_orders()
    assert [c.id for c in cancelled] == [second.id]
    assert cancelled[0].status == 200

    with pytest.raises(APIError) as rejected:
        trading.get_open_position("TLT")
    assert rejected.value.status_code == 404
    with pytest.raises(APIError) as duplicate:
        trading.submit_order(market("SPY", qty=1, client_order_id="run-1-SPY"))
    assert duplicate.value.status_code == 422
    assert duplicate.value.code == 40010001


def test_data_client_paginates_bars_exactly_like_alpaca(exchange: LocalExchange) -> None:
    exchange.configure(max_bars_per_page=7)
    data = StockHistoricalDataClient(KEY, SECRET, url_override=exchange.url)
    bars = data.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols=["SPY", "TLT", "GLD", "BRK", "NOPE"],
            timeframe=TimeFrame.Day,
            start=datetime(2026, 6, 1),
        )
    ).data
    completed = SESSIONS[:-1]  # the current session's bar is not served
    total = sum(len(series) for series in bars.values())
    assert total == 4 * len(completed)
    assert exchange.count("GET", "/v2/stocks/bars") == math.ceil(total / 7)
    assert "NOPE" not in bars
    spy = bars["SPY"]
    assert [b.timestamp.astimezone(NEW_YORK).date().isoformat() for b in spy] == completed
    assert all(b.timestamp.astimezone(NEW_YORK).time().hour == 0 for b in spy)
    assert [Decimal(repr(b.close)) for b in spy] == [close("SPY", d) for d in completed]
    assert all(b.open == b.high == b.low == b.close for b in spy)

    quotes = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols=["SPY", "TLT"]))
    spy_close = float(close("SPY", "2026-07-10"))
    assert quotes["SPY"].bid_price < spy_close < quotes["SPY"].ask_price
    assert quotes["SPY"].ask_price - quotes["SPY"].bid_price < spy_close * 0.0003


def test_bundled_many_symbols_paginate_at_alpaca_page_size() -> None:
    store = FilePriceStore.bundled()
    symbols = ["SPY", "QQQ", "TLT", "GLD", "XLK", "XLF", "XLP", "XLY", "VTI", "VTV"]
    start = date(2021, 7, 1)
    with LocalExchange() as exchange:
        data = StockHistoricalDataClient(KEY, SECRET, url_override=exchange.url)
        bars = data.get_stock_bars(
            StockBarsRequest(symbol_or_symbols=symbols, timeframe=TimeFrame.Day, start=start)
        ).data
        requests_made = exchange.count("GET", "/v2/stocks/bars")
    last = store.latest_session()
    history = store.history(symbols, end=last, sessions=len(store.sessions()))
    expected_rows = history.dates[(history.dates >= start) & (history.dates < last)]
    total = sum(len(v) for v in bars.values())
    assert total == len(symbols) * len(expected_rows)
    assert total > 10_000  # alpaca-py asks for pages of 10,000
    assert requests_made == math.ceil(total / 10_000)
    closes = [b.close for b in bars["QQQ"]]
    column = history.column("QQQ")[(history.dates >= start) & (history.dates < last)]
    assert closes == list(column)


# -- fills -------------------------------------------------------------------------------


def test_immediate_fill_updates_cash_and_positions(
    exchange: LocalExchange, http: requests.Session
) -> None:
    accepted = post_order(http, exchange, "SPY", qty="4").json()
    assert accepted["status"] == "accepted"
    assert accepted["filled_qty"] == "0"
    order = get(http, exchange, f"/v2/orders/{accepted['id']}")
    price = (close("SPY", "2026-07-10") * Decimal("1.0005")).quantize(Decimal("0.01"))
    assert order["status"] == "filled"
    assert order["filled_avg_price"] == str(price.normalize())
    assert exchange.engine.cash() == Decimal(100_000) - 4 * price
    position = exchange.engine.positions()["SPY"]
    assert position.qty == 4
    assert position.avg_entry_price == price

    sold = post_order(http, exchange, "SPY", "sell", qty="1.5").json()
    assert get(http, exchange, f"/v2/orders/{sold['id']}")["status"] == "filled"
    assert exchange.engine.positions()["SPY"].qty == Decimal("2.5")
    assert exchange.engine.positions()["SPY"].avg_entry_price == price
    account = get(http, exchange, "/v2/account")
    sell_price = (close("SPY", "2026-07-10") * Decimal("0.9995")).quantize(Decimal("0.01"))
    assert Decimal(account["cash"]) == Decimal(100_000) - 4 * price + (
        Decimal("1.5") * sell_price
    ).quantize(Decimal("0.01"))
    assert Decimal(account["equity"]) == Decimal(account["cash"]) + Decimal("2.5") * close(
        "SPY", "2026-07-10"
    )


def test_delayed_fill(exchange: LocalExchange, http: requests.Session) -> None:
    exchange.configure(fill_delay_seconds=30)
    order = post_order(http, exchange, "TLT", qty="10").json()
    assert get(http, exchange, f"/v2/orders/{order['id']}")["status"] == "new"
    account = get(http, exchange, "/v2/account")
    assert Decimal(account["buying_power"]) < Decimal(account["cash"])
    exchange.engine.advance(31)
    filled = get(http, exchange, f"/v2/orders/{order['id']}")
    assert filled["status"] == "filled"
    submitted = datetime.fromisoformat(filled["submitted_at"])
    assert datetime.fromisoformat(filled["filled_at"]) - submitted == timedelta(seconds=30)


def test_partial_fill_then_late_fill(exchange: LocalExchange, http: requests.Session) -> None:
    exchange.configure(partial_fills={"GLD": 0.5}, late_fill_seconds=60)
    order = post_order(http, exchange, "GLD", qty="7").json()
    partial = get(http, exchange, f"/v2/orders/{order['id']}")
    assert partial["status"] == "partially_filled"
    assert partial["filled_qty"] == "3.5"
    assert get(http, exchange, "/v2/positions/GLD")["qty"] == "3.5"
    exchange.engine.advance(61)
    done = get(http, exchange, f"/v2/orders/{order['id']}")
    assert done["status"] == "filled"
    assert done["filled_qty"] == "7"
    assert exchange.engine.positions()["GLD"].qty == 7


def test_partial_fill_never_completes_and_expires_at_the_close(
    exchange: LocalExchange, http: requests.Session
) -> None:
    exchange.configure(partial_fills={"BRK": 0.5})
    order = post_order(http, exchange, "BRK", qty="5").json()
    partial = get(http, exchange, f"/v2/orders/{order['id']}")
    assert partial["status"] == "partially_filled"
    assert partial["filled_qty"] == "2"  # whole shares only
    assert get(http, exchange, "/v2/orders", status="open")[0]["id"] == order["id"]
    exchange.configure(now=at(LAST, 16, 0, 1))
    expired = get(http, exchange, f"/v2/orders/{order['id']}")
    assert expired["status"] == "expired"
    assert expired["filled_qty"] == "2"
    assert expired["expired_at"] == "2026-07-10T20:00:00.000000Z"
    assert get(http, exchange, "/v2/orders", status="open") == []


def test_cancel_keeps_the_partial_fill(exchange: LocalExchange, http: requests.Session) -> None:
    exchange.configure(partial_fills={"SPY": 0.25})
    order = post_order(http, exchange, "SPY", qty="8").json()
    assert get(http, exchange, f"/v2/orders/{order['id']}")["filled_qty"] == "2"
    assert http.delete(f"{exchange.url}/v2/orders/{order['id']}", timeout=10).status_code == 204
    canceled = get(http, exchange, f"/v2/orders/{order['id']}")
    assert canceled["status"] == "canceled"
    assert canceled["filled_qty"] == "2"
    assert exchange.engine.positions()["SPY"].qty == 2
    again = http.delete(f"{exchange.url}/v2/orders/{order['id']}", timeout=10)
    assert again.status_code == 422
    assert again.json() == {"code": 42210000, "message": "order is not cancelable"}


def test_notional_order_quantity_is_floored_to_nine_decimals(
    exchange: LocalExchange, http: requests.Session
) -> None:
    order = post_order(http, exchange, "TLT", notional="100").json()
    filled = get(http, exchange, f"/v2/orders/{order['id']}")
    price = (close("TLT", "2026-07-10") * Decimal("1.0005")).quantize(Decimal("0.01"))
    assert Decimal(filled["filled_qty"]) == (Decimal(100) / price).quantize(
        Decimal("1e-9"), "ROUND_DOWN"
    )
    assert filled["qty"] is None
    assert filled["notional"] == "100"


# -- rejections ------------------------------------------------------------------------------


def test_rejections_are_alpacas(exchange: LocalExchange, http: requests.Session) -> None:
    def rejected(symbol: str, side: str = "buy", **fields: Any) -> tuple[int, dict[str, Any]]:
        response = post_order(http, exchange, symbol, side, **fields)
        return response.status_code, response.json()

    assert rejected("SPY", qty="1000") == (
        403,
        {"code": 40310000, "message": "insufficient buying power"},
    )
    assert rejected("SPY", notional="100001")[0] == 403
    assert rejected("TLT", "sell", qty="1") == (
        403,
        {
            "code": 40310000,
            "message": "insufficient qty available for order (requested: 1, available: 0)",
        },
    )
    assert rejected("BRK", qty="0.5") == (
        403,
        {"code": 40310000, "message": 'asset "BRK" is not fractionable'},
    )
    assert rejected("BRK", notional="500")[0] == 403
    assert rejected("XYZ", qty="1") == (422, {"code": 40010001, "message": 'asset "XYZ" not found'})
    assert rejected("SPY", qty="1", client_order_id="x" * 129)[0] == 422
    assert rejected("SPY", qty="1", type="limit", limit_price="1")[0] == 422
    assert rejected("SPY", qty="1", time_in_force="gtc")[0] == 422

    exchange.configure(fill_delay_seconds=600)
    assert post_order(http, exchange, "SPY", qty="3", client_order_id="mine").status_code == 200
    assert rejected("SPY", qty="1", client_order_id="mine") == (
        422,
        {"code": 40010001, "message": "client_order_id must be unique"},
    )
    exchange.engine.set_position("SPY", Decimal(5), Decimal(400))
    assert rejected("SPY", "sell", qty="1") == (
        403,
        {"code": 40310000, "message": "potential wash trade detected. use complex orders"},
    )
    assert http.delete(f"{exchange.url}/v2/orders", timeout=10).status_code == 207
    assert post_order(http, exchange, "SPY", "sell", qty="4").status_code == 200
    assert get(http, exchange, "/v2/positions/SPY")["qty_available"] == "1"
    assert rejected("SPY", "sell", qty="2")[1]["message"] == (
        "insufficient qty available for order (requested: 2, available: 1)"
    )
    accepted = [r.accepted for r in exchange.requests if r.method == "POST"]
    assert accepted.count(True) == 2


# -- the market clock -------------------------------------------------------------------------


def test_market_closed_orders_queue_then_fill_at_the_next_session(
    exchange: LocalExchange, http: requests.Session
) -> None:
    exchange.configure(now=at(date(2026, 7, 3), 11))  # Independence Day observed
    clock = get(http, exchange, "/v2/clock")
    assert clock["is_open"] is False
    assert clock["timestamp"].startswith("2026-07-03T11:00:00")
    assert clock["timestamp"].endswith("-04:00")
    assert clock["next_open"] == "2026-07-06T09:30:00-04:00"
    assert clock["next_close"] == "2026-07-06T16:00:00-04:00"
    order = post_order(http, exchange, "SPY", qty="1").json()
    for _ in range(3):
        assert get(http, exchange, f"/v2/orders/{order['id']}")["status"] == "accepted"
    assert exchange.engine.positions() == {}
    assert order["expires_at"] == "2026-07-06T20:00:00.000000Z"
    exchange.configure(now=at(date(2026, 7, 6), 9, 31))
    filled = get(http, exchange, f"/v2/orders/{order['id']}")
    assert filled["status"] == "filled"
    price = (close("SPY", "2026-07-06") * Decimal("1.0005")).quantize(Decimal("0.01"))
    assert Decimal(filled["filled_avg_price"]) == price


def test_after_hours_and_early_closes(exchange: LocalExchange, http: requests.Session) -> None:
    exchange.configure(now=at(LAST, 16, 30))
    clock = get(http, exchange, "/v2/clock")
    assert clock["is_open"] is False
    assert clock["next_open"] == "2026-07-13T09:30:00-04:00"  # after the data: weekdays
    exchange.configure(now=at(LAST, 8))
    assert get(http, exchange, "/v2/clock")["next_open"] == "2026-07-10T09:30:00-04:00"
    days = {
        d["date"]: d
        for d in get(http, exchange, "/v2/calendar", start="2025-11-01", end="2025-12-31")
    }
    assert days["2025-11-28"]["close"] == "13:00"  # the day after Thanksgiving
    assert days["2025-12-24"]["close"] == "13:00"
    assert days["2025-11-26"]["close"] == "16:00"
    assert days["2025-11-26"]["settlement_date"] == "2025-11-28"
    exchange.configure(now=at(date(2025, 11, 28), 13, 30))
    assert get(http, exchange, "/v2/clock")["is_open"] is False


def test_stale_bars_hide_the_last_sessions(exchange: LocalExchange, http: requests.Session) -> None:
    params = {"symbols": "SPY", "timeframe": "1Day", "start": "2026-06-01"}
    fresh = get(http, exchange, "/v2/stocks/bars", **params)["bars"]["SPY"]
    assert fresh[-1]["t"] == "2026-07-09T04:00:00Z"
    exchange.configure(stale_bars_sessions=2)
    stale = get(http, exchange, "/v2/stocks/bars", **params)["bars"]["SPY"]
    assert stale[-1]["t"] == "2026-07-07T04:00:00Z"
    assert len(stale) == len(fresh) - 2


# -- rate limit, auth, latency ---------------------------------------------------------------


def test_rate_limit_429_does_not_apply_the_request(
    exchange: LocalExchange, http: requests.Session
) -> None:
    exchange.configure(rate_limit_per_minute=3)
    sent = int(time.time())  # read before the request: a slow machine cannot fail the bound
    first = http.get(f"{exchange.url}/v2/clock", timeout=10)
    assert first.headers["X-RateLimit-Limit"] == "3"
    assert first.headers["X-RateLimit-Remaining"] == "2"
    assert int(first.headers["X-RateLimit-Reset"]) >= sent
    get(http, exchange, "/v2/clock")
    get(http, exchange, "/v2/clock")
    limited = post_order(http, exchange, "SPY", qty="1")
    assert limited.status_code == 429
    assert limited.json() == {"code": 42910000, "message": "rate limit exceeded"}
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert exchange.engine.orders() == []
    exchange.configure(rate_limit_per_minute=200)
    assert post_order(http, exchange, "SPY", qty="1").status_code == 200


def test_auth_and_key_rotation(exchange: LocalExchange) -> None:
    url = f"{exchange.url}/v2/account"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers=AUTH, timeout=10).status_code == 200
    exchange.configure(key_id="AK1", secret_key="s1")
    wrong = requests.get(url, headers=AUTH, timeout=10)
    assert wrong.status_code == 401
    assert wrong.json() == {"code": 40110000, "message": "request is not authorized"}
    first = {"APCA-API-KEY-ID": "AK1", "APCA-API-SECRET-KEY": "s1"}
    assert requests.get(url, headers=first, timeout=10).status_code == 200
    exchange.configure(key_id="AK2", secret_key="s2")
    assert requests.get(url, headers=first, timeout=10).status_code == 401
    trading = TradingClient("AK2", "s2", url_override=exchange.url)
    assert trading.get_account().status == "ACTIVE"
    assert "s2" not in repr(exchange.settings)
    assert all("s2" not in repr(r) for r in exchange.requests)


def test_latency(exchange: LocalExchange, http: requests.Session) -> None:
    # No stopwatch: a client that waits less than the latency gets no answer in time,
    # one that waits long enough gets it (a loaded machine only makes the first likelier).
    exchange.configure(latency_ms=2000)
    with pytest.raises(requests.ReadTimeout):
        http.get(f"{exchange.url}/v2/clock", timeout=(5, 0.5))
    assert http.get(f"{exchange.url}/v2/clock", timeout=(5, 30)).status_code == 200


# -- faults seen by a raw client --------------------------------------------------------------


def test_connection_reset_before_does_not_apply_the_order(
    exchange: LocalExchange, http: requests.Session
) -> None:
    exchange.add_fault(Fault.connection_reset(method="POST", path="/v2/orders"))
    with pytest.raises(requests.ConnectionError):
        post_order(http, exchange, "SPY", qty="1", client_order_id="lost")
    assert exchange.engine.orders() == []
    record = exchange.requests[-1]
    assert (record.status, record.accepted, record.client_order_id) == (None, False, "lost")
    assert post_order(http, exchange, "SPY", qty="1", client_order_id="lost").status_code == 200


def test_connection_reset_after_applies_the_order(
    exchange: LocalExchange, http: requests.Session
) -> None:
    exchange.add_fault(Fault.connection_reset(when="after", method="POST", path="/v2/orders"))
    with socket.create_connection(("127.0.0.1", exchange.port), timeout=5) as raw:
        body = json.dumps(
            {"symbol": "SPY", "side": "buy", "type": "market", "time_in_force": "day", "qty": 1}
        ).encode()
        head = (
            f"POST /v2/orders HTTP/1.1\r\nHost: x\r\nAPCA-API-KEY-ID: k\r\n"
            f"APCA-API-SECRET-KEY: s\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        raw.sendall(head + body)
        with pytest.raises(ConnectionResetError):
            raw.recv(1024)
    assert [o.symbol for o in exchange.engine.orders()] == ["SPY"]
    assert exchange.requests[-1].accepted is True


def test_slow_response_times_out_after_the_order_was_accepted(
    exchange: LocalExchange, http: requests.Session
) -> None:
    exchange.add_fault(Fault.slow(1.0, method="POST", path="/v2/orders"))
    with pytest.raises(requests.ReadTimeout):
        http.post(
            f"{exchange.url}/v2/orders",
            json={"symbol": "GLD", "side": "buy", "type": "market", "time_in_force": "day"}
            | {"qty": "2", "client_order_id": "slow-1"},
            timeout=(5, 0.3),
        )
    assert exchange.engine.order_by_client_id("slow-1") is not None
    found = get(http, exchange, "/v2/orders:by_client_order_id", client_order_id="slow-1")
    assert found["status"] == "filled"


def test_slow_before_delays_then_answers(exchange: LocalExchange, http: requests.Session) -> None:
    exchange.add_fault(Fault.slow(2.0, when="before", path="/v2/account"))
    with pytest.raises(requests.ReadTimeout):  # held back: no answer within half a second
        http.get(f"{exchange.url}/v2/account", timeout=(5, 0.5))
    exchange.add_fault(Fault.slow(2.0, when="before", path="/v2/account"))
    assert http.get(f"{exchange.url}/v2/account", timeout=(5, 30)).status_code == 200


def test_server_errors_json_and_not(exchange: LocalExchange, http: requests.Session) -> None:
    exchange.add_fault(Fault.server_error(502, path="/v2/clock"))
    html = http.get(f"{exchange.url}/v2/clock", timeout=10)
    assert html.status_code == 502
    assert html.headers["Content-Type"].startswith("text/html")
    with pytest.raises(ValueError):  # noqa: PT011 (requests' JSONDecodeError)
        html.json()
    exchange.add_fault(Fault.server_error(503, json_body=True, path="/v2/stocks/bars"))
    data = http.get(f"{exchange.url}/v2/stocks/bars?symbols=SPY&timeframe=1Day", timeout=10)
    assert data.status_code == 503
    assert data.json()["code"] == 50010000
    after = Fault.server_error(504, method="POST", path="/v2/orders", when="after")
    exchange.add_fault(after)
    assert post_order(http, exchange, "SPY", qty="1").status_code == 504
    assert len(exchange.engine.orders()) == 1


def test_scripted_rate_limit_and_order_rejections(
    exchange: LocalExchange, http: requests.Session
) -> None:
    exchange.add_fault(Fault.rate_limited(retry_after=2, reset_in=30, path="/v2/account"))
    sent = time.time()  # the fault fires between these two readings
    limited = http.get(f"{exchange.url}/v2/account", timeout=10)
    answered = time.time()
    reset = int(limited.headers["X-RateLimit-Reset"])
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert int(sent) + 29 <= reset <= answered + 31  # 30 s after the fault fired
    for fault, message in (
        (Fault.insufficient_buying_power(), "insufficient buying power"),
        (Fault.wash_trade(), "potential wash trade detected. use complex orders"),
        (Fault.duplicate_client_order_id(), "client_order_id must be unique"),
    ):
        exchange.add_fault(fault)
        response = post_order(http, exchange, "SPY", qty="1")
        assert response.json()["message"] == message
    assert exchange.engine.orders() == []


def test_nth_times_and_every(exchange: LocalExchange, http: requests.Session) -> None:
    def statuses(path: str, n: int) -> list[int]:
        return [http.get(exchange.url + path, timeout=10).status_code for _ in range(n)]

    exchange.add_fault(Fault(path="/v2/clock", nth=2, times=2, status=503))
    assert statuses("/v2/clock", 5) == [200, 503, 503, 200, 200]
    exchange.clear_faults()
    exchange.add_fault(Fault(method="GET", path=r"/v2/assets/.*", nth=3, every=True, status=500))
    assert statuses("/v2/assets/SPY", 5) == [200, 200, 500, 500, 500]
    assert statuses("/v2/assets", 1) == [200]  # the regex matches the whole path only
    exchange.clear_faults()
    exchange.add_fault(Fault(method="DELETE", path="/v2/clock", status=500))
    assert statuses("/v2/clock", 1) == [200]
    assert exchange.fault_hits() == []
    assert len(exchange.faults) == 1


# -- the control plane and the request log -------------------------------------------------


def test_control_endpoints(exchange: LocalExchange, http: requests.Session) -> None:
    control = f"{exchange.url}/_control"
    faults = [{"method": "GET", "path": "/v2/clock", "status": 500, "body": "boom"}]
    assert requests.post(f"{control}/faults", json=faults, timeout=10).status_code == 200
    assert http.get(f"{exchange.url}/v2/clock", timeout=10).text == "boom"
    assert len(requests.get(f"{control}/faults", timeout=10).json()) == 1
    assert requests.delete(f"{control}/faults", timeout=10).json() == []
    assert exchange.faults == []

    changed = requests.post(
        f"{control}/settings",
        json={
            "partial_fills": {"SPY": 0.5},
            "fill_delay_seconds": 0,
            "now": "2026-07-09T10:00:00-04:00",
            "latency_ms": 0,
            "stale_bars_sessions": 1,
            "late_fill_seconds": None,
            "rate_limit_per_minute": 100,
        },
        timeout=10,
    ).json()
    assert changed["partial_fills"] == {"SPY": 0.5}
    assert get(http, exchange, "/v2/clock")["timestamp"].startswith("2026-07-09T10:00")
    bad = requests.post(f"{control}/settings", json={"colour": "red"}, timeout=10)
    assert bad.status_code == 400
    secret = requests.post(
        f"{control}/settings", json={"key_id": "K", "secret_key": "S3CR3T"}, timeout=10
    )
    assert "S3CR3T" not in secret.text
    assert http.get(f"{exchange.url}/v2/clock", timeout=10).status_code == 401
    http.headers.update({"APCA-API-KEY-ID": "K", "APCA-API-SECRET-KEY": "S3CR3T"})

    order = post_order(http, exchange, "SPY", qty="2", client_order_id="ctl").json()
    get(http, exchange, f"/v2/orders/{order['id']}")
    state = requests.get(f"{control}/state", timeout=10).json()
    assert state["orders"][0]["status"] == "partially_filled"
    assert state["positions"][0]["qty"] == "1"
    assert state["account"]["cash"] == str(exchange.engine.cash())
    assert state["requests"]["by_endpoint"]["POST /v2/orders"] == 1
    assert "S3CR3T" not in json.dumps(state)
    assert requests.post(f"{control}/reset_counts", timeout=10).status_code == 200
    assert exchange.requests == []


def test_request_log(exchange: LocalExchange, http: requests.Session) -> None:
    post_order(http, exchange, "SPY", qty="1", client_order_id="log-1")
    post_order(http, exchange, "SPY", qty="1", client_order_id="log-1")
    http.get(f"{exchange.url}/v2/orders", params={"status": "all"}, timeout=10)
    first, second, listing = exchange.requests
    assert (first.method, first.path, first.status, first.accepted) == (
        "POST",
        "/v2/orders",
        200,
        True,
    )
    assert (second.status, second.accepted, second.client_order_id) == (422, False, "log-1")
    assert listing.query == {"status": ["all"]}
    assert listing.accepted is None
    assert exchange.counts() == {"POST /v2/orders": 2, "GET /v2/orders": 1}
    assert first.at.astimezone(NEW_YORK).date() == LAST
    exchange.reset_counts()
    assert exchange.count() == 0


def test_engine_and_settings_validation(prices: Path) -> None:
    with pytest.raises(ValueError, match="not a session"):
        LocalExchange(prices, ExchangeSettings(session=date(2026, 7, 4)))
    with pytest.raises(ValueError, match="go together"):
        ExchangeSettings(key_id="k")
    with pytest.raises(ValueError, match="at most one"):
        Fault(status=500, reset=True)
    loaded = Fault.from_dict({"path": "/v2/orders", "method": "post", "reset": True, "nth": 2})
    assert (loaded.method, loaded.nth, loaded.kind) == ("POST", 2, "reset")
    with pytest.raises(ValueError, match="unknown fault field"):
        Fault.from_dict({"status": 500, "colour": "red"})
    exchange = LocalExchange(prices, ExchangeSettings(session=date(2026, 7, 6)))
    assert exchange.engine.now() >= at(date(2026, 7, 6), 9, 30, 1)
    assert exchange.engine.now().astimezone(UTC).tzinfo is UTC


# -- closing a position ------------------------------------------------------------------------


def delete_position(
    http: requests.Session, exchange: LocalExchange, symbol: str, **params: Any
) -> requests.Response:
    return http.delete(f"{exchange.url}/v2/positions/{symbol}", params=params, timeout=10)


def test_close_position_sells_a_fractional_residue_of_a_whole_share_asset(
    exchange: LocalExchange, trading: TradingClient
) -> None:
    exchange.engine.set_position("BRK", Decimal("60.5"), Decimal(400))  # BRK: whole shares
    assert exchange.engine.positions()["BRK"].qty == Decimal("60.5")
    order = trading.close_position("BRK", close_options=ClosePositionRequest(qty="0.5"))
    assert (order.symbol, order.side, order.qty, order.type) == ("BRK", "sell", "0.5", "market")
    assert order.client_order_id  # made up by the exchange
    assert exchange.engine.order_by_client_id(order.client_order_id) is not None
    filled = trading.get_order_by_id(order.id)
    assert filled.status == OrderStatus.FILLED
    assert filled.filled_qty == "0.5"
    assert exchange.engine.positions()["BRK"].qty == 60
    sell_price = (close("BRK", "2026-07-10") * Decimal("0.9995")).quantize(Decimal("0.01"))
    assert exchange.engine.cash() == Decimal(100_000) + (Decimal("0.5") * sell_price).quantize(
        Decimal("0.01")
    )
    record = exchange.requests[0]
    assert (record.method, record.path, record.query) == (
        "DELETE",
        "/v2/positions/BRK",
        {"qty": ["0.5"]},
    )
    assert (record.status, record.accepted, record.client_order_id) == (
        200,
        True,
        order.client_order_id,
    )

    everything = trading.close_position("BRK")  # neither qty nor percentage: all of it
    assert everything.qty == "60"
    assert "BRK" not in exchange.engine.positions()


def test_close_position_by_percentage(exchange: LocalExchange, http: requests.Session) -> None:
    exchange.engine.set_position("SPY", Decimal(10), Decimal(500))
    exchange.engine.set_position("GLD", Decimal("3.5"), Decimal(200))
    whole = delete_position(http, exchange, "SPY", percentage="25")
    assert whole.status_code == 200, whole.text
    assert whole.json()["qty"] == "2"  # 2.5 floored: a whole position sells whole shares
    fractional = delete_position(http, exchange, "GLD", percentage="50")
    assert fractional.json()["qty"] == "1.75"
    assert exchange.engine.positions()["GLD"].qty == Decimal("1.75")


def test_close_position_refusals_are_alpacas(
    exchange: LocalExchange, http: requests.Session
) -> None:
    exchange.engine.set_position("SPY", Decimal(5), Decimal(500))

    def refused(symbol: str, **params: Any) -> tuple[int, dict[str, Any]]:
        response = delete_position(http, exchange, symbol, **params)
        return response.status_code, response.json()

    assert refused("TLT") == (404, {"code": 40410000, "message": "position not found: TLT"})
    assert refused("XYZ")[0] == 404
    assert refused("SPY", qty="6") == (
        422,
        {
            "code": 40010001,
            "message": "insufficient qty available for order (requested: 6, available: 5)",
        },
    )
    assert refused("SPY", qty="1", percentage="10")[0] == 422
    assert refused("SPY", qty="0")[0] == 422
    assert refused("SPY", qty="0.0000000001")[0] == 422
    assert refused("SPY", percentage="150")[0] == 422
    assert refused("SPY", qty="lots")[0] == 422
    exchange.configure(fill_delay_seconds=600)
    assert delete_position(http, exchange, "SPY", qty="4").status_code == 200
    assert refused("SPY", qty="2")[1]["message"] == (
        "insufficient qty available for order (requested: 2, available: 1)"
    )
    assert [r.accepted for r in exchange.requests] == [False] * 8 + [True, False]
    with pytest.raises(APIError) as missing:
        TradingClient(KEY, SECRET, url_override=exchange.url).close_position("GLD")
    assert missing.value.status_code == 404


# -- fractional rules --------------------------------------------------------------------------


def test_fractional_orders_of_a_whole_share_asset_are_refused_buy_and_sell(
    exchange: LocalExchange, http: requests.Session
) -> None:
    exchange.engine.set_position("BRK", Decimal("60.5"), Decimal(400))
    not_fractionable = {"code": 40310000, "message": 'asset "BRK" is not fractionable'}
    for side, fields in (
        ("buy", {"qty": "0.5"}),
        ("buy", {"notional": "500"}),
        ("sell", {"qty": "0.5"}),
        ("sell", {"qty": "60.5"}),
        ("sell", {"notional": "500"}),
    ):
        response = post_order(http, exchange, "BRK", side, **fields)
        assert (response.status_code, response.json()) == (403, not_fractionable), (side, fields)
    assert exchange.engine.orders() == []
    whole = post_order(http, exchange, "BRK", "sell", qty="60")
    assert whole.status_code == 200
    assert exchange.engine.positions()["BRK"].qty == Decimal("0.5")  # the residue


def test_bundled_qqq_whole_shares_may_hold_a_fractional_position() -> None:
    engine = Engine(settings=ExchangeSettings(whole_share_symbols=frozenset({"QQQ"})))
    engine.set_position("QQQ", Decimal("60.5"), Decimal(400))
    assert engine.positions()["QQQ"].qty == Decimal("60.5")
    assert engine.positions_json()[0]["qty"] == "60.5"


# -- holdings of other asset classes, and the account's figures --------------------------------


def test_crypto_and_option_positions_count_in_the_account(
    exchange: LocalExchange, http: requests.Session, trading: TradingClient
) -> None:
    exchange.engine.set_position("SPY", Decimal(10), Decimal(500))
    exchange.engine.set_position(
        "BTCUSD", Decimal("0.5"), Decimal(50_000), asset_class="crypto", price=Decimal(60_000)
    )
    exchange.engine.set_position(
        "SPY260918C00500000",
        Decimal(2),
        Decimal("10.5"),
        asset_class="us_option",
        price=Decimal("12.25"),
    )
    positions = {p["symbol"]: p for p in get(http, exchange, "/v2/positions")}
    assert set(positions) == {"SPY", "BTCUSD", "SPY260918C00500000"}
    btc, option = positions["BTCUSD"], positions["SPY260918C00500000"]
    assert (btc["asset_class"], btc["qty"], btc["current_price"], btc["market_value"]) == (
        "crypto",
        "0.5",
        "60000",
        "30000",
    )
    assert btc["exchange"] == "CRYPTO"
    assert btc["cost_basis"] == "25000"
    # A contract is 100 shares: 2 x 12.25 x 100.
    assert (option["asset_class"], option["qty"], option["current_price"]) == (
        "us_option",
        "2",
        "12.25",
    )
    assert (option["market_value"], option["cost_basis"]) == ("2450", "2100")
    assert get(http, exchange, "/v2/positions/BTCUSD")["qty"] == "0.5"
    account = get(http, exchange, "/v2/account")
    spy_value = 10 * close("SPY", "2026-07-10")
    assert Decimal(account["long_market_value"]) == spy_value + 30_000 + 2450
    assert Decimal(account["equity"]) == Decimal(account["cash"]) + spy_value + 30_000 + 2450

    parsed = {p.symbol: p for p in trading.get_all_positions()}  # alpaca-py reads them
    assert parsed["BTCUSD"].asset_class == "crypto"
    assert parsed["SPY260918C00500000"].asset_class == "us_option"

    # The product cannot trade them here, nor close them.
    assert post_order(http, exchange, "BTCUSD", "sell", qty="0.5").status_code == 422
    assert delete_position(http, exchange, "BTCUSD").status_code == 422
    quotes = get(http, exchange, "/v2/stocks/quotes/latest", symbols="BTCUSD,SPY")["quotes"]
    assert set(quotes) == {"SPY"}

    with pytest.raises(ValueError, match="needs a price"):
        exchange.engine.set_position("ETHUSD", Decimal(1), Decimal(1), asset_class="crypto")
    with pytest.raises(ValueError, match="not a us_option symbol"):
        exchange.engine.set_position(
            "SPY 500 CALL", Decimal(1), Decimal(1), asset_class="us_option", price=Decimal(1)
        )
    with pytest.raises(ValueError, match="us_equity symbol in the price data"):
        exchange.engine.set_position(
            "SPY", Decimal(1), Decimal(1), asset_class="crypto", price=Decimal(1)
        )
    with pytest.raises(ValueError, match="asset_class"):
        exchange.engine.set_position("SPY", Decimal(1), Decimal(1), asset_class="ipo")


def test_positions_control_endpoint(exchange: LocalExchange, http: requests.Session) -> None:
    control = f"{exchange.url}/_control/positions"
    seeded = requests.post(
        control,
        json=[
            {"symbol": "BTC/USD", "qty": "0.25", "asset_class": "crypto", "price": "64000"},
            {"symbol": "BRK", "qty": "60.5", "avg_entry_price": "400"},
        ],
        timeout=10,
    )
    assert seeded.status_code == 200, seeded.text
    assert {p["symbol"]: p["qty"] for p in seeded.json()} == {"BTC/USD": "0.25", "BRK": "60.5"}
    btc = get(http, exchange, "/v2/positions/BTC%2FUSD")
    assert (btc["market_value"], btc["avg_entry_price"]) == ("16000", "64000")
    bad = requests.post(
        control, json={"symbol": "ETHUSD", "qty": 1, "asset_class": "crypto"}, timeout=10
    )
    assert bad.status_code == 400
    assert "price" in bad.json()["message"]
    unknown = requests.post(control, json={"symbol": "SPY", "qty": 1, "colour": "red"}, timeout=10)
    assert unknown.status_code == 400
    removed = requests.post(
        control, json={"symbol": "BRK", "qty": 0, "avg_entry_price": 1}, timeout=10
    )
    assert [p["symbol"] for p in removed.json()] == ["BTC/USD"]


def test_account_figures_equal_cash_plus_the_positions(
    exchange: LocalExchange, http: requests.Session
) -> None:
    exchange.engine.set_position("GLD", Decimal("3.333333333"), Decimal(199))
    exchange.engine.set_position("BRK", Decimal("7.5"), Decimal(401))
    exchange.engine.set_position(
        "SPY260918P00450000", Decimal(3), Decimal("4.1"), asset_class="us_option", price=Decimal(3)
    )
    exchange.engine.set_position(
        "ETH/USD", Decimal("1.123456789"), Decimal(3000), asset_class="crypto", price=Decimal(3333)
    )
    exchange.engine.set_price("TLT", Decimal("98.765"))
    post_order(http, exchange, "TLT", notional="1234.56")

    def check(account: dict[str, Any], positions: list[dict[str, Any]]) -> None:
        held = sum((Decimal(p["market_value"]) for p in positions), Decimal(0))
        assert Decimal(account["long_market_value"]) == held
        assert Decimal(account["equity"]) == Decimal(account["cash"]) + held
        assert account["portfolio_value"] == account["equity"]
        assert Decimal(account["position_market_value"]) == held

    state = requests.get(f"{exchange.url}/_control/state", timeout=10).json()  # one instant
    assert len(state["positions"]) == 5
    check(state["account"], state["positions"])
    check(get(http, exchange, "/v2/account"), get(http, exchange, "/v2/positions"))


def test_account_number_is_a_setting(prices: Path) -> None:
    with LocalExchange(prices) as default:
        trading = TradingClient(KEY, SECRET, url_override=default.url)
        assert trading.get_account().account_number.startswith("PA")
    settings = ExchangeSettings(account_number="TEST-ACCOUNT-1")
    assert "TEST-ACCOUNT-1" not in repr(settings)
    assert settings.public_json()["account_number"] == "***"
    with LocalExchange(prices, settings) as exchange:
        trading = TradingClient(KEY, SECRET, url_override=exchange.url)
        assert trading.get_account().account_number == "TEST-ACCOUNT-1"
        changed = requests.post(
            f"{exchange.url}/_control/settings",
            json={"account_number": "TEST-ACCOUNT-2"},
            timeout=10,
        )
        assert "TEST-ACCOUNT-2" not in changed.text
        assert trading.get_account().account_number == "TEST-ACCOUNT-2"
    with pytest.raises(ValueError, match="account_number"):
        ExchangeSettings(account_number=" ")


# -- prices --------------------------------------------------------------------------------------


def test_price_override_moves_fills_quotes_and_valuations_not_bars(
    exchange: LocalExchange, http: requests.Session
) -> None:
    yesterday = close("SPY", "2026-07-09")
    exchange.engine.set_position("SPY", Decimal(2), Decimal(500))
    bars_before = get(http, exchange, "/v2/stocks/bars", symbols="SPY", timeframe="1Day")
    gap = (yesterday * Decimal("1.3")).quantize(Decimal("0.01"))  # a 30% gap up
    exchange.engine.set_price("SPY", gap)

    quote = get(http, exchange, "/v2/stocks/quotes/latest", symbols="SPY")["quotes"]["SPY"]
    assert quote["bp"] < float(gap) < quote["ap"]
    assert quote["ap"] - quote["bp"] < float(gap) * 0.0003
    position = get(http, exchange, "/v2/positions/SPY")
    assert Decimal(position["current_price"]) == gap
    assert Decimal(position["lastday_price"]) == yesterday  # yesterday's close unchanged
    assert Decimal(position["market_value"]) == 2 * gap
    assert Decimal(get(http, exchange, "/v2/account")["long_market_value"]) == 2 * gap
    order = post_order(http, exchange, "SPY", qty="1").json()
    filled = get(http, exchange, f"/v2/orders/{order['id']}")
    assert Decimal(filled["filled_avg_price"]) == (gap * Decimal("1.0005")).quantize(
        Decimal("0.01")
    )
    assert get(http, exchange, "/v2/stocks/bars", symbols="SPY", timeframe="1Day") == bars_before

    control = requests.post(f"{exchange.url}/_control/prices", json={"SPY": "900"}, timeout=10)
    assert control.json()["SPY"] == {"session": "2026-07-10", "price": "900"}
    assert get(http, exchange, "/v2/positions/SPY")["current_price"] == "900"
    requests.post(f"{exchange.url}/_control/prices", json={"SPY": None}, timeout=10)
    assert Decimal(get(http, exchange, "/v2/positions/SPY")["current_price"]) == close(
        "SPY", "2026-07-10"
    )
    bad = requests.post(f"{exchange.url}/_control/prices", json={"SPY": "-1"}, timeout=10)
    assert bad.status_code == 400


def test_price_override_lasts_one_session(exchange: LocalExchange, http: requests.Session) -> None:
    exchange.configure(now=at(date(2026, 7, 9), 10))
    exchange.engine.set_price("TLT", Decimal(150))
    assert get(http, exchange, "/v2/stocks/quotes/latest", symbols="TLT")["quotes"]["TLT"][
        "bp"
    ] == pytest.approx(150, rel=0.001)
    exchange.configure(now=at(LAST, 10))
    quote = get(http, exchange, "/v2/stocks/quotes/latest", symbols="TLT")["quotes"]["TLT"]
    assert quote["bp"] == pytest.approx(float(close("TLT", "2026-07-10")), rel=0.001)
    bars = get(
        http, exchange, "/v2/stocks/bars", symbols="TLT", timeframe="1Day", start="2026-07-09"
    )
    assert [b["c"] for b in bars["bars"]["TLT"]] == [float(close("TLT", "2026-07-09"))]


# -- faults that change the exchange as a request is handled -----------------------------------


def test_fault_fills_open_orders_before_or_after_the_request(
    exchange: LocalExchange, http: requests.Session
) -> None:
    exchange.configure(fill_delay_seconds=600)
    post_order(http, exchange, "SPY", qty="2", client_order_id="a")
    post_order(http, exchange, "GLD", qty="1", client_order_id="b")
    # After: the positions answered are the snapshot before the fills happened.
    exchange.add_fault(Fault(method="GET", path="/v2/positions", when="after", fill_open=True))
    assert get(http, exchange, "/v2/positions") == []
    assert {o.client_order_id: o.status for o in exchange.engine.orders()} == {
        "a": "filled",
        "b": "filled",
    }
    assert set(exchange.engine.positions()) == {"SPY", "GLD"}

    post_order(http, exchange, "TLT", qty="1", client_order_id="c")
    post_order(http, exchange, "BRK", qty="1", client_order_id="d")
    # Before, one order: the answer already shows it filled, the other still open.
    exchange.add_fault(Fault.market_moves(client_order_id="d", method="GET", path="/v2/orders"))
    listed = {o["client_order_id"]: o["status"] for o in get(http, exchange, "/v2/orders")}
    assert listed == {"c": "new"}  # open orders only: d filled as the request arrived
    filled = exchange.engine.order_by_client_id("d")
    assert filled is not None
    assert filled.status == "filled"
    assert filled.filled_avg_price == (close("BRK", "2026-07-10") * Decimal("1.0005")).quantize(
        Decimal("0.01")
    )
    assert [f.describe() for f, _ in exchange.fault_hits()][-1] == (
        "fill d on GET /v2/orders (before)"
    )


def test_fault_advances_the_clock(exchange: LocalExchange, http: requests.Session) -> None:
    start = exchange.engine.now()
    exchange.add_fault(Fault(method="GET", path="/v2/clock", advance_clock_seconds=3600))
    before = datetime.fromisoformat(get(http, exchange, "/v2/clock")["timestamp"])
    assert before - start >= timedelta(hours=1)

    exchange.configure(fill_delay_seconds=30)
    exchange.add_fault(
        Fault(method="POST", path="/v2/orders", when="after", advance_clock_seconds=31)
    )
    answered = post_order(http, exchange, "SPY", qty="1").json()
    assert answered["status"] == "accepted"  # answered as applied, then the clock moved
    assert get(http, exchange, f"/v2/orders/{answered['id']}")["status"] == "filled"


def test_fault_actions_load_from_json_and_combine_with_a_response(
    exchange: LocalExchange, http: requests.Session
) -> None:
    exchange.configure(fill_delay_seconds=600)
    post_order(http, exchange, "SPY", qty="1", client_order_id="open")
    faults = [
        {
            "method": "GET",
            "path": "/v2/account",
            "fill_open": True,
            "status": 503,
            "body": {"code": 50010000, "message": "busy"},
        }
    ]
    loaded = requests.post(f"{exchange.url}/_control/faults", json=faults, timeout=10).json()
    assert loaded[0]["fill_open"] is True
    assert http.get(f"{exchange.url}/v2/account", timeout=10).status_code == 503
    filled = exchange.engine.order_by_client_id("open")
    assert filled is not None
    assert filled.status == "filled"
    for bad in (
        {"path": "/v2/orders"},  # does nothing
        {"client_order_id": "x", "status": 500},  # names an order without filling it
        {"advance_clock_seconds": 0},
        {"status": 500, "delay_seconds": 1},
    ):
        refused = requests.post(f"{exchange.url}/_control/faults", json=[bad], timeout=10)
        assert refused.status_code == 400, bad
    assert Fault.from_dict({"advance_clock_seconds": 5}).kind == "clock +5s"


HELD = 3.0


def test_slow_before_applies_after_the_delay_and_slow_after_applies_first(
    exchange: LocalExchange, http: requests.Session
) -> None:
    def submit(client_order_id: str) -> threading.Thread:
        thread = threading.Thread(
            target=post_order,
            args=(http, exchange, "SPY"),
            kwargs={"qty": "1", "client_order_id": client_order_id},
        )
        thread.start()
        return thread

    def until(condition: Callable[[], bool]) -> None:
        for _ in range(2000):  # a hang guard only: 10 s of polls, far from a normal wait
            if condition():
                return
            time.sleep(0.005)
        pytest.fail("timed out waiting for the exchange")

    # 3 s: the checks below look inside the delay, so only a machine stalled for that
    # long could see the order applied (or answered) early.
    exchange.add_fault(Fault.slow(HELD, when="before", method="POST", path="/v2/orders"))
    late = submit("held-back")
    until(lambda: len(exchange.fault_hits()) == 1)  # arrived, now waiting
    assert exchange.engine.order_by_client_id("held-back") is None
    late.join(timeout=10)
    assert exchange.engine.order_by_client_id("held-back") is not None

    exchange.clear_faults()
    exchange.add_fault(Fault.slow(HELD, when="after", method="POST", path="/v2/orders"))
    slow = submit("applied-first")
    until(lambda: exchange.engine.order_by_client_id("applied-first") is not None)
    assert slow.is_alive()  # applied, the answer still to come
    slow.join(timeout=10)
    assert exchange.requests[-1].status == 200


# -- scripted 2xx answers ------------------------------------------------------------------------


def test_scripted_empty_positions_once_while_the_account_is_unchanged(
    exchange: LocalExchange, http: requests.Session
) -> None:
    exchange.engine.set_position("SPY", Decimal(3), Decimal(500))
    exchange.add_fault(Fault(method="GET", path="/v2/positions", status=200, body=[]))
    empty = http.get(f"{exchange.url}/v2/positions", timeout=10)
    assert (empty.status_code, empty.json()) == (200, [])
    assert empty.headers["Content-Type"].startswith("application/json")
    assert [p["symbol"] for p in get(http, exchange, "/v2/positions")] == ["SPY"]
    assert exchange.engine.positions()["SPY"].qty == 3


def test_scripted_short_order_answer_after_the_order_was_applied(
    exchange: LocalExchange, http: requests.Session
) -> None:
    body = {"id": "00000000-0000-4000-8000-000000000001", "status": "new"}
    exchange.add_fault(Fault(method="POST", path="/v2/orders", when="after", status=200, body=body))
    answered = post_order(http, exchange, "GLD", qty="2", client_order_id="short-reply")
    assert (answered.status_code, answered.json()) == (200, body)
    applied = exchange.engine.order_by_client_id("short-reply")
    assert applied is not None
    assert applied.id != body["id"]
    assert exchange.requests[-1].accepted is True


# -- the command ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_cli_serve_starts_answers_and_stops_on_sigterm(prices: Path, tmp_path: Path) -> None:
    port = _free_port()
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps([{"path": "/v2/account", "status": 503, "nth": 1}]))
    env = {
        **os.environ,
        "ALCHEMISER_EXCHANGE_KEY_ID": "cli-key",
        "ALCHEMISER_EXCHANGE_SECRET_KEY": "cli-secret",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alchemiser.exchange.cli",
            "serve",
            "--port",
            str(port),
            "--prices",
            str(prices),
            "--session",
            "2026-07-09",
            "--cash",
            "5000",
            "--faults",
            str(faults),
            "--whole-shares",
            "BRK",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line == f"exchange listening on http://127.0.0.1:{port} (session 2026-07-09)\n"
        headers = {"APCA-API-KEY-ID": "cli-key", "APCA-API-SECRET-KEY": "cli-secret"}
        clock = requests.get(f"http://127.0.0.1:{port}/v2/clock", headers=headers, timeout=10)
        assert clock.status_code == 200
        assert clock.json()["timestamp"].startswith("2026-07-09T09:30:0")
        assert requests.get(f"http://127.0.0.1:{port}/v2/clock", timeout=10).status_code == 401
        account = f"http://127.0.0.1:{port}/v2/account"
        assert requests.get(account, headers=headers, timeout=10).status_code == 503
        assert requests.get(account, headers=headers, timeout=10).json()["cash"] == "5000"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert "cli-secret" not in process.stderr.read() if process.stderr else True
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
