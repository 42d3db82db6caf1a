"""Typed errors: every failure the product can explain has a class and a stable code.

Only the handler boundary and the CLI catch broad exceptions; everything below raises
one of these so the run report can say exactly what went wrong.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from enum import StrEnum


class AlchemiserError(Exception):
    """Base of every error the product raises on purpose."""

    code: str = "ERROR"
    retryable: bool = False
    """True when the same request may succeed later (the run's retry is worth it)."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class ConfigError(AlchemiserError):
    """Invalid configuration or settings; ``field`` is the dotted path of the culprit.

    A message that lists several problems (each line naming its own path) passes them
    as ``fields``, first culprit first: ``field`` is then the first of them."""

    code = "CONFIG_INVALID"

    def __init__(
        self, message: str, *, field: str | None = None, fields: Sequence[str] = ()
    ) -> None:
        if fields:
            super().__init__(message)
            self.fields: tuple[str, ...] = tuple(fields)
            self.field: str | None = self.fields[0]
        else:
            super().__init__(f"{field}: {message}" if field else message)
            self.fields = (field,) if field else ()
            self.field = field


class LiveTradingRefused(ConfigError):
    """Live trading was not confirmed by all three of: the config's mode, the secret's
    endpoint and an explicit ``--live``. Raised before any broker request."""

    code = "LIVE_NOT_CONFIRMED"


class EventError(AlchemiserError):
    """A trigger event that does not match the expected schema."""

    code = "EVENT_INVALID"


class StrategyError(AlchemiserError):
    """A strategy that cannot be read or evaluated; ``location`` is file:line:col."""

    code = "STRATEGY_INVALID"

    def __init__(self, message: str, *, location: str | None = None) -> None:
        super().__init__(f"{location}: {message}" if location else message)
        self.location = location


class DataErrorKind(StrEnum):
    MISSING = "DATA_MISSING"
    STALE = "DATA_STALE"
    NON_FINITE = "DATA_NON_FINITE"
    NON_POSITIVE = "DATA_NON_POSITIVE"
    UNSUPPORTED = "DATA_UNSUPPORTED"
    MALFORMED = "DATA_MALFORMED"
    OPEN_ORDERS = "OPEN_ORDERS_PRESENT"
    SNAPSHOT_INCONSISTENT = "SNAPSHOT_INCONSISTENT"


class DataError(AlchemiserError):
    """Market or account data that cannot be trusted: missing, stale or not a number."""

    def __init__(self, message: str, *, kind: DataErrorKind) -> None:
        super().__init__(message, code=kind.value)
        self.kind = kind


class BenchmarkError(DataError):
    """The ticker a backtest is measured against has no data, or none to buy at on the
    backtest's first session."""


class RiskDenied(AlchemiserError):
    """A whole run refused by a risk rule (per-order denials live in RiskDecision)."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message, code=code)


class BrokerError(AlchemiserError):
    """Base of broker failures; ``broker_code`` is the broker's own code when it gave one."""

    code = "BROKER_ERROR"

    def __init__(self, message: str, *, broker_code: str | None = None) -> None:
        super().__init__(message)
        self.broker_code = broker_code


class DryRunRefused(BrokerError):
    """A dry run asked the broker to submit or cancel an order: refused before any
    request (the service never asks; the read-only broker makes sure)."""

    code = "DRY_RUN_REFUSED"


class BrokerTransient(BrokerError):
    """Worth retrying: rate limits, timeouts before sending, 5xx."""

    code = "BROKER_TRANSIENT"


class CircuitOpen(BrokerTransient):
    """Too many transient failures in a row: the adapter sends nothing more this run."""

    code = "BROKER_CIRCUIT_OPEN"


class BrokerRejected(BrokerError):
    """The broker refused the request; retrying the same request will not help."""

    code = "BROKER_REJECTED"


class BrokerAuthError(BrokerRejected):
    """The broker refused the credentials (401, or 403 with Alpaca's auth code): nothing
    more is sent this attempt (the Lambda runtime re-reads the secret once)."""

    code = "BROKER_AUTH"


class AccountMismatch(BrokerRejected):
    """The keys reach another account than the config's ``account_number`` pin."""

    code = "ACCOUNT_MISMATCH"


class DuplicateOrder(BrokerRejected):
    """An order with this client_order_id exists already: look it up, never resubmit."""

    code = "BROKER_DUPLICATE_ORDER"


class BrokerUnknown(BrokerError):
    """The request may or may not have taken effect (e.g. a timeout after sending)."""

    code = "BROKER_UNKNOWN"


class SecretError(AlchemiserError):
    """A secret that is missing, unreadable or malformed. Never carries the value."""

    code = "SECRET_INVALID"


class SecretUnavailable(SecretError):
    """Secrets Manager could not be reached or answered with a transient failure
    (connection refused or timed out, throttled, 5xx): nothing is wrong with the secret.
    The run fails before any broker request and is retried (``retryable``)."""

    code = "SECRET_UNAVAILABLE"
    retryable = True


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``" (did you mean `x`?)"`` naming the known name closest to ``name``, or ``""``
    when none is close: appended to an error about an unknown name."""
    close = difflib.get_close_matches(name, sorted(set(known)), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""
