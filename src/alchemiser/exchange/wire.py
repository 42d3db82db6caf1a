"""The local exchange's HTTP plumbing: reading requests and writing responses.

A threading HTTP/1.1 server whose handler reads each request's body and hands it to the
exchange, then writes the :class:`Response` it gets (or aborts the connection with a TCP
RST, for a scripted reset); the JSON encoding of bodies; and the rolling one-minute
rate limiter with Alpaca's ``X-RateLimit-*`` headers.
"""

from __future__ import annotations

import io
import json
import math
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from time import monotonic
from time import time as wall_time
from typing import Any, cast

from alchemiser.exchange.shapes import ApiError

JSON_TYPE = "application/json; charset=UTF-8"
WINDOW_SECONDS = 60.0


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), default=_json_default).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, data: Any) -> Response:
    return Response(status, dumps(data))


def error_response(error: ApiError) -> Response:
    return json_response(error.status, error.body())


class RateLimiter:
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


class Server(ThreadingHTTPServer):
    """Serves each request on its own thread, handing it to ``on_request``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], on_request: Callable[[Handler, bytes], None]
    ) -> None:
        self.on_request = on_request
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
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
        on_request = cast(Server, self.server).on_request
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        on_request(self, raw)

    # -- writing ------------------------------------------------------------------------

    def send(self, response: Response) -> None:
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
