"""Every response of the local exchange against Alpaca's published OpenAPI specs.

For each endpoint the product uses, success responses and the error bodies validate
against the response schema the spec gives for that path, method and status (``$ref``s
resolved against the whole spec document, formats checked). Where the spec gives no
schema for an error status, the body must have Alpaca's error shape:
``{"code": <int>, "message": <str>}``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import requests
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry
from referencing.jsonschema import DRAFT4

from alchemiser.exchange import ExchangeSettings, Fault, LocalExchange
from tests.conftest import write_prices

pytestmark = pytest.mark.integration

SPECS = Path(__file__).parent / "specs" / "alpaca"
TRADING = "urn:alpaca:trading-api"
DATA = "urn:alpaca:market-data-api"
AUTH = {"APCA-API-KEY-ID": "key", "APCA-API-SECRET-KEY": "secret"}
SESSIONS = [
    "2026-07-20",
    "2026-07-21",
    "2026-07-22",
    "2026-07-23",
    "2026-07-24",
    "2026-07-27",
    "2026-07-28",
    "2026-07-29",
    "2026-07-30",
    "2026-07-31",
]
ERROR_SHAPE = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
}


@cache
def _spec(urn: str) -> dict[str, Any]:
    name = "trading-api.json" if urn == TRADING else "market-data-api.json"
    spec: dict[str, Any] = json.loads((SPECS / name).read_text())
    return spec


@cache
def _registry() -> Registry[Any]:
    return Registry().with_resources(
        [(urn, DRAFT4.create_resource(_spec(urn))) for urn in (TRADING, DATA)]
    )


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _resolve(urn: str, node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = _spec(urn)
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def response_schema(urn: str, template: str, method: str, status: int) -> dict[str, Any] | None:
    """A ``$ref`` to the spec's JSON schema for that response, or None when it has none."""
    responses = _spec(urn)["paths"][template][method.lower()]["responses"]
    key = str(status) if str(status) in responses else "default"
    if key not in responses:
        return None
    response = responses[key]
    where = f"{urn}#/{_pointer('paths', template, method.lower(), 'responses', key)}"
    if "$ref" in response:
        where = f"{urn}#{response['$ref'].removeprefix('#')}"
        response = _resolve(urn, response)
    if "application/json" not in response.get("content", {}):
        return None
    return {"$ref": f"{where}/content/application~1json/schema"}


def assert_conforms(
    urn: str, template: str, method: str, response: requests.Response, status: int
) -> Any:
    assert response.status_code == status, response.text
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert response.headers[header].isdigit(), header
    if status == 204:
        assert response.content == b""
        return None
    body = response.json()
    schema = response_schema(urn, template, method, status)
    if schema is None:
        assert status >= 400, f"the spec has no schema for {status} {method} {template}"
        schema = ERROR_SHAPE
    validator = OAS30Validator(schema, registry=_registry(), format_checker=oas30_format_checker)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, f"{method} {template} {status}: {errors}"
    if status >= 400:
        assert isinstance(body["code"], int), body
        assert isinstance(body["message"], str), body
    return body


@pytest.fixture(scope="module")
def exchange(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalExchange]:
    base = {"SPY": 500.0, "TLT": 90.0, "GLD": 200.0, "BRK": 400.0}
    closes = {
        symbol: {d: round(price * (1 + 0.01 * i), 2) for i, d in enumerate(SESSIONS)}
        for symbol, price in base.items()
    }
    prices = write_prices(tmp_path_factory.mktemp("contract") / "prices", closes)
    settings = ExchangeSettings(whole_share_symbols=frozenset({"BRK"}))
    with LocalExchange(prices, settings) as running:
        yield running


@pytest.fixture
def http(exchange: LocalExchange) -> Iterator[requests.Session]:
    exchange.clear_faults()
    exchange.configure(
        now=exchange.engine.calendar.hours(exchange.engine.calendar.last_data)[0].replace(second=1),
        fill_delay_seconds=0.0,
        partial_fills={},
        rate_limit_per_minute=10_000,
    )
    session = requests.Session()
    session.headers.update(AUTH)
    session.delete(exchange.url + "/v2/orders", timeout=10)  # no open order from before
    yield session
    session.close()


def call(
    http: requests.Session, exchange: LocalExchange, method: str, path: str, **kwargs: Any
) -> requests.Response:
    return http.request(method, exchange.url + path, timeout=10, **kwargs)


def buy(
    http: requests.Session, exchange: LocalExchange, symbol: str, **fields: Any
) -> requests.Response:
    order = {"symbol": symbol, "side": "buy", "type": "market", "time_in_force": "day", **fields}
    return call(http, exchange, "POST", "/v2/orders", json=order)


# -- account, positions, assets, clock, calendar ------------------------------------------


def test_account(http: requests.Session, exchange: LocalExchange) -> None:
    body = assert_conforms(
        TRADING, "/v2/account", "GET", call(http, exchange, "GET", "/v2/account"), 200
    )
    assert body["status"] == "ACTIVE"
    assert body["currency"] == "USD"


def test_positions_and_position(http: requests.Session, exchange: LocalExchange) -> None:
    assert buy(http, exchange, "TLT", qty="3").status_code == 200
    listed = assert_conforms(
        TRADING, "/v2/positions", "GET", call(http, exchange, "GET", "/v2/positions"), 200
    )
    assert any(p["symbol"] == "TLT" for p in listed)
    template = "/v2/positions/{symbol_or_asset_id}"
    one = assert_conforms(
        TRADING, template, "GET", call(http, exchange, "GET", "/v2/positions/TLT"), 200
    )
    assert one["side"] == "long"
    assert_conforms(TRADING, template, "GET", call(http, exchange, "GET", "/v2/positions/GLD"), 404)
    assert_conforms(TRADING, "/v2/account", "GET", call(http, exchange, "GET", "/v2/account"), 200)


def test_close_position(http: requests.Session, exchange: LocalExchange) -> None:
    exchange.engine.set_position("BRK", Decimal("2.5"), Decimal(400))  # a whole-share asset
    template = "/v2/positions/{symbol_or_asset_id}"
    residue = call(http, exchange, "DELETE", "/v2/positions/BRK", params={"qty": "0.5"})
    order = assert_conforms(TRADING, template, "DELETE", residue, 200)
    assert (order["side"], order["qty"], order["type"]) == ("sell", "0.5", "market")
    too_many = call(http, exchange, "DELETE", "/v2/positions/BRK", params={"qty": "100"})
    assert assert_conforms(TRADING, template, "DELETE", too_many, 422)["code"] == 40010001
    by_percentage = call(http, exchange, "DELETE", "/v2/positions/BRK", params={"percentage": 50})
    assert assert_conforms(TRADING, template, "DELETE", by_percentage, 200)["qty"] == "1"
    rest = assert_conforms(
        TRADING, template, "DELETE", call(http, exchange, "DELETE", "/v2/positions/BRK"), 200
    )
    assert rest["qty"] == "1"
    missing = call(http, exchange, "DELETE", "/v2/positions/BRK")
    assert assert_conforms(TRADING, template, "DELETE", missing, 404)["code"] == 40410000


def test_option_position_conforms(http: requests.Session, exchange: LocalExchange) -> None:
    symbol = "SPY260918C00500000"
    exchange.engine.set_position(
        symbol, Decimal(1), Decimal(10), asset_class="us_option", price=Decimal(12)
    )
    try:
        listed = assert_conforms(
            TRADING, "/v2/positions", "GET", call(http, exchange, "GET", "/v2/positions"), 200
        )
        option = next(p for p in listed if p["symbol"] == symbol)
        assert (option["asset_class"], option["market_value"]) == ("us_option", "1200")
        one = call(http, exchange, "GET", f"/v2/positions/{symbol}")
        assert_conforms(TRADING, "/v2/positions/{symbol_or_asset_id}", "GET", one, 200)
    finally:
        exchange.engine.set_position(symbol, Decimal(0), Decimal(10))


def test_assets_and_asset(http: requests.Session, exchange: LocalExchange) -> None:
    listed = assert_conforms(
        TRADING, "/v2/assets", "GET", call(http, exchange, "GET", "/v2/assets"), 200
    )
    assert {a["symbol"] for a in listed} == {"SPY", "TLT", "GLD", "BRK"}
    template = "/v2/assets/{symbol_or_asset_id}"
    brk = assert_conforms(
        TRADING, template, "GET", call(http, exchange, "GET", "/v2/assets/BRK"), 200
    )
    assert brk["fractionable"] is False
    by_id = call(http, exchange, "GET", f"/v2/assets/{brk['id']}")
    assert assert_conforms(TRADING, template, "GET", by_id, 200)["symbol"] == "BRK"
    assert_conforms(TRADING, template, "GET", call(http, exchange, "GET", "/v2/assets/NOPE"), 404)


@pytest.mark.parametrize("moment", ["open", "closed"])
def test_clock(http: requests.Session, exchange: LocalExchange, moment: str) -> None:
    if moment == "closed":
        exchange.configure(now=exchange.engine.now().replace(hour=18))
    body = assert_conforms(
        TRADING, "/v2/clock", "GET", call(http, exchange, "GET", "/v2/clock"), 200
    )
    assert body["is_open"] is (moment == "open")


def test_calendar(http: requests.Session, exchange: LocalExchange) -> None:
    response = call(
        http, exchange, "GET", "/v2/calendar", params={"start": SESSIONS[0], "end": SESSIONS[-1]}
    )
    days = assert_conforms(TRADING, "/v2/calendar", "GET", response, 200)
    assert [d["date"] for d in days] == SESSIONS
    bad = call(http, exchange, "GET", "/v2/calendar", params={"start": "July"})
    assert_conforms(TRADING, "/v2/calendar", "GET", bad, 400)


# -- orders --------------------------------------------------------------------------------


def test_post_order_success_qty_and_notional(
    http: requests.Session, exchange: LocalExchange
) -> None:
    by_qty = assert_conforms(
        TRADING,
        "/v2/orders",
        "POST",
        buy(http, exchange, "SPY", qty="2", client_order_id="c-q"),
        200,
    )
    assert by_qty["status"] == "accepted"
    assert by_qty["qty"] == "2"
    assert by_qty["notional"] is None
    by_notional = assert_conforms(
        TRADING, "/v2/orders", "POST", buy(http, exchange, "GLD", notional="150.5"), 200
    )
    assert by_notional["notional"] == "150.5"
    assert by_notional["qty"] is None


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"symbol": "SPY", "qty": "100000"}, 403, 40310000),  # insufficient buying power
        ({"symbol": "BRK", "qty": "0.5"}, 403, 40310000),  # not fractionable
        ({"symbol": "BRK", "notional": "100"}, 403, 40310000),  # not fractionable
        ({"symbol": "NOPE", "qty": "1"}, 422, 40010001),  # unknown asset
        ({"symbol": "SPY", "qty": "1", "client_order_id": "x" * 129}, 422, 40010001),
        ({"symbol": "SPY", "qty": "1", "type": "limit", "limit_price": "1"}, 422, 40010001),
        ({"symbol": "SPY"}, 422, 40010001),  # neither qty nor notional
        ({"symbol": "SPY", "qty": "1", "notional": "5"}, 422, 40010001),  # both
        ({"symbol": "SPY", "qty": "-1"}, 422, 40010001),
    ],
)
def test_post_order_rejections(
    http: requests.Session,
    exchange: LocalExchange,
    fields: dict[str, Any],
    status: int,
    code: int,
) -> None:
    body = assert_conforms(TRADING, "/v2/orders", "POST", buy(http, exchange, **fields), status)
    assert body["code"] == code


def test_post_order_duplicate_wash_and_qty_available(
    http: requests.Session, exchange: LocalExchange
) -> None:
    exchange.configure(fill_delay_seconds=3600)
    assert buy(http, exchange, "SPY", qty="1", client_order_id="dup").status_code == 200
    duplicate = buy(http, exchange, "SPY", qty="1", client_order_id="dup")
    assert assert_conforms(TRADING, "/v2/orders", "POST", duplicate, 422)["message"] == (
        "client_order_id must be unique"
    )
    sell = {"symbol": "SPY", "side": "sell", "type": "market", "time_in_force": "day", "qty": "1"}
    wash = call(http, exchange, "POST", "/v2/orders", json=sell)
    assert "wash trade" in assert_conforms(TRADING, "/v2/orders", "POST", wash, 403)["message"]
    call(http, exchange, "DELETE", "/v2/orders")
    too_many = call(
        http, exchange, "POST", "/v2/orders", json={**sell, "symbol": "GLD", "qty": "1e6"}
    )
    body = assert_conforms(TRADING, "/v2/orders", "POST", too_many, 403)
    assert body["message"].startswith("insufficient qty available for order")
    malformed = call(http, exchange, "POST", "/v2/orders", data=b"{not json")
    assert_conforms(TRADING, "/v2/orders", "POST", malformed, 400)


def test_orders_list_get_by_client_id_and_cancel(
    http: requests.Session, exchange: LocalExchange
) -> None:
    exchange.configure(partial_fills={"TLT": 0.5})
    partial = buy(http, exchange, "TLT", qty="4", client_order_id="partial").json()
    exchange.configure(partial_fills={}, fill_delay_seconds=3600)
    resting = buy(http, exchange, "GLD", qty="1", client_order_id="resting").json()
    for status in ("open", "closed", "all"):
        response = call(
            http, exchange, "GET", "/v2/orders", params={"status": status, "limit": 500}
        )
        listed = assert_conforms(TRADING, "/v2/orders", "GET", response, 200)
        assert listed or status == "closed"
    statuses = {
        o["client_order_id"]: o["status"]
        for o in call(http, exchange, "GET", "/v2/orders", params={"status": "all"}).json()
    }
    assert statuses["partial"] == "partially_filled"
    assert statuses["resting"] in ("accepted", "new")

    template = "/v2/orders/{order_id}"
    got = call(http, exchange, "GET", f"/v2/orders/{partial['id']}")
    assert assert_conforms(TRADING, template, "GET", got, 200)["filled_qty"] == "2"
    missing = call(http, exchange, "GET", "/v2/orders/00000000-0000-4000-8000-000000000000")
    assert_conforms(TRADING, template, "GET", missing, 404)

    by_client = "/v2/orders:by_client_order_id"
    found = call(http, exchange, "GET", by_client, params={"client_order_id": "resting"})
    assert assert_conforms(TRADING, by_client, "GET", found, 200)["id"] == resting["id"]
    absent = call(http, exchange, "GET", by_client, params={"client_order_id": "nope"})
    assert_conforms(TRADING, by_client, "GET", absent, 404)

    cancel = call(http, exchange, "DELETE", f"/v2/orders/{resting['id']}")
    assert_conforms(TRADING, template, "DELETE", cancel, 204)
    again = call(http, exchange, "DELETE", f"/v2/orders/{resting['id']}")
    assert assert_conforms(TRADING, template, "DELETE", again, 422)["code"] == 42210000
    canceled = call(http, exchange, "GET", f"/v2/orders/{resting['id']}")
    assert assert_conforms(TRADING, template, "GET", canceled, 200)["status"] == "canceled"


def test_cancel_all(http: requests.Session, exchange: LocalExchange) -> None:
    exchange.configure(fill_delay_seconds=3600)
    ids = {buy(http, exchange, s, qty="1").json()["id"] for s in ("SPY", "GLD")}
    results = assert_conforms(
        TRADING, "/v2/orders", "DELETE", call(http, exchange, "DELETE", "/v2/orders"), 207
    )
    assert ids <= {r["id"] for r in results}
    assert all(r["status"] == 200 for r in results)


def test_expired_order_conforms(http: requests.Session, exchange: LocalExchange) -> None:
    exchange.configure(fill_delay_seconds=8 * 3600)  # later than the close: never fills
    order = buy(http, exchange, "SPY", qty="1").json()
    exchange.configure(now=exchange.engine.now().replace(hour=17))
    response = call(http, exchange, "GET", f"/v2/orders/{order['id']}")
    body = assert_conforms(TRADING, "/v2/orders/{order_id}", "GET", response, 200)
    assert body["status"] == "expired"
    assert body["expired_at"]


# -- market data ----------------------------------------------------------------------------


def test_bars_pages_and_errors(http: requests.Session, exchange: LocalExchange) -> None:
    params: dict[str, Any] = {
        "symbols": "SPY,TLT,NOPE",
        "timeframe": "1Day",
        "start": SESSIONS[0],
        "limit": 5,
        "adjustment": "all",
        "feed": "sip",
    }
    pages = []
    while True:
        response = call(http, exchange, "GET", "/v2/stocks/bars", params=params)
        pages.append(assert_conforms(DATA, "/v2/stocks/bars", "GET", response, 200))
        if pages[-1]["next_page_token"] is None:
            break
        params["page_token"] = pages[-1]["next_page_token"]
    assert len(pages) == 4  # 2 symbols x 9 completed sessions, 5 a page
    assert all("NOPE" not in p["bars"] for p in pages)
    empty = call(
        http, exchange, "GET", "/v2/stocks/bars", params={"symbols": "SPY", "timeframe": "1Day"}
    )
    assert assert_conforms(DATA, "/v2/stocks/bars", "GET", empty, 200)["bars"] == {}
    minute = call(
        http, exchange, "GET", "/v2/stocks/bars", params={"symbols": "SPY", "timeframe": "1Min"}
    )
    assert assert_conforms(DATA, "/v2/stocks/bars", "GET", minute, 422)["code"] == 42210000
    no_symbols = call(http, exchange, "GET", "/v2/stocks/bars", params={"timeframe": "1Day"})
    assert_conforms(DATA, "/v2/stocks/bars", "GET", no_symbols, 400)


def test_latest_quotes(http: requests.Session, exchange: LocalExchange) -> None:
    response = call(
        http, exchange, "GET", "/v2/stocks/quotes/latest", params={"symbols": "SPY,GLD,NOPE"}
    )
    body = assert_conforms(DATA, "/v2/stocks/quotes/latest", "GET", response, 200)
    assert set(body["quotes"]) == {"SPY", "GLD"}
    assert body["quotes"]["SPY"]["ap"] > body["quotes"]["SPY"]["bp"]


def test_latest_trades(http: requests.Session, exchange: LocalExchange) -> None:
    path = "/v2/stocks/trades/latest"
    response = call(http, exchange, "GET", path, params={"symbols": "SPY,GLD,NOPE"})
    body = assert_conforms(DATA, path, "GET", response, 200)
    assert set(body["trades"]) == {"SPY", "GLD"}
    assert body["trades"]["SPY"]["p"] > 0
    assert body["trades"]["SPY"]["t"].startswith(exchange.engine.now().date().isoformat())
    no_symbols = call(http, exchange, "GET", path)
    assert_conforms(DATA, path, "GET", no_symbols, 400)


# -- auth, rate limit, scripted errors -----------------------------------------------------


def test_unauthorized(http: requests.Session, exchange: LocalExchange) -> None:
    for urn, template, path in (
        (TRADING, "/v2/account", "/v2/account"),
        (DATA, "/v2/stocks/bars", "/v2/stocks/bars?symbols=SPY&timeframe=1Day"),
    ):
        response = requests.get(exchange.url + path, timeout=10)
        body = assert_conforms(urn, template, "GET", response, 401)
        assert body == {"code": 40110000, "message": "request is not authorized"}


def test_rate_limited(http: requests.Session, exchange: LocalExchange) -> None:
    exchange.configure(rate_limit_per_minute=1)
    try:
        call(http, exchange, "GET", "/v2/clock")
        limited = call(http, exchange, "GET", "/v2/clock")
        body = assert_conforms(TRADING, "/v2/clock", "GET", limited, 429)
        assert body["code"] == 42910000
        assert int(limited.headers["Retry-After"]) >= 1
        data = call(http, exchange, "GET", "/v2/stocks/quotes/latest", params={"symbols": "SPY"})
        assert_conforms(DATA, "/v2/stocks/quotes/latest", "GET", data, 429)
    finally:
        exchange.configure(rate_limit_per_minute=10_000)


@pytest.mark.parametrize(
    "fault",
    [
        Fault.insufficient_buying_power(),
        Fault.wash_trade(),
        Fault.duplicate_client_order_id(),
        Fault.server_error(500, json_body=True, method="POST", path="/v2/orders"),
    ],
    ids=["buying-power", "wash", "duplicate", "500-json"],
)
def test_scripted_order_errors_conform(
    http: requests.Session, exchange: LocalExchange, fault: Fault
) -> None:
    exchange.add_fault(fault)
    response = buy(http, exchange, "SPY", qty="1")
    assert fault.status is not None
    assert_conforms(TRADING, "/v2/orders", "POST", response, fault.status)
