"""Scripted faults: which requests they hit, and what the exchange does instead.

A :class:`Fault` matches requests by method and path (an exact path, or else a regular
expression that must match the whole path). Each fault counts the requests it matches,
1-based, and fires on occurrences ``nth .. nth + times - 1`` (or on every occurrence
from ``nth`` on when ``every``).

What a fault does, relative to applying the request (``when``):

- a scripted response (``status``, with any ``body``, 2xx included): ``"before"``
  answers instead of the exchange (the request is not applied); ``"after"`` applies
  the request, then answers with the scripted response instead of the real one;
- ``reset``: the connection is dropped with a TCP RST, before or after applying it;
- ``delay_seconds``: ``"before"`` waits, then applies the request and answers normally
  (another request can overtake it meanwhile); ``"after"`` applies it, then answers
  normally but late (the client may time out on a request that took effect);
- changes to the exchange, in addition to any of the above or alone (a fault with
  only these answers normally): ``fill_open`` fills every open order (or only the one
  with ``client_order_id``) in full at its fill price, as if the market moved on;
  ``advance_clock_seconds`` moves the exchange clock forward. They run as the request
  arrives (``"before"``, ahead of any delay or scripted answer) or right after it is
  applied (``"after"``, so the real answer, if sent, shows the state before them).

Faults load from JSON (``--faults FILE`` and ``POST /_control/faults``) as objects with
the same field names: ``{"method": "POST", "path": "/v2/orders", "nth": 2, "status": 503,
"body": "<html>oops</html>", "content_type": "text/html"}``, ``{"method": "GET", "path":
"/v2/positions", "when": "after", "fill_open": true}``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

When = Literal["before", "after"]
JsonBody = Mapping[str, Any] | Sequence[Any] | str | None

ORDERS_PATH = "/v2/orders"
ANY_PATH = ".*"
METHODS = frozenset({"GET", "POST", "DELETE", "PATCH", "PUT", "*"})
HTML_ERROR = (
    "<html>\r\n<head><title>{status} Service Temporarily Unavailable</title></head>\r\n"
    "<body>\r\n<center><h1>{status} Service Temporarily Unavailable</h1></center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass(frozen=True, eq=False)
class Fault:
    """One scripted misbehaviour: at most one of ``status`` (a scripted response),
    ``reset`` (drop the connection with a TCP RST, no response) or ``delay_seconds``
    (the normal response, late); and any of ``fill_open`` / ``advance_clock_seconds``
    (the exchange changes as the request is handled). At least one of them."""

    method: str = "*"
    path: str = ANY_PATH
    nth: int = 1
    every: bool = False
    times: int = 1
    when: When = "before"
    status: int | None = None
    body: JsonBody = None
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    reset: bool = False
    delay_seconds: float | None = None
    rate_limit_reset_in: float | None = None
    """When set, the response carries ``X-RateLimit-Reset`` = now + this many seconds
    (unix seconds, real time), computed when the fault fires."""
    fill_open: bool = False
    """Fill every open order (or the one with ``client_order_id``) in full."""
    client_order_id: str | None = None
    advance_clock_seconds: float | None = None
    """Move the exchange clock forward by this many seconds."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", self.method.upper())
        object.__setattr__(self, "headers", dict(self.headers))
        if self.method not in METHODS:
            raise ValueError(f"fault method must be one of {sorted(METHODS)}, got {self.method!r}")
        if self.when not in ("before", "after"):
            raise ValueError(f"fault when must be 'before' or 'after', got {self.when!r}")
        if self.nth < 1 or self.times < 1:
            raise ValueError("fault nth and times must be >= 1")
        answers = [self.status is not None, self.reset, self.delay_seconds is not None]
        if sum(answers) > 1:
            raise ValueError("a fault takes at most one of status, reset or delay_seconds")
        if sum(answers) == 0 and not self.changes_exchange:
            raise ValueError(
                "a fault needs one of status, reset or delay_seconds, "
                "or fill_open / advance_clock_seconds"
            )
        if self.client_order_id is not None and not self.fill_open:
            raise ValueError("fault client_order_id names the order fill_open fills")
        if self.advance_clock_seconds is not None and self.advance_clock_seconds <= 0:
            raise ValueError("fault advance_clock_seconds must be > 0")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError(f"fault status must be an HTTP status, got {self.status}")
        if self.delay_seconds is not None and self.delay_seconds < 0:
            raise ValueError("fault delay_seconds must be >= 0")
        try:
            re.compile(self.path)
        except re.error as error:
            raise ValueError(f"fault path is neither a path nor a regex: {error}") from error

    # -- matching ---------------------------------------------------------------------

    def matches(self, method: str, path: str) -> bool:
        if self.method not in ("*", method.upper()):
            return False
        return path == self.path or re.fullmatch(self.path, path) is not None

    def fires_on(self, occurrence: int) -> bool:
        """Whether the ``occurrence``-th matching request (1-based) is hit."""
        if self.every:
            return occurrence >= self.nth
        return self.nth <= occurrence < self.nth + self.times

    @property
    def changes_exchange(self) -> bool:
        """Whether the fault changes the exchange (fills, clock) when it fires."""
        return self.fill_open or self.advance_clock_seconds is not None

    @property
    def answers(self) -> bool:
        """Whether the fault replaces the response (scripted or dropped)."""
        return self.status is not None or self.reset

    @property
    def kind(self) -> str:
        parts: list[str] = []
        if self.reset:
            parts.append("reset")
        elif self.delay_seconds is not None:
            parts.append("slow")
        elif self.status is not None:
            parts.append(f"status {self.status}")
        if self.fill_open:
            parts.append(f"fill {self.client_order_id}" if self.client_order_id else "fill open")
        if self.advance_clock_seconds is not None:
            parts.append(f"clock +{_seconds(self.advance_clock_seconds)}s")
        return ", ".join(parts)

    def describe(self) -> str:
        return f"{self.kind} on {self.method} {self.path} ({self.when})"

    # -- JSON -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["headers"] = dict(self.headers)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        return cls(**dict(data))

    # -- convenience constructors ------------------------------------------------------

    @classmethod
    def rate_limited(
        cls,
        retry_after: float | None = 1,
        reset_in: float | None = None,
        *,
        method: str = "*",
        path: str = ANY_PATH,
        nth: int = 1,
        times: int = 1,
        every: bool = False,
    ) -> Fault:
        """429 as Alpaca sends it; ``Retry-After`` and/or ``X-RateLimit-Reset``."""
        headers = {"X-RateLimit-Remaining": "0"}
        if retry_after is not None:
            headers["Retry-After"] = _seconds(retry_after)
        return cls(
            method=method,
            path=path,
            nth=nth,
            times=times,
            every=every,
            status=429,
            body={"code": 42910000, "message": "rate limit exceeded"},
            headers=headers,
            rate_limit_reset_in=reset_in,
        )

    @classmethod
    def server_error(
        cls,
        status: int = 503,
        json_body: bool = False,
        *,
        method: str = "*",
        path: str = ANY_PATH,
        nth: int = 1,
        times: int = 1,
        every: bool = False,
        when: When = "before",
    ) -> Fault:
        """A 5xx: an Alpaca-style JSON error, or (default) a proxy's HTML page."""
        if json_body:
            body: JsonBody = {"code": 50010000, "message": "internal server error"}
            content_type = None
        else:
            body = HTML_ERROR.format(status=status)
            content_type = "text/html"
        return cls(
            method=method,
            path=path,
            nth=nth,
            times=times,
            every=every,
            when=when,
            status=status,
            body=body,
            content_type=content_type,
        )

    @classmethod
    def connection_reset(
        cls,
        when: When = "before",
        *,
        method: str = "*",
        path: str = ANY_PATH,
        nth: int = 1,
        times: int = 1,
        every: bool = False,
    ) -> Fault:
        """Drop the connection with a TCP RST and no response."""
        return cls(
            method=method, path=path, nth=nth, times=times, every=every, when=when, reset=True
        )

    @classmethod
    def slow(
        cls,
        seconds: float,
        when: When = "after",
        *,
        method: str = "*",
        path: str = ANY_PATH,
        nth: int = 1,
        times: int = 1,
        every: bool = False,
    ) -> Fault:
        """The normal response, ``seconds`` late: ``when="after"`` applies the request
        first (it takes effect, the answer is late); ``when="before"`` waits first, then
        applies it and answers normally (another request can overtake it)."""
        return cls(
            method=method,
            path=path,
            nth=nth,
            times=times,
            every=every,
            when=when,
            delay_seconds=seconds,
        )

    @classmethod
    def refusal(
        cls,
        status: int,
        code: int,
        message: str,
        *,
        method: str = "POST",
        path: str = ORDERS_PATH,
        nth: int = 1,
        times: int = 1,
        when: When = "before",
    ) -> Fault:
        """An Alpaca-style refusal ``{"code", "message"}`` with this HTTP status."""
        return cls(
            method=method,
            path=path,
            nth=nth,
            times=times,
            when=when,
            status=status,
            body={"code": code, "message": message},
        )

    @classmethod
    def insufficient_buying_power(
        cls, *, method: str = "POST", path: str = ORDERS_PATH, nth: int = 1, times: int = 1
    ) -> Fault:
        return cls.refusal(
            403,
            40310000,
            "insufficient buying power",
            method=method,
            path=path,
            nth=nth,
            times=times,
        )

    @classmethod
    def wash_trade(
        cls, *, method: str = "POST", path: str = ORDERS_PATH, nth: int = 1, times: int = 1
    ) -> Fault:
        return cls.refusal(
            403,
            40310000,
            "potential wash trade detected. use complex orders",
            method=method,
            path=path,
            nth=nth,
            times=times,
        )

    @classmethod
    def duplicate_client_order_id(
        cls,
        *,
        method: str = "POST",
        path: str = ORDERS_PATH,
        nth: int = 1,
        times: int = 1,
        when: When = "before",
    ) -> Fault:
        return cls.refusal(
            422,
            40010001,
            "client_order_id must be unique",
            method=method,
            path=path,
            nth=nth,
            times=times,
            when=when,
        )

    @classmethod
    def market_moves(
        cls,
        *,
        client_order_id: str | None = None,
        advance_clock_seconds: float | None = None,
        method: str = "*",
        path: str = ANY_PATH,
        nth: int = 1,
        times: int = 1,
        every: bool = False,
        when: When = "before",
    ) -> Fault:
        """The market moves on as this request is handled: every open order (or the
        one with ``client_order_id``) fills in full, and the clock moves forward by
        ``advance_clock_seconds`` when given. The request is answered normally."""
        return cls(
            method=method,
            path=path,
            nth=nth,
            times=times,
            every=every,
            when=when,
            fill_open=True,
            client_order_id=client_order_id,
            advance_clock_seconds=advance_clock_seconds,
        )


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def faults_from_json(data: Any) -> list[Fault]:
    """A list of fault objects, a single one, or ``{"faults": [...]}``."""
    if isinstance(data, Mapping) and "faults" in data:
        data = data["faults"]
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list):
        raise ValueError("faults must be a JSON list of fault objects")
    faults: list[Fault] = []
    for index, item in enumerate(data):
        if not isinstance(item, Mapping):
            raise ValueError(f"fault #{index + 1} is not an object")
        try:
            faults.append(Fault.from_dict(item))
        except (TypeError, ValueError) as error:
            raise ValueError(f"fault #{index + 1}: {error}") from error
    return faults


def load_faults(path: Path) -> list[Fault]:
    """Faults from a JSON file (see :func:`faults_from_json`)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: {error}") from error
    return faults_from_json(data)


@dataclass
class _Armed:
    fault: Fault
    seen: int = 0
    fired: int = 0


class FaultSet:
    """The armed faults and their counters; thread-safe."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = [_Armed(f) for f in faults]

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._armed.extend(_Armed(f) for f in faults)

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def faults(self) -> list[Fault]:
        with self._lock:
            return [a.fault for a in self._armed]

    def fired(self) -> list[tuple[Fault, int]]:
        """Each fault with how many times it has fired."""
        with self._lock:
            return [(a.fault, a.fired) for a in self._armed]

    def match(self, method: str, path: str) -> Fault | None:
        """Count this request against every matching fault; the first that fires wins."""
        hit: Fault | None = None
        with self._lock:
            for armed in self._armed:
                if not armed.fault.matches(method, path):
                    continue
                armed.seen += 1
                if hit is None and armed.fault.fires_on(armed.seen):
                    armed.fired += 1
                    hit = armed.fault
        return hit
