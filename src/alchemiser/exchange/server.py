"""A local Alpaca-compatible HTTP server on 127.0.0.1: Trading API v2 and Market Data
API v2 on one port (their paths do not collide), over the simulated :class:`Engine`.

Every API request needs ``APCA-API-KEY-ID`` and ``APCA-API-SECRET-KEY`` (and, when the
exchange has a key pair, the right ones); is counted by a rolling one-minute rate
limiter; may be hit by a scripted :class:`Fault`; is delayed by ``latency_ms``; and is
logged (method, path, query, status, exchange time; never a header value). Requests
under ``/_control/`` are the test and script plane: no auth, no faults, not logged:

- ``GET /_control/state``: clock, account, positions (at one instant), orders, settings,
  price overrides, request counts; ``POST /_control/reset_counts``;
- ``GET|POST /_control/settings``: ``ExchangeSettings`` fields, ``advance_seconds``;
- ``GET|POST|DELETE /_control/faults``: the armed faults (see ``faults.py``);
- ``POST /_control/positions``: ``{"symbol", "qty", "avg_entry_price", "asset_class",
  "price"}`` or a list of them (``Engine.set_position``; qty 0 removes);
- ``POST /_control/prices``: ``{"SPY": "900", "BTCUSD": "64000", "TLT": null}``
  (``Engine.set_price``: this session's price; null removes the override);
- ``POST /_control/fill_open``: ``{"client_order_id": ...}`` optional; fills open
  orders in full now (``Engine.fill_open_orders``).

    with LocalExchange(prices_dir) as exchange:
        client = TradingClient("key", "secret", url_override=exchange.url)
        exchange.add_fault(Fault.server_error(503, path="/v2/orders", method="POST"))
"""

from __future__ import annotations

import io
import json
import math
import re
import socket
import struct
import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from hmac import compare_digest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources.abc import Traversable
from pathlib import Path
from time import monotonic
from time import time as wall_time
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

from alchemiser.exchange.engine import (
    ApiError,
    Engine,
    ExchangeSettings,
    settings_changes_from_json,
)
from alchemiser.exchange.faults import Fault, FaultSet, faults_from_json

HOST = "127.0.0.1"
CONTROL_PREFIX = "/_control/"
JSON_TYPE = "application/json; charset=UTF-8"
WINDOW_SECONDS = 60.0
ORDERS = "/v2/orders"

_ORDER_ID = re.compile(r"/v2/orders/([^/]+)")
_ASSET = re.compile(r"/v2/assets/([^/]+)")
_POSITION = re.compile(r"/v2/positions/([^/]+)")
_KNOWN = re.compile(
    r"/v2/(account|clock|calendar|assets(/[^/]+)?|positions(/[^/]+)?|orders(/[^/]+)?"
    r"|orders:by_client_order_id|stocks/bars|stocks/(quotes|trades)/latest)"
)


def _dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), default=_json_default).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


@dataclass(frozen=True, eq=False)
class RequestRecord:
    """One API request as the exchange saw it."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    status: int | None
    """What the client got; None when the connection was reset."""
    at: datetime
    """The exchange clock when the request arrived."""
    client_order_id: str | None = None
    accepted: bool | None = None
    """For ``POST /v2/orders`` and ``DELETE /v2/positions/{symbol}``: whether the
    exchange accepted (applied) the order. A closing order's ``client_order_id`` is the
    one the exchange made up."""
    fault: str | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class _Response:
    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)


def _json_response(status: int, data: Any) -> _Response:
    return _Response(status, _dumps(data))


def _error_response(error: ApiError) -> _Response:
    return _json_response(error.status, error.body())


class _RateLimiter:
    """A rolling one-minute window of accepted requests (real time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hits: deque[float] = deque()

    def admit(self, limit: int) -> tuple[bool, dict[str, str]]:
        with self._lock:
            now = monotonic()
            while self._hits and self._hits[0] <= now - WINDOW_SECONDS:
                self._hits.popleft()
            admitted = len(self._hits) < limit
            if admitted:
                self._hits.append(now)
            oldest = self._hits[0] if self._hits else now
            frees_in = max(oldest + WINDOW_SECONDS - now, 0.0)
            headers = {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(max(limit - len(self._hits), 0)),
                "X-RateLimit-Reset": str(math.ceil(wall_time() + frees_in)),
            }
            if not admitted:
                headers["Retry-After"] = str(max(math.ceil(frees_in), 1))
            return admitted, headers

    def headers(self, limit: int) -> dict[str, str]:
        with self._lock:
            now = monotonic()
            live = [t for t in self._hits if t > now - WINDOW_SECONDS]
            frees_in = (live[0] + WINDOW_SECONDS - now) if live else WINDOW_SECONDS
            return {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": str(max(limit - len(live), 0)),
                "X-RateLimit-Reset": str(math.ceil(wall_time() + frees_in)),
            }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], exchange: LocalExchange) -> None:
        self.exchange = exchange
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY every response
    # would wait for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server_version = "alchemiser-exchange/1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Quiet: the exchange keeps its own request log (without header values)."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        exchange = cast(_Server, self.server).exchange
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        exchange._handle(self, raw)

    # -- writing ------------------------------------------------------------------------

    def send(self, response: _Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            if response.status != 204:
                if response.content_type:
                    self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if response.status != 204 and response.body:
                self.wfile.write(response.body)
            self.wfile.flush()
        except OSError:
            # The client went away (e.g. it timed out on a slow response).
            self.close_connection = True

    def reset(self) -> None:
        """Abort the connection: SO_LINGER 0, so closing sends a TCP RST."""
        self.close_connection = True
        sock = self.connection
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.wfile.close()
            self.rfile.close()
            sock.close()
        except OSError:
            pass
        # http.server flushes wfile after every request and again in finish(): give it
        # somewhere harmless to write, so an abort is not logged as a server error.
        self.wfile = io.BytesIO()


class LocalExchange:
    """The exchange server. A context manager: ``with LocalExchange(...) as ex: ex.url``."""

    def __init__(
        self,
        prices: Path | Traversable | None = None,
        settings: ExchangeSettings | None = None,
        *,
        port: int = 0,
        faults: Iterable[Fault] = (),
    ) -> None:
        self.engine = Engine(prices, settings)
        self._faults = FaultSet(faults)
        self._limiter = _RateLimiter()
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> LocalExchange:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((HOST, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"local-exchange-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> LocalExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the exchange is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # -- settings and faults -----------------------------------------------------------------

    @property
    def settings(self) -> ExchangeSettings:
        return self.engine.settings

    @settings.setter
    def settings(self, value: ExchangeSettings) -> None:
        current = self.engine.settings
        changes = {
            name: getattr(value, name)
            for name in value.__dataclass_fields__
            if getattr(value, name) != getattr(current, name)
        }
        if changes:
            self.engine.configure(**changes)

    def configure(self, **changes: Any) -> ExchangeSettings:
        """Change settings (see ExchangeSettings; also ``advance_seconds=``)."""
        return self.engine.configure(**changes)

    def add_fault(self, *faults: Fault) -> None:
        self._faults.add(*faults)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def faults(self) -> list[Fault]:
        return self._faults.faults()

    def fault_hits(self) -> list[tuple[Fault, int]]:
        """The armed faults that have fired, each with how many times."""
        return [(fault, n) for fault, n in self._faults.fired() if n > 0]

    # -- the request log --------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._log)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Logged API requests matching ``method`` and ``path`` (exact, or a regex)."""

        def hit(record: RequestRecord) -> bool:
            if method is not None and record.method != method.upper():
                return False
            return (
                path is None or record.path == path or re.fullmatch(path, record.path) is not None
            )

        return sum(1 for r in self.requests if hit(r))

    def counts(self) -> dict[str, int]:
        """Logged API requests per ``"METHOD /path"``."""
        return dict(Counter(r.endpoint for r in self.requests))

    def reset_counts(self) -> None:
        with self._log_lock:
            self._log.clear()

    def _record(self, record: RequestRecord) -> None:
        with self._log_lock:
            self._log.append(record)

    # -- request handling -------------------------------------------------------------------

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _handle(self, handler: _Handler, raw: bytes) -> None:
        method = handler.command.upper()
        split = urlsplit(handler.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        if path.startswith(CONTROL_PREFIX):
            handler.send(self._control(method, path, query, raw))
            return
        at = self.engine.now()
        fault = self._faults.match(method, path)
        places_order = _places_order(method, path)
        client_order_id = _client_order_id(raw) if (method, path) == ("POST", ORDERS) else None
        if fault is not None and fault.when == "before":
            self._change_exchange(fault)
            if fault.answers:
                self._respond_with_fault(handler, fault, method, path, query, at, client_order_id)
                return
            if fault.delay_seconds is not None:
                self._wait(fault.delay_seconds)
        credentials = (
            handler.headers.get("APCA-API-KEY-ID"),
            handler.headers.get("APCA-API-SECRET-KEY"),
        )
        response, accepted = self._api(method, path, query, raw, credentials)
        if places_order and accepted and client_order_id is None:
            client_order_id = _client_order_id(response.body)  # one the exchange made up
        record = RequestRecord(
            method=method,
            path=path,
            query=query,
            status=response.status,
            at=at,
            client_order_id=client_order_id,
            accepted=accepted if places_order else None,
            fault=fault.describe() if fault is not None else None,
        )
        if fault is not None and fault.when == "after":
            self._change_exchange(fault)
            if fault.reset:
                self._record(replace(record, status=None))
                handler.reset()
                return
            if fault.status is not None:
                scripted = self._fault_response(fault)
                self._record(replace(record, status=scripted.status))
                self._wait(self.settings.latency_ms / 1000)
                handler.send(scripted)
                return
            if fault.delay_seconds is not None:
                self._record(record)
                self._wait(fault.delay_seconds + self.settings.latency_ms / 1000)
                handler.send(response)
                return
        self._record(record)
        self._wait(self.settings.latency_ms / 1000)
        handler.send(response)

    def _change_exchange(self, fault: Fault) -> None:
        """A fault's changes to the exchange: the market moves on as the request is handled."""
        if fault.fill_open:
            self.engine.fill_open_orders(fault.client_order_id)
        if fault.advance_clock_seconds is not None:
            self.engine.advance(fault.advance_clock_seconds)

    def _respond_with_fault(
        self,
        handler: _Handler,
        fault: Fault,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        at: datetime,
        client_order_id: str | None,
    ) -> None:
        scripted = None if fault.reset else self._fault_response(fault)
        self._record(
            RequestRecord(
                method=method,
                path=path,
                query=query,
                status=scripted.status if scripted else None,
                at=at,
                client_order_id=client_order_id,
                accepted=False if _places_order(method, path) else None,
                fault=fault.describe(),
            )
        )
        if scripted is None:
            handler.reset()
            return
        self._wait(self.settings.latency_ms / 1000)
        handler.send(scripted)

    def _fault_response(self, fault: Fault) -> _Response:
        assert fault.status is not None
        headers = self._limiter.headers(self.settings.rate_limit_per_minute)
        if fault.rate_limit_reset_in is not None:
            headers["X-RateLimit-Reset"] = str(math.ceil(wall_time() + fault.rate_limit_reset_in))
        headers.update(fault.headers)
        if fault.body is None:
            body, content_type = b"", fault.content_type
        elif isinstance(fault.body, str):
            body = fault.body.encode()
            content_type = fault.content_type or "text/plain; charset=utf-8"
        else:
            body, content_type = _dumps(fault.body), fault.content_type or JSON_TYPE
        return _Response(fault.status, body, content_type, headers)

    def _api(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        raw: bytes,
        credentials: tuple[str | None, str | None],
    ) -> tuple[_Response, bool]:
        """The response to an API request, and whether it changed the exchange."""
        settings = self.settings
        key, secret = credentials
        if not key or not secret or not _authorized(settings, key, secret):
            unauthorized = _error_response(ApiError(401, 40110000, "request is not authorized"))
            unauthorized.headers.update(self._limiter.headers(settings.rate_limit_per_minute))
            return unauthorized, False
        admitted, limits = self._limiter.admit(settings.rate_limit_per_minute)
        if not admitted:
            response = _json_response(429, {"code": 42910000, "message": "rate limit exceeded"})
            response.headers.update(limits)
            return response, False
        try:
            response, applied = self._route(method, path, query, raw)
        except ApiError as error:
            response, applied = _error_response(error), False
        response.headers.update(limits)
        return response, applied

    def _route(
        self, method: str, path: str, query: Mapping[str, list[str]], raw: bytes
    ) -> tuple[_Response, bool]:
        engine = self.engine
        if method == "GET":
            simple = {
                "/v2/account": engine.account_json,
                "/v2/clock": engine.clock_json,
                "/v2/positions": engine.positions_json,
            }
            if path in simple:
                return _json_response(200, simple[path]()), False
            by_query = {
                "/v2/calendar": engine.calendar_json,
                "/v2/assets": engine.assets_json,
                "/v2/orders": engine.orders_json,
                "/v2/stocks/bars": engine.bars_json,
                "/v2/stocks/quotes/latest": engine.latest_quotes_json,
                "/v2/stocks/trades/latest": engine.latest_trades_json,
            }
            if path in by_query:
                return _json_response(200, by_query[path](query)), False
            if path == "/v2/orders:by_client_order_id":
                values = query.get("client_order_id")
                coid = values[-1] if values else None
                return _json_response(200, engine.order_by_client_id_json(coid)), False
            for pattern, lookup in (
                (_ASSET, engine.asset_json),
                (_POSITION, engine.position_json),
                (_ORDER_ID, engine.order_json),
            ):
                match = pattern.fullmatch(path)
                if match:
                    return _json_response(200, lookup(unquote(match.group(1)))), False
        if method == "POST" and path == ORDERS:
            try:
                payload = json.loads(raw or b"null", parse_float=Decimal)
            except (ValueError, UnicodeDecodeError) as error:
                raise ApiError(400, 40010000, "request body format is invalid") from error
            return _json_response(200, engine.submit_order(payload)), True
        if method == "DELETE":
            if path == ORDERS:
                cancelled = engine.cancel_all_json()
                return _json_response(207, cancelled), bool(cancelled)
            match = _ORDER_ID.fullmatch(path)
            if match:
                engine.cancel_order(unquote(match.group(1)))
                return _Response(204, content_type=None), True
            match = _POSITION.fullmatch(path)
            if match:
                order = engine.close_position(unquote(match.group(1)), query)
                return _json_response(200, order), True
        if _KNOWN.fullmatch(path):
            raise ApiError(405, 40510000, "method not allowed")
        raise ApiError(404, 40410000, "endpoint not found")

    # -- the control plane -------------------------------------------------------------------

    def _control(
        self, method: str, path: str, query: Mapping[str, list[str]], raw: bytes
    ) -> _Response:
        name = path[len(CONTROL_PREFIX) :].strip("/")
        try:
            payload = json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError):
            return _json_response(400, {"code": 40010000, "message": "body is not JSON"})
        try:
            if name == "faults" and method == "POST":
                self.add_fault(*faults_from_json(payload))
                return _json_response(200, self._faults_json())
            if name == "faults" and method == "DELETE":
                self.clear_faults()
                return _json_response(200, self._faults_json())
            if name == "faults" and method == "GET":
                return _json_response(200, self._faults_json())
            if name == "state" and method == "GET":
                state = self.engine.state_json()
                state["requests"] = {"total": len(self.requests), "by_endpoint": self.counts()}
                return _json_response(200, state)
            if name == "settings" and method == "POST":
                if not isinstance(payload, Mapping):
                    raise ValueError("settings must be a JSON object")
                updated = self.configure(**settings_changes_from_json(payload))
                return _json_response(200, updated.public_json())
            if name == "settings" and method == "GET":
                return _json_response(200, self.settings.public_json())
            if name == "reset_counts" and method == "POST":
                self.reset_counts()
                return _json_response(200, {"requests": 0})
            if name == "positions" and method == "POST":
                for item in _objects(payload, "positions"):
                    self._set_position(item)
                return _json_response(200, self.engine.positions_json())
            if name == "prices" and method == "POST":
                if not isinstance(payload, Mapping):
                    raise ValueError('prices must be a JSON object {"SYMBOL": "price"}')
                for symbol, value in payload.items():
                    price = None if value is None else _decimal(value, symbol)
                    self.engine.set_price(str(symbol), price)
                return _json_response(200, self.engine.state_json()["prices"])
            if name == "fill_open" and method == "POST":
                wanted = payload.get("client_order_id") if isinstance(payload, Mapping) else None
                return _json_response(200, {"filled": self.engine.fill_open_orders(wanted)})
        except (ValueError, TypeError) as error:
            return _json_response(400, {"code": 40010000, "message": str(error)})
        return _json_response(404, {"code": 40410000, "message": "control endpoint not found"})

    def _set_position(self, item: Mapping[str, Any]) -> None:
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
        self.engine.set_position(
            symbol,
            _decimal(item.get("qty"), "qty"),
            _decimal(entry, "avg_entry_price"),
            asset_class=str(item.get("asset_class", "us_equity")),
            price=price,
        )

    def _faults_json(self) -> JSON_LIST:
        return [{**f.to_dict(), "fired": n} for f, n in self._faults.fired()]


JSON_LIST = list[dict[str, Any]]


def _authorized(settings: ExchangeSettings, key: str, secret: str) -> bool:
    if settings.key_id is None or settings.secret_key is None:
        return True
    key_ok = compare_digest(key.encode(), settings.key_id.encode())
    secret_ok = compare_digest(secret.encode(), settings.secret_key.encode())
    return key_ok and secret_ok


def _places_order(method: str, path: str) -> bool:
    """POST /v2/orders and DELETE /v2/positions/{symbol} (a closing sell) place orders."""
    return (method, path) == ("POST", ORDERS) or (
        method == "DELETE" and _POSITION.fullmatch(path) is not None
    )


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


def _client_order_id(raw: bytes) -> str | None:
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(payload, dict):
        value = payload.get("client_order_id")
        return value if isinstance(value, str) else None
    return None
