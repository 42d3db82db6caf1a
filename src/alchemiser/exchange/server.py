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

Here: the server's lifecycle, the request log, auth, rate limits and faults around each
request; ``routes.py`` answers the requests, ``wire.py`` reads and writes them.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from hmac import compare_digest
from importlib.resources.abc import Traversable
from pathlib import Path
from time import time as wall_time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from alchemiser.exchange import routes
from alchemiser.exchange.engine import Engine
from alchemiser.exchange.faults import Fault, FaultSet
from alchemiser.exchange.settings import ExchangeSettings
from alchemiser.exchange.shapes import ApiError
from alchemiser.exchange.wire import (
    JSON_TYPE,
    Handler,
    RateLimiter,
    Response,
    Server,
    dumps,
    error_response,
    json_response,
)

HOST = "127.0.0.1"


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
        self._limiter = RateLimiter()
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._requested_port = port
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> LocalExchange:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = Server((HOST, self._requested_port), self._handle)
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

    def _handle(self, handler: Handler, raw: bytes) -> None:
        method = handler.command.upper()
        split = urlsplit(handler.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        if path.startswith(routes.CONTROL_PREFIX):
            handler.send(routes.control(self, self._faults, method, path, raw))
            return
        at = self.engine.now()
        fault = self._faults.match(method, path)
        places_order = routes.places_order(method, path)
        client_order_id = (
            routes.client_order_id(raw) if (method, path) == ("POST", routes.ORDERS) else None
        )
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
            client_order_id = routes.client_order_id(response.body)  # one the exchange made up
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
        handler: Handler,
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
                accepted=False if routes.places_order(method, path) else None,
                fault=fault.describe(),
            )
        )
        if scripted is None:
            handler.reset()
            return
        self._wait(self.settings.latency_ms / 1000)
        handler.send(scripted)

    def _fault_response(self, fault: Fault) -> Response:
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
            body, content_type = dumps(fault.body), fault.content_type or JSON_TYPE
        return Response(fault.status, body, content_type, headers)

    def _api(
        self,
        method: str,
        path: str,
        query: Mapping[str, list[str]],
        raw: bytes,
        credentials: tuple[str | None, str | None],
    ) -> tuple[Response, bool]:
        """The response to an API request, and whether it changed the exchange."""
        settings = self.settings
        key, secret = credentials
        if not key or not secret or not _authorized(settings, key, secret):
            unauthorized = error_response(ApiError(401, 40110000, "request is not authorized"))
            unauthorized.headers.update(self._limiter.headers(settings.rate_limit_per_minute))
            return unauthorized, False
        admitted, limits = self._limiter.admit(settings.rate_limit_per_minute)
        if not admitted:
            response = json_response(429, {"code": 42910000, "message": "rate limit exceeded"})
            response.headers.update(limits)
            return response, False
        try:
            response, applied = routes.route(self.engine, method, path, query, raw)
        except ApiError as error:
            response, applied = error_response(error), False
        response.headers.update(limits)
        return response, applied


def _authorized(settings: ExchangeSettings, key: str, secret: str) -> bool:
    if settings.key_id is None or settings.secret_key is None:
        return True
    key_ok = compare_digest(key.encode(), settings.key_id.encode())
    secret_ok = compare_digest(secret.encode(), settings.secret_key.encode())
    return key_ok and secret_ok
