"""The Alpaca transport: failure classification, the retry policy, the circuit breaker,
the request budget, the hardened session and ``harden`` on alpaca-py's REST client.

No network: responses are built by hand (as requests builds them) and served by a stub
transport adapter mounted on the session; every wait goes through a ManualClock.
"""

from __future__ import annotations

import json
import random
import socket
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import partial
from typing import Any, cast

import pytest
import requests
import urllib3
from alpaca.common.exceptions import APIError
from alpaca.common.rest import RESTClient
from pydantic import BaseModel, ValidationError
from requests.adapters import BaseAdapter

from alchemiser.adapters.alpaca.clients import rest_client
from alchemiser.adapters.alpaca.policy import RetryPolicy
from alchemiser.adapters.alpaca.transport import (
    MESSAGE_LIMIT,
    CircuitBreaker,
    HardenedSession,
    NotFound,
    RateLimited,
    RequestBudget,
    Transport,
    classify,
    harden,
)
from alchemiser.adapters.clock import ManualClock
from alchemiser.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerRejected,
    BrokerTransient,
    BrokerUnknown,
    CircuitOpen,
    DuplicateOrder,
)

START = datetime(2026, 7, 31, 14, 0, tzinfo=UTC)
NOW = START
URL = "http://127.0.0.1:9"
HTML_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n"
    + "<!-- padding -->\r\n" * 200
    + "</body>\r\n</html>\r\n"
)


# -- helpers -------------------------------------------------------------------------


def response(
    status: int,
    body: str | bytes = b"",
    headers: Mapping[str, str] | None = None,
    url: str = f"{URL}/v2/orders",
) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = body.encode() if isinstance(body, str) else body
    r.encoding = "utf-8"
    r.url = url
    r.reason = "stub"
    r.headers.update(headers or {})
    return r


def api_error(
    status: int, body: str | bytes = b"", headers: Mapping[str, str] | None = None
) -> APIError:
    """An APIError exactly as alpaca-py's RESTClient._one_request raises it."""
    r = response(status, body, headers)
    return new_api_error(r.text, requests.HTTPError(response=r))


def new_api_error(text: str, http_error: requests.HTTPError | None = None) -> APIError:
    return APIError(text, http_error)  # type: ignore[no-untyped-call]


def alpaca_json(code: int, message: str) -> str:
    return json.dumps({"code": code, "message": message})


def get(error: Exception, now: datetime = NOW) -> BrokerError:
    return classify(error, what="GET /v2/account", idempotent=True, now=now)


def post(error: Exception, now: datetime = NOW) -> BrokerError:
    return classify(error, what="POST /v2/orders c-1", idempotent=False, now=now)


def never_sent() -> requests.ConnectionError:
    """What requests raises for a refused connection (urllib3 2.x shape)."""
    reason = urllib3.exceptions.NewConnectionError(
        cast(Any, None), "Failed to establish a new connection: [Errno 111] Connection refused"
    )
    return requests.ConnectionError(
        urllib3.exceptions.MaxRetryError(cast(Any, None), "/v2/orders", reason)
    )


def reset() -> requests.ConnectionError:
    return requests.ConnectionError(
        urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())
    )


def validation_error() -> ValidationError:
    class Account(BaseModel):
        cash: float

    try:
        Account.model_validate({"cash": "lots"})
    except ValidationError as error:
        return error
    raise AssertionError("expected a ValidationError")


class StubAdapter(BaseAdapter):
    """A requests transport adapter that serves canned responses and records calls."""

    def __init__(self, responses: Callable[[], requests.Response]) -> None:
        super().__init__()
        self.responses = responses
        self.calls: list[tuple[requests.PreparedRequest, Any]] = []

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **kwargs: Any
    ) -> requests.Response:
        self.calls.append((request, kwargs.get("timeout")))
        r = self.responses()
        r.request = request
        r.url = str(request.url)
        return r

    def close(self) -> None:
        pass


def stubbed(session: requests.Session, responses: Callable[[], requests.Response]) -> StubAdapter:
    adapter = StubAdapter(responses)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return adapter


def sequence(*items: requests.Response) -> Callable[[], requests.Response]:
    queue: Iterator[requests.Response] = iter(items)
    return lambda: next(queue)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


class Flaky:
    """A broker call that raises the given errors in turn, then returns ``value``."""

    def __init__(self, *errors: Exception, value: object = "ok") -> None:
        self.errors = list(errors)
        self.value = value
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.value


class Always:
    """A broker call that always fails, numbering its failures in the body."""

    def __init__(self, status: int = 503) -> None:
        self.status = status
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        raise api_error(self.status, alpaca_json(50000000, f"failure {self.calls}"))


# -- classify: APIError ------------------------------------------------------------


class TestClassifyRateLimited:
    def test_retry_after_seconds(self) -> None:
        error = get(api_error(429, alpaca_json(42910000, "rate limit"), {"Retry-After": "2"}))
        assert isinstance(error, RateLimited)
        assert isinstance(error, BrokerTransient)
        assert error.retry_after == 2.0
        assert error.broker_code == "42910000"
        assert "429" in str(error)

    def test_retry_after_fractional_and_negative(self) -> None:
        assert cast(RateLimited, get(api_error(429, "", {"Retry-After": "1.5"}))).retry_after == 1.5
        assert cast(RateLimited, get(api_error(429, "", {"Retry-After": "-4"}))).retry_after == 0.0

    def test_retry_after_http_date(self) -> None:
        when = format_datetime(NOW + timedelta(seconds=7), usegmt=True)
        error = get(api_error(429, "", {"Retry-After": when}))
        assert isinstance(error, RateLimited)
        assert error.retry_after == pytest.approx(7.0)

    def test_retry_after_http_date_in_the_past_is_zero(self) -> None:
        when = format_datetime(NOW - timedelta(seconds=30), usegmt=True)
        error = get(api_error(429, "", {"Retry-After": when}))
        assert cast(RateLimited, error).retry_after == 0.0

    @pytest.mark.parametrize(
        "header", ["Fri Jul 31 14:00:07 2026", "Fri, 31 Jul 2026 14:00:07 -0000"]
    )
    def test_retry_after_naive_http_date_never_raises(self, header: str) -> None:
        error = get(api_error(429, "", {"Retry-After": header}))
        assert isinstance(error, RateLimited)

    def test_x_ratelimit_reset_is_unix_seconds_relative_to_now(self) -> None:
        reset_at = NOW.timestamp() + 12
        error = get(api_error(429, "", {"X-RateLimit-Reset": str(int(reset_at))}))
        assert isinstance(error, RateLimited)
        assert error.retry_after == pytest.approx(12.0)
        later = NOW + timedelta(seconds=10)
        assert cast(
            RateLimited, get(api_error(429, "", {"X-RateLimit-Reset": str(int(reset_at))}), later)
        ).retry_after == pytest.approx(2.0)

    def test_retry_after_wins_over_x_ratelimit_reset(self) -> None:
        headers = {"Retry-After": "3", "X-RateLimit-Reset": str(int(NOW.timestamp() + 40))}
        assert cast(RateLimited, get(api_error(429, "", headers))).retry_after == 3.0

    @pytest.mark.parametrize(
        "headers",
        [{}, {"Retry-After": "soon"}, {"X-RateLimit-Reset": "whenever"}, {"Retry-After": ""}],
    )
    def test_no_usable_header_gives_none(self, headers: dict[str, str]) -> None:
        error = get(api_error(429, "Too Many Requests", headers))
        assert isinstance(error, RateLimited)
        assert error.retry_after is None

    def test_429_on_order_submission_is_still_rate_limited(self) -> None:
        # A 429 is refused before processing: safe to repeat even for a POST.
        assert isinstance(post(api_error(429, "", {"Retry-After": "1"})), RateLimited)


SERVER_BODIES: dict[str, str | bytes] = {
    "json": alpaca_json(50010000, "internal server error"),
    "html": HTML_502,
    "empty": "",
    "garbage-bytes": b"\xff\xfe\x00\x01not json",
}


class TestClassifyServerErrors:
    def test_alpaca_py_own_code_property_raises_on_non_json(self) -> None:
        error = api_error(502, HTML_502)
        with pytest.raises(json.JSONDecodeError):
            _ = error.code
        with pytest.raises(json.JSONDecodeError):
            _ = api_error(503, "").message
        # ... and classify copes with both.
        assert isinstance(get(error), BrokerTransient)
        assert isinstance(get(api_error(503, "")), BrokerTransient)

    @pytest.mark.parametrize("status", [500, 502, 503, 504])
    @pytest.mark.parametrize("body", list(SERVER_BODIES), ids=list(SERVER_BODIES))
    def test_idempotent_is_transient(self, status: int, body: str) -> None:
        error = get(api_error(status, SERVER_BODIES[body]))
        assert type(error) is BrokerTransient
        assert f"HTTP {status}" in str(error)
        assert str(error).startswith("GET /v2/account")

    @pytest.mark.parametrize("status", [500, 502, 503, 504])
    @pytest.mark.parametrize("body", list(SERVER_BODIES), ids=list(SERVER_BODIES))
    def test_order_submission_is_unknown(self, status: int, body: str) -> None:
        error = post(api_error(status, SERVER_BODIES[body]))
        assert type(error) is BrokerUnknown
        assert f"HTTP {status}" in str(error)
        assert "c-1" in str(error)

    def test_json_body_gives_broker_code_and_message(self) -> None:
        error = get(api_error(500, SERVER_BODIES["json"]))
        assert error.broker_code == "50010000"
        assert str(error) == "GET /v2/account: HTTP 500: internal server error"

    def test_html_body_is_collapsed_and_truncated(self) -> None:
        error = get(api_error(502, HTML_502))
        message = str(error)
        assert error.broker_code is None
        assert "502 Bad Gateway" in message
        assert "\n" not in message
        assert "\r" not in message
        assert len(message) <= len("GET /v2/account: HTTP 502: ") + MESSAGE_LIMIT
        assert len(HTML_502) > 3 * MESSAGE_LIMIT

    def test_long_json_message_is_truncated(self) -> None:
        error = get(api_error(500, alpaca_json(1, "x" * 5000)))
        assert len(str(error)) <= len("GET /v2/account: HTTP 500: ") + MESSAGE_LIMIT

    def test_empty_body_says_so(self) -> None:
        assert "(empty body)" in str(get(api_error(503, "")))

    @pytest.mark.parametrize("body", ["[1, 2]", "null", "42", '{"code": 1}', '"text"'])
    def test_odd_json_bodies_never_raise(self, body: str) -> None:
        error = get(api_error(503, body))
        assert type(error) is BrokerTransient
        assert str(error)


class TestClassifyClientErrors:
    def test_401_is_auth(self) -> None:
        error = get(api_error(401, '{"message": "unauthorized."}'))
        assert isinstance(error, BrokerAuthError)
        assert isinstance(error, BrokerRejected)
        assert "401" in str(error)

    def test_401_with_html_body_is_auth(self) -> None:
        assert isinstance(get(api_error(401, "<html>401</html>")), BrokerAuthError)

    def test_auth_code_on_403_is_auth(self) -> None:
        error = get(api_error(403, alpaca_json(40110000, "request is not authorized")))
        assert isinstance(error, BrokerAuthError)
        assert error.broker_code == "40110000"

    @pytest.mark.parametrize(
        "message",
        ["insufficient buying power", "potential wash trade detected. use complex orders"],
    )
    def test_403_is_rejected_with_code_and_message(self, message: str) -> None:
        error = post(api_error(403, alpaca_json(40310000, message)))
        assert type(error) is BrokerRejected
        assert error.broker_code == "40310000"
        assert message in str(error)
        assert "HTTP 403" in str(error)

    def test_422_duplicate_client_order_id(self) -> None:
        error = post(api_error(422, alpaca_json(40010001, "client_order_id must be unique")))
        assert isinstance(error, DuplicateOrder)
        assert error.broker_code == "40010001"
        assert "client_order_id must be unique" in str(error)

    def test_other_422_is_rejected(self) -> None:
        error = post(api_error(422, alpaca_json(40010001, "qty must be > 0")))
        assert type(error) is BrokerRejected
        assert error.broker_code == "40010001"

    def test_422_not_cancelable(self) -> None:
        error = get(api_error(422, alpaca_json(42210000, "order is not cancelable")))
        assert type(error) is BrokerRejected
        assert error.broker_code == "42210000"

    def test_404_is_not_found(self) -> None:
        error = get(api_error(404, alpaca_json(40410000, "order not found")))
        assert isinstance(error, NotFound)
        assert isinstance(error, BrokerRejected)
        assert error.broker_code == "40410000"

    def test_404_html_is_not_found(self) -> None:
        assert isinstance(get(api_error(404, "<html>Not Found</html>")), NotFound)

    def test_broker_errors_pass_through(self) -> None:
        original = BrokerRejected("already typed", broker_code="x")
        assert get(original) is original


# -- classify: network and malformed responses ---------------------------------------


class TestClassifyNetwork:
    def test_connect_timeout_is_transient_even_for_post(self) -> None:
        error = post(requests.ConnectTimeout("connect timed out"))
        assert type(error) is BrokerTransient
        assert error.broker_code == "connect_timeout"

    def test_read_timeout(self) -> None:
        assert type(get(requests.ReadTimeout("read timed out"))) is BrokerTransient
        error = post(requests.ReadTimeout("read timed out"))
        assert type(error) is BrokerUnknown
        assert error.broker_code == "read_timeout"

    def test_refused_connection_was_never_sent(self) -> None:
        error = post(never_sent())
        assert type(error) is BrokerTransient
        assert error.broker_code == "connect_error"

    def test_name_resolution_failure_was_never_sent(self) -> None:
        reason = urllib3.exceptions.NameResolutionError(
            "paper-api.alpaca.markets", cast(Any, None), socket.gaierror(-2, "Name unknown")
        )
        error = requests.ConnectionError(
            urllib3.exceptions.MaxRetryError(cast(Any, None), "/", reason)
        )
        assert type(post(error)) is BrokerTransient

    def test_reset_may_have_been_sent(self) -> None:
        assert type(get(reset())) is BrokerTransient
        error = post(reset())
        assert type(error) is BrokerUnknown
        assert error.broker_code == "reset"

    def test_bare_connection_error_may_have_been_sent(self) -> None:
        assert type(post(requests.ConnectionError())) is BrokerUnknown

    def test_other_request_exception(self) -> None:
        assert type(get(requests.exceptions.ChunkedEncodingError("eof"))) is BrokerTransient
        assert type(post(requests.exceptions.ChunkedEncodingError("eof"))) is BrokerUnknown

    @pytest.mark.parametrize(
        "make",
        [
            lambda: ValueError("bad"),
            validation_error,
            lambda: KeyError("id"),
            lambda: TypeError("NoneType"),
            lambda: requests.exceptions.JSONDecodeError("Expecting value", "<html>", 0),
        ],
        ids=["ValueError", "ValidationError", "KeyError", "TypeError", "JSONDecodeError"],
    )
    def test_malformed_2xx(self, make: Callable[[], Exception]) -> None:
        assert type(get(make())) is BrokerTransient
        assert type(post(make())) is BrokerUnknown

    def test_anything_else(self) -> None:
        assert type(get(RuntimeError("?"))) is BrokerTransient
        assert type(post(RuntimeError("?"))) is BrokerUnknown


EVERY_FAILURE: list[Callable[[], Exception]] = [
    lambda: api_error(429, "", {"Retry-After": "2"}),
    lambda: api_error(429, ""),
    lambda: api_error(500, ""),
    lambda: api_error(502, HTML_502),
    lambda: api_error(503, SERVER_BODIES["json"]),
    lambda: api_error(504, b"\xff"),
    lambda: api_error(401, ""),
    lambda: api_error(403, alpaca_json(40310000, "insufficient buying power")),
    lambda: api_error(404, ""),
    lambda: api_error(422, alpaca_json(40010001, "client_order_id must be unique")),
    lambda: api_error(422, ""),
    lambda: api_error(409, "<html/>"),
    lambda: new_api_error("no response at all"),
    requests.ConnectTimeout,
    requests.ReadTimeout,
    never_sent,
    reset,
    requests.ConnectionError,
    requests.RequestException,
    ValueError,
    validation_error,
    KeyError,
    TypeError,
    Exception,
]


@pytest.mark.parametrize("idempotent", [True, False])
@pytest.mark.parametrize("make", EVERY_FAILURE)
def test_every_result_is_a_broker_error_with_a_message(
    make: Callable[[], Exception], idempotent: bool
) -> None:
    error = classify(make(), what="X", idempotent=idempotent, now=NOW)
    assert isinstance(error, BrokerError)
    assert str(error).strip()
    assert error.message
    assert error.code.startswith("BROKER_")


# -- Transport.call --------------------------------------------------------------------


def transport(
    clock: ManualClock, deadline: float | None = None, seed: int = 7, **policy: Any
) -> Transport:
    return Transport(clock, RetryPolicy(**policy), deadline=deadline, rng=random.Random(seed))


class TestRetries:
    def test_success_first_time_does_not_wait(self, clock: ManualClock) -> None:
        t = transport(clock)
        fn = Flaky(value={"id": 1})
        assert t.call(fn, what="GET") == {"id": 1}
        assert fn.calls == 1
        assert clock.waits == []
        assert t.retries == 0

    def test_transient_is_retried_until_success(self, clock: ManualClock) -> None:
        t = transport(clock)
        fn = Flaky(api_error(503, HTML_502), requests.ReadTimeout(), value=42)
        assert t.call(fn, what="GET /v2/account") == 42
        assert fn.calls == 3
        assert t.retries == 2
        assert len(clock.waits) == 2
        assert t.breaker.consecutive == 0

    def test_stops_after_max_attempts_and_reraises_the_last_error(self, clock: ManualClock) -> None:
        t = transport(clock, max_attempts=4)
        fn = Always()
        with pytest.raises(BrokerTransient, match="failure 4") as raised:
            t.call(fn, what="GET")
        assert type(raised.value) is BrokerTransient
        assert isinstance(raised.value.__cause__, APIError)
        assert fn.calls == 4
        assert t.retries == 3
        assert len(clock.waits) == 3

    def test_one_attempt_means_no_retry(self, clock: ManualClock) -> None:
        t = transport(clock, max_attempts=1)
        fn = Always()
        with pytest.raises(BrokerTransient):
            t.call(fn, what="GET")
        assert fn.calls == 1
        assert clock.waits == []

    @pytest.mark.parametrize(
        ("error", "idempotent", "expected"),
        [
            (
                api_error(403, alpaca_json(40310000, "insufficient buying power")),
                False,
                BrokerRejected,
            ),
            (
                api_error(422, alpaca_json(40010001, "client_order_id must be unique")),
                False,
                DuplicateOrder,
            ),
            (api_error(401, ""), True, BrokerAuthError),
            (api_error(404, ""), True, NotFound),
            (api_error(503, ""), False, BrokerUnknown),
            (requests.ReadTimeout(), False, BrokerUnknown),
            (reset(), False, BrokerUnknown),
        ],
    )
    def test_not_retried(
        self, clock: ManualClock, error: Exception, idempotent: bool, expected: type[BrokerError]
    ) -> None:
        t = transport(clock)
        fn = Flaky(error)
        with pytest.raises(expected):
            t.call(fn, what="X", idempotent=idempotent)
        assert fn.calls == 1
        assert clock.waits == []
        assert t.retries == 0

    def test_post_connect_failures_are_retried(self, clock: ManualClock) -> None:
        t = transport(clock)
        fn = Flaky(requests.ConnectTimeout(), never_sent(), value="order")
        assert t.call(fn, what="POST", idempotent=False) == "order"
        assert fn.calls == 3

    def test_backoff_grows_exponentially_with_seeded_jitter(self, clock: ManualClock) -> None:
        t = transport(clock, seed=11, max_attempts=9, max_backoff_seconds=2.0, breaker_threshold=50)
        with pytest.raises(BrokerTransient):
            t.call(Always(), what="GET")
        bases = [0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0, 2.0]
        twin = random.Random(11)
        expected = [base + twin.uniform(0, 0.25) for base in bases]
        assert clock.waits == pytest.approx(expected)
        for wait, base in zip(clock.waits, bases, strict=True):
            assert base <= wait <= base + 0.25
        assert clock.monotonic() == pytest.approx(sum(expected))

    def test_backoff_without_jitter_is_exact(self, clock: ManualClock) -> None:
        t = transport(clock, max_attempts=6, jitter_seconds=0, max_backoff_seconds=8)
        with pytest.raises(BrokerTransient):
            t.call(Always(), what="GET")
        assert clock.waits == [0.25, 0.5, 1.0, 2.0, 4.0]

    def test_backoff_is_capped(self, clock: ManualClock) -> None:
        t = transport(
            clock,
            max_attempts=12,
            max_backoff_seconds=1.0,
            jitter_seconds=0.5,
            breaker_threshold=50,
        )
        with pytest.raises(BrokerTransient):
            t.call(Always(), what="GET")
        assert len(clock.waits) == 11
        assert max(clock.waits) <= 1.5
        assert all(1.0 <= w <= 1.5 for w in clock.waits[2:])

    def test_same_seed_same_waits(self) -> None:
        waits = []
        for _ in range(2):
            c = ManualClock(START)
            with pytest.raises(BrokerTransient):
                transport(c, seed=3).call(Always(), what="GET")
            waits.append(c.waits)
        assert waits[0] == waits[1]

    def test_rate_limited_waits_for_retry_after(self, clock: ManualClock) -> None:
        t = transport(clock)
        fn = Flaky(
            api_error(429, alpaca_json(42910000, "rate limit"), {"Retry-After": "3"}), value=1
        )
        assert t.call(fn, what="GET") == 1
        assert fn.calls == 2
        assert len(clock.waits) == 1
        assert 3.0 <= clock.waits[0] < 3.1

    def test_rate_limited_with_x_ratelimit_reset(self, clock: ManualClock) -> None:
        t = transport(clock)
        reset_at = str(int(clock.now().timestamp()) + 5)
        fn = Flaky(api_error(429, "", {"X-RateLimit-Reset": reset_at}), value=1)
        assert t.call(fn, what="GET") == 1
        assert 5.0 <= clock.waits[0] < 5.1

    def test_rate_limited_without_header_backs_off(self, clock: ManualClock) -> None:
        t = transport(clock)
        assert t.call(Flaky(api_error(429, ""), value=1), what="GET") == 1
        assert 0.25 <= clock.waits[0] <= 0.5

    def test_rate_limited_for_too_long_fails_at_once(self, clock: ManualClock) -> None:
        t = transport(clock, max_retry_after_seconds=30)
        fn = Flaky(api_error(429, "", {"Retry-After": "31"}), value=1)
        with pytest.raises(RateLimited) as raised:
            t.call(fn, what="GET")
        assert raised.value.retry_after == 31.0
        assert fn.calls == 1
        assert clock.waits == []
        assert t.retries == 0

    def test_rate_limited_exactly_at_the_limit_is_waited_for(self, clock: ManualClock) -> None:
        t = transport(clock, max_retry_after_seconds=30)
        assert t.call(Flaky(api_error(429, "", {"Retry-After": "30"}), value=1), what="GET") == 1
        assert 30.0 <= clock.waits[0] < 30.1

    @pytest.mark.parametrize("deadline", [0.1, 0.3, 0.8, 1.0, 2.0, 4.5])
    def test_never_sleeps_past_the_deadline(self, clock: ManualClock, deadline: float) -> None:
        t = transport(clock, deadline=deadline, max_attempts=20, breaker_threshold=50)
        fn = Always()
        with pytest.raises(BrokerTransient) as raised:
            t.call(fn, what="GET")
        assert clock.monotonic() <= deadline
        assert f"failure {fn.calls}" in str(raised.value)
        assert len(clock.waits) == fn.calls - 1
        # It gave up because the next wait would have crossed the deadline.
        assert fn.calls < 20

    def test_deadline_already_too_close_means_one_attempt(self, clock: ManualClock) -> None:
        t = transport(clock, deadline=0.2)
        fn = Always()
        with pytest.raises(BrokerTransient, match="failure 1"):
            t.call(fn, what="GET")
        assert fn.calls == 1
        assert clock.waits == []

    def test_deadline_stops_a_long_retry_after(self, clock: ManualClock) -> None:
        clock.advance(100.0)
        t = transport(clock, deadline=102.0)
        fn = Flaky(api_error(429, "", {"Retry-After": "5"}), value=1)
        with pytest.raises(RateLimited):
            t.call(fn, what="GET")
        assert fn.calls == 1
        assert clock.monotonic() == 100.0

    def test_far_deadline_changes_nothing(self, clock: ManualClock) -> None:
        t = transport(clock, deadline=1_000.0)
        fn = Always()
        with pytest.raises(BrokerTransient):
            t.call(fn, what="GET")
        assert fn.calls == 5

    def test_retries_counter_accumulates_across_calls(self, clock: ManualClock) -> None:
        t = transport(clock)
        t.call(Flaky(api_error(503, ""), value=1), what="a")
        t.call(Flaky(api_error(503, ""), api_error(502, ""), value=1), what="b")
        assert t.retries == 3

    def test_unclassified_exceptions_propagate_untouched(self, clock: ManualClock) -> None:
        t = transport(clock)
        fn = Flaky(RuntimeError("bug"))
        with pytest.raises(RuntimeError, match="bug"):
            t.call(fn, what="GET")
        assert fn.calls == 1


# -- circuit breaker -------------------------------------------------------------------


class TestCircuitBreaker:
    def test_opens_after_threshold_failures_across_calls(self, clock: ManualClock) -> None:
        t = transport(clock, breaker_threshold=3, max_attempts=1)
        fn = Always()
        for _ in range(3):
            with pytest.raises(BrokerTransient) as raised:
                t.call(fn, what="GET")
            assert not isinstance(raised.value, CircuitOpen)
        assert fn.calls == 3
        other = Flaky(value=1)
        with pytest.raises(CircuitOpen, match="3 transient failures"):
            t.call(other, what="GET")
        assert other.calls == 0
        assert fn.calls == 3
        assert clock.waits == []

    def test_open_breaker_is_not_retried_and_stays_open(self, clock: ManualClock) -> None:
        t = transport(clock, breaker_threshold=2, max_attempts=1)
        for _ in range(2):
            with pytest.raises(BrokerTransient):
                t.call(Always(), what="GET")
        fn = Flaky(value=1)
        for _ in range(3):
            with pytest.raises(CircuitOpen):
                t.call(fn, what="GET")
        assert fn.calls == 0
        assert clock.waits == []
        assert t.retries == 0

    def test_default_threshold_with_retries(self, clock: ManualClock) -> None:
        t = transport(clock)  # 5 attempts a call, opens after 10 failures
        fn = Always()
        for _ in range(2):
            with pytest.raises(BrokerTransient):
                t.call(fn, what="GET")
        assert fn.calls == 10
        with pytest.raises(CircuitOpen):
            t.call(fn, what="GET")
        assert fn.calls == 10

    def test_opening_mid_call_stops_the_retries(self, clock: ManualClock) -> None:
        t = transport(clock, breaker_threshold=3, max_attempts=5)
        fn = Always()
        with pytest.raises(CircuitOpen):
            t.call(fn, what="GET")
        assert fn.calls == 3

    def test_a_success_resets_the_count(self, clock: ManualClock) -> None:
        t = transport(clock, breaker_threshold=3, max_attempts=1)
        failing = Always()
        for _ in range(10):
            for _ in range(2):
                with pytest.raises(BrokerTransient):
                    t.call(failing, what="GET")
            assert t.call(Flaky(value=1), what="GET") == 1
            assert t.breaker.consecutive == 0
        assert failing.calls == 20

    def test_rejections_do_not_count(self, clock: ManualClock) -> None:
        t = transport(clock, breaker_threshold=3, max_attempts=1)
        for _ in range(2):
            with pytest.raises(BrokerTransient):
                t.call(Always(), what="GET")
        refused = Flaky(*[api_error(403, alpaca_json(40310000, "insufficient buying power"))] * 5)
        for _ in range(5):
            with pytest.raises(BrokerRejected):
                t.call(refused, what="POST", idempotent=False)
        assert refused.calls == 5
        assert t.breaker.consecutive == 2
        assert t.call(Flaky(value=1), what="GET") == 1

    def test_unknown_outcomes_count(self, clock: ManualClock) -> None:
        t = transport(clock, breaker_threshold=2, max_attempts=1)
        for _ in range(2):
            with pytest.raises(BrokerUnknown):
                t.call(Always(), what="POST", idempotent=False)
        with pytest.raises(CircuitOpen):
            t.call(Flaky(value=1), what="GET")

    def test_breaker_unit(self) -> None:
        breaker = CircuitBreaker(2)
        breaker.check()
        breaker.record_failure(BrokerTransient("a"))
        breaker.check()
        breaker.record_success()
        breaker.record_failure(BrokerTransient("b"))
        breaker.check()
        breaker.record_failure(BrokerTransient("c"))
        with pytest.raises(CircuitOpen, match="last: c"):
            breaker.check()
        breaker.record_success()
        with pytest.raises(CircuitOpen):
            breaker.check()


# -- request budget --------------------------------------------------------------------


def max_in_window(times: list[float], window: float) -> int:
    """The most acquisitions in any half-open window (t - window, t]."""
    most, start = 0, 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most


class TestRequestBudget:
    def test_burst_of_450(self, clock: ManualClock) -> None:
        budget = RequestBudget(clock, limit=200)
        times = []
        for _ in range(450):
            budget.acquire()
            times.append(clock.monotonic())
        assert budget.count == 450
        assert max_in_window(times, 60.0) <= 200
        # The first 200 go at once; each later 200 waits for the window to roll.
        assert times[:200] == [0.0] * 200
        # Waits carry a microsecond of margin against float rounding (WINDOW_EPSILON).
        assert times[200:400] == pytest.approx([60.0] * 200, abs=1e-5)
        assert times[400:] == pytest.approx([120.0] * 50, abs=1e-5)
        assert clock.waits == pytest.approx([60.0, 60.0], abs=1e-5)

    @staticmethod
    def irregular(clock: ManualClock, seed: int) -> list[float]:
        """450 acquisitions asked for at a random pace (0-0.3 s apart): faster than
        200 a minute, so some must wait. Checks each wait as it happens."""
        rng = random.Random(seed)
        budget = RequestBudget(clock, limit=200)
        times: list[float] = []
        asked: list[float] = []
        for i in range(450):
            clock.advance(rng.uniform(0.0, 0.3))
            asked.append(clock.monotonic())
            waits_before = len(clock.waits)
            budget.acquire()
            times.append(clock.monotonic())
            waited = len(clock.waits) > waits_before
            room = i < 200 or asked[i] - times[i - 200] >= 60.0 - 1e-9
            # It waits only when the window is full, and then only as long as needed.
            assert waited == (not room)
            expected = asked[i] if room else times[i - 200] + 60.0
            assert times[i] == pytest.approx(expected, abs=1e-5)
        assert clock.waits, "the pace was meant to need some waiting"
        assert budget.count == 450
        return times

    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_450_at_irregular_pace_up_to_rounding(self, clock: ManualClock, seed: int) -> None:
        times = self.irregular(clock, seed)
        assert max_in_window(times, 60.0 - 1e-9) <= 200

    @pytest.mark.parametrize("seed", [1, 2, 3])
    def test_450_at_irregular_pace(self, clock: ManualClock, seed: int) -> None:
        times = self.irregular(clock, seed)
        assert max_in_window(times, 60.0) <= 200

    def test_rounding_minimal_case(self, clock: ManualClock) -> None:
        budget = RequestBudget(clock, limit=1)
        times = []
        for step in (0.4, 4.4):
            clock.advance(step)
            budget.acquire()
            times.append(clock.monotonic())
        assert len(clock.waits) == 1
        assert times[1] - times[0] >= 60.0  # was 59.99999999999999 before the margin

    def test_slow_pace_never_waits(self, clock: ManualClock) -> None:
        budget = RequestBudget(clock, limit=200)
        for _ in range(450):
            budget.acquire()
            clock.advance(0.31)
        assert clock.waits == []

    def test_small_limit(self, clock: ManualClock) -> None:
        budget = RequestBudget(clock, limit=2, window=10.0)
        times = []
        for step in [0.0, 1.0, 1.0, 0.0, 20.0, 0.0, 0.0]:
            clock.advance(step)
            budget.acquire()
            times.append(clock.monotonic())
        assert times == pytest.approx([0.0, 1.0, 10.0, 11.0, 31.0, 31.0, 41.0], abs=1e-5)
        assert max_in_window(times, 10.0) <= 2


# -- hardened session --------------------------------------------------------------------


class TestHardenedSession:
    def test_sets_connect_and_read_timeouts_when_none_given(self, clock: ManualClock) -> None:
        session = HardenedSession(RequestBudget(clock, 200), (3.05, 10.0))
        adapter = stubbed(session, lambda: response(200, "{}"))
        session.request("GET", f"{URL}/v2/account")
        session.get(f"{URL}/v2/account", timeout=None)
        assert [timeout for _, timeout in adapter.calls] == [(3.05, 10.0), (3.05, 10.0)]

    def test_keeps_an_explicit_timeout(self, clock: ManualClock) -> None:
        session = HardenedSession(RequestBudget(clock, 200), (3.05, 10.0))
        adapter = stubbed(session, lambda: response(200, "{}"))
        session.request("GET", f"{URL}/v2/clock", timeout=1.5)
        session.post(f"{URL}/v2/orders", json={}, timeout=(1.0, 2.0))
        assert [timeout for _, timeout in adapter.calls] == [1.5, (1.0, 2.0)]

    def test_counts_every_request_in_the_budget(self, clock: ManualClock) -> None:
        budget = RequestBudget(clock, 3)
        session = HardenedSession(budget, (1.0, 1.0))
        adapter = stubbed(session, lambda: response(200, "{}"))
        for _ in range(5):
            session.get(f"{URL}/v2/account")
        assert budget.count == 5
        assert len(adapter.calls) == 5
        assert clock.waits == pytest.approx([60.0], abs=1e-5)

    def test_transport_session_shares_the_budget(self, clock: ManualClock) -> None:
        t = transport(clock, connect_timeout_seconds=2.0, read_timeout_seconds=7.0)
        session = t.session()
        adapter = stubbed(session, lambda: response(200, "{}"))
        session.get(f"{URL}/v2/account")
        t.session().budget.acquire()
        assert t.requests_sent == 2
        assert adapter.calls[0][1] == (2.0, 7.0)


# -- harden and alpaca-py's RESTClient -----------------------------------------------------


def trading_client() -> RESTClient:
    """The adapters' trading client (alpaca-py's RESTClient on the trading URL)."""
    return rest_client(URL, "k", "s")


class TestHarden:
    def test_pin_alpaca_py_private_attributes(self) -> None:
        client = trading_client()
        assert isinstance(client, RESTClient)
        assert client._retry == 3
        assert client._retry_codes == [429, 504]
        assert isinstance(client._session, requests.Session)
        assert hasattr(client, "_retry_wait")

    def test_unhardened_client_retries_429_by_itself(self) -> None:
        """What harden exists to prevent (waits zeroed so the test does not sleep)."""
        client = trading_client()
        client._retry_wait = 0
        adapter = stubbed(client._session, lambda: response(429, "{}"))
        with pytest.raises(APIError):
            client.get("/account")
        assert len(adapter.calls) == 4

    def test_pin_no_retry_when_retry_is_zero(self) -> None:
        client = trading_client()
        client._retry = 0  # _retry_codes left at [429, 504]: _retry alone must suffice
        client._retry_wait = 0
        adapter = stubbed(client._session, sequence(response(429, "{}"), response(200, "{}")))
        with pytest.raises(APIError) as raised:
            client.get("/account")
        assert len(adapter.calls) == 1
        assert raised.value.status_code == 429

    def test_harden_replaces_retries_and_session(self, clock: ManualClock) -> None:
        client = trading_client()
        session = HardenedSession(RequestBudget(clock, 200), (3.05, 10.0))
        harden(client, session)
        assert client._retry == 0
        assert client._retry_codes == []
        assert client._session is session

    def test_hardened_client_makes_exactly_one_request_on_429(self, clock: ManualClock) -> None:
        client = trading_client()
        t = transport(clock)
        session = t.session()
        harden(client, session)
        client._retry_wait = 0
        adapter = stubbed(session, sequence(response(429, "{}"), response(200, "{}")))
        with pytest.raises(APIError) as raised:
            client.get("/account")
        assert raised.value.status_code == 429
        assert len(adapter.calls) == 1
        assert t.requests_sent == 1
        assert adapter.calls[0][1] == (3.05, 10.0)

    def test_hardened_client_504_is_not_retried(self, clock: ManualClock) -> None:
        client = trading_client()
        harden(client, HardenedSession(RequestBudget(clock, 200), (1.0, 1.0)))
        client._retry_wait = 0
        adapter = stubbed(client._session, lambda: response(504, "<html>504</html>"))
        with pytest.raises(APIError):
            client.get("/account")
        assert len(adapter.calls) == 1

    @pytest.mark.parametrize("target", [object(), requests.Session()])
    def test_harden_refuses_something_else(self, clock: ManualClock, target: object) -> None:
        with pytest.raises(TypeError, match="RESTClient changed"):
            harden(cast(Any, target), HardenedSession(RequestBudget(clock, 200), (1.0, 1.0)))


class TestEndToEnd:
    """Transport + hardened alpaca-py client + stub adapter: the whole request path."""

    def test_read_survives_a_502_page_and_a_429(self, clock: ManualClock) -> None:
        client = trading_client()
        t = transport(clock)
        harden(client, t.session())
        account = {"id": "a", "status": "ACTIVE", "cash": "100.5"}
        adapter = stubbed(
            client._session,
            sequence(
                response(502, HTML_502),
                response(429, "", {"Retry-After": "2"}),
                response(200, json.dumps(account)),
            ),
        )
        assert t.call(partial(client.get, "/account"), what="GET /v2/account") == account
        assert len(adapter.calls) == 3
        assert t.requests_sent == 3
        assert t.retries == 2
        assert 0.25 <= clock.waits[0] <= 0.5
        assert 2.0 <= clock.waits[1] < 2.1

    def test_read_with_html_200_is_retried(self, clock: ManualClock) -> None:
        client = trading_client()
        t = transport(clock)
        harden(client, t.session())
        adapter = stubbed(
            client._session,
            sequence(response(200, "<html>maintenance</html>"), response(200, '{"id": "a"}')),
        )
        assert t.call(partial(client.get, "/account"), what="GET /v2/account") == {"id": "a"}
        assert len(adapter.calls) == 2

    @pytest.mark.parametrize("status", [502, 503, 504])
    def test_order_submission_on_5xx_is_unknown_after_one_request(
        self, clock: ManualClock, status: int
    ) -> None:
        client = trading_client()
        t = transport(clock)
        harden(client, t.session())
        adapter = stubbed(client._session, lambda: response(status, HTML_502))
        order = {
            "symbol": "SPY",
            "qty": "1",
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
            "client_order_id": "c-1",
        }
        with pytest.raises(BrokerUnknown, match=f"HTTP {status}"):
            t.call(
                lambda: client.post("/orders", order), what="POST /v2/orders c-1", idempotent=False
            )
        assert len(adapter.calls) == 1
        assert adapter.calls[0][0].method == "POST"
        assert clock.waits == []

    def test_auth_failure_is_not_retried(self, clock: ManualClock) -> None:
        client = trading_client()
        t = transport(clock)
        harden(client, t.session())
        adapter = stubbed(
            client._session,
            lambda: response(403, alpaca_json(40110000, "request is not authorized")),
        )
        with pytest.raises(BrokerAuthError):
            t.call(partial(client.get, "/account"), what="GET /v2/account")
        assert len(adapter.calls) == 1
