"""The local exchange's request routing: Alpaca API paths and the ``/_control/`` plane.

``route`` answers an authorized, admitted Trading API v2 or Market Data API v2 request
from the engine (an unknown method on a known path is a 405, an unknown path a 404);
``control`` answers the test and script plane (state, settings, faults, positions,
prices, fills), whose bad input is a 400 with the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from urllib.parse import unquote

from alchemiser.exchange.engine import Engine
from alchemiser.exchange.faults import Fault, FaultSet, faults_from_json
from alchemiser.exchange.settings import ExchangeSettings, settings_changes_from_json
from alchemiser.exchange.shapes import ApiError
from alchemiser.exchange.wire import Response, json_response


class Controlled(Protocol):
    """What the control plane changes and reads of a running exchange (``LocalExchange``)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def settings(self) -> ExchangeSettings: ...

    @property
    def requests(self) -> Sequence[object]: ...

    def add_fault(self, *faults: Fault) -> None: ...

    def clear_faults(self) -> None: ...

    def configure(self, **changes: Any) -> ExchangeSettings: ...

    def counts(self) -> dict[str, int]: ...

    def reset_counts(self) -> None: ...


CONTROL_PREFIX = "/_control/"
ORDERS = "/v2/orders"

_ORDER_ID = re.compile(r"/v2/orders/([^/]+)")
_ASSET = re.compile(r"/v2/assets/([^/]+)")
_POSITION = re.compile(r"/v2/positions/([^/]+)")
_KNOWN = re.compile(
    r"/v2/(account|clock|calendar|assets(/[^/]+)?|positions(/[^/]+)?|orders(/[^/]+)?"
    r"|orders:by_client_order_id|stocks/bars|stocks/(quotes|trades)/latest)"
)

JSON_LIST = list[dict[str, Any]]


def route(
    engine: Engine, method: str, path: str, query: Mapping[str, list[str]], raw: bytes
) -> tuple[Response, bool]:
    """The response to an API request, and whether it changed the exchange."""
    if method == "GET":
        simple = {
            "/v2/account": engine.account_json,
            "/v2/clock": engine.clock_json,
            "/v2/positions": engine.positions_json,
        }
        if path in simple:
            return json_response(200, simple[path]()), False
        by_query = {
            "/v2/calendar": engine.calendar_json,
            "/v2/assets": engine.assets_json,
            "/v2/orders": engine.orders_json,
            "/v2/stocks/bars": engine.bars_json,
            "/v2/stocks/quotes/latest": engine.latest_quotes_json,
            "/v2/stocks/trades/latest": engine.latest_trades_json,
        }
        if path in by_query:
            return json_response(200, by_query[path](query)), False
        if path == "/v2/orders:by_client_order_id":
            values = query.get("client_order_id")
            coid = values[-1] if values else None
            return json_response(200, engine.order_by_client_id_json(coid)), False
        for pattern, lookup in (
            (_ASSET, engine.asset_json),
            (_POSITION, engine.position_json),
            (_ORDER_ID, engine.order_json),
        ):
            match = pattern.fullmatch(path)
            if match:
                return json_response(200, lookup(unquote(match.group(1)))), False
    if method == "POST" and path == ORDERS:
        try:
            payload = json.loads(raw or b"null", parse_float=Decimal)
        except (ValueError, UnicodeDecodeError) as error:
            raise ApiError(400, 40010000, "request body format is invalid") from error
        return json_response(200, engine.submit_order(payload)), True
    if method == "DELETE":
        if path == ORDERS:
            cancelled = engine.cancel_all_json()
            return json_response(207, cancelled), bool(cancelled)
        match = _ORDER_ID.fullmatch(path)
        if match:
            engine.cancel_order(unquote(match.group(1)))
            return Response(204, content_type=None), True
        match = _POSITION.fullmatch(path)
        if match:
            order = engine.close_position(unquote(match.group(1)), query)
            return json_response(200, order), True
    if _KNOWN.fullmatch(path):
        raise ApiError(405, 40510000, "method not allowed")
    raise ApiError(404, 40410000, "endpoint not found")


def places_order(method: str, path: str) -> bool:
    """POST /v2/orders and DELETE /v2/positions/{symbol} (a closing sell) place orders."""
    return (method, path) == ("POST", ORDERS) or (
        method == "DELETE" and _POSITION.fullmatch(path) is not None
    )


def client_order_id(raw: bytes) -> str | None:
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(payload, dict):
        value = payload.get("client_order_id")
        return value if isinstance(value, str) else None
    return None


# -- the control plane -------------------------------------------------------------------


def control(
    exchange: Controlled,
    faults: FaultSet,
    method: str,
    path: str,
    raw: bytes,
) -> Response:
    """The answer to a ``/_control/`` request (``faults``: the exchange's armed faults)."""
    name = path[len(CONTROL_PREFIX) :].strip("/")
    try:
        payload = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return json_response(400, {"code": 40010000, "message": "body is not JSON"})
    engine = exchange.engine
    try:
        if name == "faults" and method == "POST":
            exchange.add_fault(*faults_from_json(payload))
            return json_response(200, _faults_json(faults))
        if name == "faults" and method == "DELETE":
            exchange.clear_faults()
            return json_response(200, _faults_json(faults))
        if name == "faults" and method == "GET":
            return json_response(200, _faults_json(faults))
        if name == "state" and method == "GET":
            state = engine.state_json()
            state["requests"] = {"total": len(exchange.requests), "by_endpoint": exchange.counts()}
            return json_response(200, state)
        if name == "settings" and method == "POST":
            if not isinstance(payload, Mapping):
                raise ValueError("settings must be a JSON object")
            updated = exchange.configure(**settings_changes_from_json(payload))
            return json_response(200, updated.public_json())
        if name == "settings" and method == "GET":
            return json_response(200, exchange.settings.public_json())
        if name == "reset_counts" and method == "POST":
            exchange.reset_counts()
            return json_response(200, {"requests": 0})
        if name == "positions" and method == "POST":
            for item in _objects(payload, "positions"):
                _set_position(engine, item)
            return json_response(200, engine.positions_json())
        if name == "prices" and method == "POST":
            if not isinstance(payload, Mapping):
                raise ValueError('prices must be a JSON object {"SYMBOL": "price"}')
            for symbol, value in payload.items():
                price = None if value is None else _decimal(value, symbol)
                engine.set_price(str(symbol), price)
            return json_response(200, engine.state_json()["prices"])
        if name == "fill_open" and method == "POST":
            wanted = payload.get("client_order_id") if isinstance(payload, Mapping) else None
            return json_response(200, {"filled": engine.fill_open_orders(wanted)})
    except (ValueError, TypeError) as error:
        return json_response(400, {"code": 40010000, "message": str(error)})
    return json_response(404, {"code": 40410000, "message": "control endpoint not found"})


def _set_position(engine: Engine, item: Mapping[str, Any]) -> None:
    known = {"symbol", "qty", "avg_entry_price", "asset_class", "price"}
    unknown = sorted(set(item) - known)
    if unknown:
        raise ValueError(f"unknown position field(s): {', '.join(unknown)}")
    symbol = item.get("symbol")
    if not isinstance(symbol, str) or not symbol:
        raise ValueError("a position needs a symbol")
    price = _decimal(item["price"], "price") if item.get("price") is not None else None
    entry = item.get("avg_entry_price", price)
    if entry is None:
        raise ValueError(f"{symbol}: a position needs avg_entry_price (or price)")
    engine.set_position(
        symbol,
        _decimal(item.get("qty"), "qty"),
        _decimal(entry, "avg_entry_price"),
        asset_class=str(item.get("asset_class", "us_equity")),
        price=price,
    )


def _faults_json(faults: FaultSet) -> JSON_LIST:
    return [{**f.to_dict(), "fired": n} for f, n in faults.fired()]


def _objects(payload: Any, what: str) -> list[Mapping[str, Any]]:
    items = [payload] if isinstance(payload, Mapping) else payload
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise ValueError(f"{what} must be a JSON object or a list of objects")
    return items


def _decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    try:
        number = Decimal(str(value))
    except InvalidOperation as error:
        raise ValueError(f"{name}: expected a number, got {value!r}") from error
    if not number.is_finite():
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    return number
