"""Every request to Alpaca goes through here: timeouts, a request budget, one retry
policy, a circuit breaker, and the mapping of every failure to a typed BrokerError.

alpaca-py's REST client retries 429 and 504 by itself (sleeping in the calling thread,
POSTs included) and sends requests without any timeout. ``harden`` turns both off: its
retry count goes to zero and its ``requests`` session is replaced by one that sets
connect and read timeouts, waits for the request budget and counts requests. The
single retry policy then lives in ``Transport.call`` (tenacity, waiting through the
Clock port): exponential backoff with jitter, Retry-After / X-RateLimit-Reset honoured,
never past the run's deadline, and a breaker that opens after repeated transient
failures so a sick broker stops the run instead of being hammered.
"""

from __future__ import annotations

import json
import logging
import random
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import requests
from alpaca.common.exceptions import APIError
from alpaca.common.rest import RESTClient
from pydantic import ValidationError
from tenacity import RetryCallState, Retrying, retry_if_exception

from alchemiser.adapters.alpaca.policy import RetryPolicy
from alchemiser.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerRejected,
    BrokerTransient,
    BrokerUnknown,
    CircuitOpen,
    DuplicateOrder,
)
from alchemiser.ports import Clock

T = TypeVar("T")
log = logging.getLogger(__name__)

RATE_LIMIT_WINDOW_SECONDS = 60.0
WINDOW_EPSILON = 1e-6
"""Added to waits for the rate-limit window, so float rounding cannot end one short."""
MESSAGE_LIMIT = 300
"""Longest broker message kept in an error (an HTML error page is not a message)."""


class RateLimited(BrokerTransient):
    """HTTP 429; ``retry_after`` is how long the broker asked us to wait, if it said."""

    code = "BROKER_RATE_LIMITED"

    def __init__(
        self, message: str, *, broker_code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, broker_code=broker_code)
        self.retry_after = retry_after


class NotFound(BrokerRejected):
    """HTTP 404: the broker does not know the order or asset asked for."""

    code = "BROKER_NOT_FOUND"


class CircuitBreaker:
    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self.consecutive = 0
        self.opened_by: BrokerError | None = None

    def check(self) -> None:
        if self.opened_by is not None:
            raise CircuitOpen(
                f"circuit breaker open after {self.threshold} transient failures in a row "
                f"(last: {self.opened_by}); no further requests this run"
            )

    def record_success(self) -> None:
        self.consecutive = 0

    def record_failure(self, error: BrokerError) -> None:
        self.consecutive += 1
        if self.consecutive >= self.threshold and self.opened_by is None:
            self.opened_by = error
            log.error("broker circuit breaker opened", extra={"error_code": error.code})


class RequestBudget:
    """At most ``limit`` requests in any ``window`` seconds; waits (Clock) for room."""

    def __init__(self, clock: Clock, limit: int, window: float = RATE_LIMIT_WINDOW_SECONDS) -> None:
        self.clock = clock
        self.limit = limit
        self.window = window
        self.sent: deque[float] = deque()
        self.count = 0

    def acquire(self) -> None:
        while True:
            now = self.clock.monotonic()
            while self.sent and now - self.sent[0] >= self.window:
                self.sent.popleft()
            if len(self.sent) < self.limit:
                break
            # Re-checked after every wait: a wait may end early, or short by a rounding.
            self.clock.sleep(self.sent[0] + self.window - now + WINDOW_EPSILON)
        self.sent.append(now)
        self.count += 1


class HardenedSession(requests.Session):
    """A requests session with default timeouts and the request budget."""

    def __init__(self, budget: RequestBudget, timeout: tuple[float, float]) -> None:
        super().__init__()
        self.budget = budget
        self.timeout = timeout

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        self.budget.acquire()
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)


def harden(client: RESTClient, session: HardenedSession) -> None:
    """Turn off alpaca-py's own retries and give it our session. Relies on two private
    attributes of alpaca-py's RESTClient; tests pin them so an upgrade that renames
    them fails loudly instead of silently retrying POSTs again."""
    if not hasattr(client, "_retry") or not hasattr(client, "_session"):
        raise TypeError("alpaca-py's RESTClient changed: cannot disable its retries")
    client._retry = 0
    client._retry_codes = []
    client._session = session


def _body(error: APIError) -> tuple[str | None, str]:
    """The broker's code and message; alpaca-py's own ``code`` property raises on a
    body that is not JSON (an HTML 502 page, an empty body), so parse it here."""
    raw = str(error)
    try:
        document = json.loads(raw)
    except ValueError:
        document = None
    if isinstance(document, dict):
        code = document.get("code")
        message = document.get("message")
        return (
            None if code is None else str(code),
            str(message if message is not None else raw)[:MESSAGE_LIMIT],
        )
    text = " ".join(raw.split())
    return None, (text[:MESSAGE_LIMIT] or "(empty body)")


def _status(error: APIError) -> int | None:
    response = error.response
    return None if response is None else int(response.status_code)


def retry_after(response: requests.Response | None, now: datetime) -> float | None:
    """Seconds the broker asked us to wait: Retry-After (seconds or an HTTP date), else
    X-RateLimit-Reset (a Unix time)."""
    if response is None:
        return None
    header = response.headers.get("Retry-After")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            try:
                when = parsedate_to_datetime(header)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                if when.tzinfo is None:  # asctime and "-0000" dates are UTC
                    when = when.replace(tzinfo=UTC)
                return max(0.0, (when - now).total_seconds())
    reset = response.headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - now.timestamp())
        except ValueError:
            return None
    return None


def classify(error: Exception, *, what: str, idempotent: bool, now: datetime) -> BrokerError:
    """Map any failure of one request to a typed BrokerError.

    ``idempotent`` requests (reads, cancels) that may or may not have reached the broker
    are transient (safe to repeat); an order submission in that state is unknown: it
    must be looked up by client_order_id before anything else.
    """
    if isinstance(error, BrokerError):
        return error
    maybe_sent = BrokerTransient if idempotent else BrokerUnknown
    if isinstance(error, APIError):
        status = _status(error)
        code, message = _body(error)
        text = f"{what}: HTTP {status}: {message}"
        if status == 429:
            return RateLimited(
                text,
                broker_code=code,
                retry_after=retry_after(error.response, now),
            )
        if status is not None and status >= 500:
            return maybe_sent(text, broker_code=code)
        if status == 401 or code == "40110000":
            return BrokerAuthError(text, broker_code=code)
        if status == 404:
            return NotFound(text, broker_code=code)
        lowered = message.lower()
        if status == 422 and "client_order_id" in lowered and "unique" in lowered:
            return DuplicateOrder(text, broker_code=code)
        return BrokerRejected(text, broker_code=code)
    if isinstance(error, requests.ConnectTimeout):
        return BrokerTransient(f"{what}: could not connect in time", broker_code="connect_timeout")
    if isinstance(error, requests.ReadTimeout):
        return maybe_sent(f"{what}: no response in time", broker_code="read_timeout")
    if isinstance(error, requests.ConnectionError):
        if _never_sent(error):
            return BrokerTransient(f"{what}: cannot connect", broker_code="connect_error")
        return maybe_sent(f"{what}: connection lost: {type(error).__name__}", broker_code="reset")
    if isinstance(error, requests.RequestException) and not isinstance(error, ValueError):
        return maybe_sent(f"{what}: {type(error).__name__}", broker_code="request_error")
    if isinstance(error, (ValueError, ValidationError, KeyError, TypeError)):
        # requests' JSONDecodeError (a 2xx that is not JSON) is a ValueError too.
        # A 2xx whose body is not what the API documents.
        return maybe_sent(
            f"{what}: malformed response ({type(error).__name__})", broker_code="malformed"
        )
    return maybe_sent(f"{what}: {type(error).__name__}", broker_code="unexpected")


def _never_sent(error: requests.ConnectionError) -> bool:
    """A refused or unresolvable connection cannot have delivered the request."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    name = type(reason).__name__ if reason is not None else ""
    return name in {"NewConnectionError", "NameResolutionError"}


class Transport:
    """Runs each request under the retry policy, the breaker and the deadline."""

    def __init__(
        self,
        clock: Clock,
        policy: RetryPolicy,
        *,
        deadline: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.clock = clock
        self.policy = policy
        self.deadline = deadline
        """On ``clock.monotonic``: no retry waits past it (the Lambda's remaining time)."""
        self.breaker = CircuitBreaker(policy.breaker_threshold)
        self.budget = RequestBudget(clock, policy.max_requests_per_minute)
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.retries = 0

    def session(self) -> HardenedSession:
        return HardenedSession(
            self.budget,
            (self.policy.connect_timeout_seconds, self.policy.read_timeout_seconds),
        )

    @property
    def requests_sent(self) -> int:
        return self.budget.count

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, RateLimited) and error.retry_after is not None:
            return error.retry_after + self.rng.uniform(0, min(self.policy.jitter_seconds, 0.1))
        backoff: float = self.policy.initial_backoff_seconds * 2.0 ** (state.attempt_number - 1)
        return min(self.policy.max_backoff_seconds, backoff) + self.rng.uniform(
            0, self.policy.jitter_seconds
        )

    def _stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.policy.max_attempts:
            return True
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, RateLimited) and (error.retry_after or 0) > (
            self.policy.max_retry_after_seconds
        ):
            return True
        return self.deadline is not None and (
            self.clock.monotonic() + state.upcoming_sleep > self.deadline
        )

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        error = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "retrying broker request",
            extra={
                "attempt": state.attempt_number,
                "wait_seconds": round(state.upcoming_sleep, 3),
                "error_code": getattr(error, "code", None),
                "error": str(error),
            },
        )

    def once(self, fn: Callable[[], T], *, what: str, idempotent: bool, force: bool = False) -> T:
        """One attempt: breaker check (skipped with ``force``: a cancel), the request,
        failures typed and counted."""
        if not force:
            self.breaker.check()
        log.debug("broker request", extra={"request": what})
        try:
            result = fn()
        except (APIError, requests.RequestException, ValueError, ValidationError) as raw:
            error = classify(raw, what=what, idempotent=idempotent, now=self.clock.now())
            if isinstance(error, (BrokerTransient, BrokerUnknown)):
                self.breaker.record_failure(error)
            raise error from raw
        except (KeyError, TypeError) as raw:
            error = classify(raw, what=what, idempotent=idempotent, now=self.clock.now())
            self.breaker.record_failure(error)
            raise error from raw
        self.breaker.record_success()
        return result

    def call(self, fn: Callable[[], T], *, what: str, idempotent: bool = True) -> T:
        """``fn`` under the retry policy; only transient failures are retried."""
        retrying = Retrying(
            sleep=self.clock.sleep,
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception(
                lambda e: isinstance(e, BrokerTransient) and not isinstance(e, CircuitOpen)
            ),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        result: T = retrying(lambda: self.once(fn, what=what, idempotent=idempotent))
        return result


def as_mapping(value: object, what: str) -> Mapping[str, Any]:
    """A JSON object from the API, or ValueError (mapped to a malformed response)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def as_list(value: object, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{what}: expected a JSON list, got {type(value).__name__}")
    return value


def utc(text: str | None) -> datetime | None:
    """An RFC 3339 timestamp from the API as an aware datetime (None stays None)."""
    if not text:
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
