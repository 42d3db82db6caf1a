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
import time
from collections.abc import Iterator
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
from alpaca.trading.requests import GetCalendarRequest, GetOrdersRequest, MarketOrderRequest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.exchange import ExchangeSettings, Fault, LocalExchange
from alchemiser.exchange.engine import NEW_YORK
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
    first = http.get(f"{exchange.url}/v2/clock", timeout=10)
    assert first.headers["X-RateLimit-Limit"] == "3"
    assert first.headers["X-RateLimit-Remaining"] == "2"
    assert int(first.headers["X-RateLimit-Reset"]) >= int(time.time())
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
    exchange.configure(latency_ms=300)
    started = time.monotonic()
    get(http, exchange, "/v2/clock")
    assert time.monotonic() - started >= 0.3


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
    exchange.add_fault(Fault.slow(0.3, when="before", path="/v2/account"))
    started = time.monotonic()
    assert http.get(f"{exchange.url}/v2/account", timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.3


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
    limited = http.get(f"{exchange.url}/v2/account", timeout=10)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert int(limited.headers["X-RateLimit-Reset"]) >= int(time.time()) + 28
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
    with pytest.raises(ValueError, match="exactly one"):
        Fault(status=500, reset=True)
    loaded = Fault.from_dict({"path": "/v2/orders", "method": "post", "reset": True, "nth": 2})
    assert (loaded.method, loaded.nth, loaded.kind) == ("POST", 2, "reset")
    with pytest.raises(ValueError, match="unknown fault field"):
        Fault.from_dict({"status": 500, "colour": "red"})
    exchange = LocalExchange(prices, ExchangeSettings(session=date(2026, 7, 6)))
    assert exchange.engine.now() >= at(date(2026, 7, 6), 9, 30, 1)
    assert exchange.engine.now().astimezone(UTC).tzinfo is UTC


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
