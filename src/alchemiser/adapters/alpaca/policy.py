"""Settings of the Alpaca adapters, kept apart from them so that reading a config does
not import alpaca-py (over a second of imports a simulated run never needs)."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, field_validator

from alchemiser.domain.values import Frozen

PAPER_TRADING_HOST = "paper-api.alpaca.markets"
LIVE_TRADING_HOST = "api.alpaca.markets"
DATA_HOST = "data.alpaca.markets"
PAPER_TRADING_URL = f"https://{PAPER_TRADING_HOST}"
LIVE_TRADING_URL = f"https://{LIVE_TRADING_HOST}"
DATA_URL = f"https://{DATA_HOST}"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
"""The local exchange's hosts: plain http allowed, and only in paper mode."""
DEFAULT_PORTS = {"https": 443, "http": 80}


def normalise_url(url: str) -> str:
    """``scheme://host[:port]``: scheme and host lower-cased, the scheme's default port
    and a trailing slash dropped. Raises ValueError (never echoing the URL, which may
    hold a password) unless the URL is https, or http to a loopback host, with no
    user-info, path (alpaca-py appends ``/v2`` itself), query or fragment."""
    if not url.isascii() or not url.isprintable() or any(c.isspace() for c in url):
        raise ValueError("URL must be printable ASCII without spaces")
    if "?" in url or "#" in url:
        raise ValueError("URL may not have a query or a fragment")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("URL must start with https:// (http:// for a loopback host only)")
    if "@" in parts.netloc:
        raise ValueError("URL may not hold user-info (user:password@)")
    if parts.path not in ("", "/"):
        raise ValueError("URL may not have a path: alpaca-py appends /v2 itself")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError("URL has no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("URL's port must be a number from 1 to 65535") from None
    if port == 0:
        raise ValueError("URL's port must be a number from 1 to 65535")
    if scheme == "http" and host not in LOOPBACK_HOSTS:
        raise ValueError(
            "URL must use https unless its host is loopback (127.0.0.1, ::1, localhost)"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return f"{scheme}://{netloc}"


def url_host(url: str) -> str:
    """The host of a URL :func:`normalise_url` accepts (brackets of IPv6 removed)."""
    return (urlsplit(url).hostname or "").lower()


def is_canonical(url: str, host: str) -> bool:
    """Whether ``url`` is exactly ``https://host`` once normalised (port 443 only)."""
    try:
        return normalise_url(url) == f"https://{host}"
    except ValueError:
        return False


def mode_url_refusal(live: bool, trading_url: str, data_url: str) -> tuple[str, str] | None:
    """``(field, message)`` when a URL does not fit the mode, else None. Live mode:
    ``https://api.alpaca.markets`` and ``https://data.alpaca.markets`` only. Paper mode:
    ``https://paper-api.alpaca.markets`` (or a loopback host) to trade, and
    ``https://data.alpaca.markets`` (or a loopback host) for data."""
    if live:
        if not is_canonical(trading_url, LIVE_TRADING_HOST):
            return "alpaca.trading_url", f"mode 'live' trades at {LIVE_TRADING_URL} only: refusing"
        if not is_canonical(data_url, DATA_HOST):
            return "alpaca.data_url", f"mode 'live' reads data from {DATA_URL} only: refusing"
        return None
    for field, url, host in (
        ("alpaca.trading_url", trading_url, PAPER_TRADING_HOST),
        ("alpaca.data_url", data_url, DATA_HOST),
    ):
        if is_canonical(url, host):
            continue
        try:
            loopback = url_host(normalise_url(url)) in LOOPBACK_HOSTS
        except ValueError:
            loopback = False
        if not loopback:
            return field, (
                f"mode 'paper' allows https://{host} or a loopback host "
                "(127.0.0.1, ::1, localhost) only: refusing"
            )
    return None


class RetryPolicy(Frozen):
    max_attempts: int = Field(default=5, ge=1, le=20)
    """Attempts per request, the first included."""
    initial_backoff_seconds: float = Field(default=0.25, gt=0, le=30)
    max_backoff_seconds: float = Field(default=8.0, gt=0, le=120)
    jitter_seconds: float = Field(default=0.25, ge=0, le=30)
    max_retry_after_seconds: float = Field(default=60.0, gt=0, le=600)
    """A Retry-After longer than this is not waited for: the request fails."""
    breaker_threshold: int = Field(default=10, ge=1, le=1000)
    """Consecutive transient failures (any request) that open the circuit breaker."""
    connect_timeout_seconds: float = Field(default=3.05, gt=0, le=60)
    read_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    max_requests_per_minute: int = Field(default=200, ge=1, le=10_000)
    """Alpaca allows 200 a minute per account; requests wait rather than exceed it."""


class AlpacaConfig(Frozen):
    model_config = ConfigDict(hide_input_in_errors=True)  # a URL may hold a password

    secret_id: str = Field(min_length=1, max_length=512)
    """Secrets Manager id (name or ARN) of ``{"api_key_id", "api_secret_key", "endpoint"}``."""
    account_number: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$", repr=False
    )
    """The Alpaca account these keys must belong to: the broker checks it against
    ``GET /v2/account`` before anything else. An identifier, kept out of reprs (and so
    out of logs); two accounts of one config may not pin the same number."""
    trading_url: str | None = Field(default=None, max_length=2048)
    """Default: Alpaca's paper URL in paper mode, its live URL in live mode. Normalised
    (:func:`normalise_url`); which hosts a mode allows is checked with the mode."""
    data_url: str = Field(default=DATA_URL, max_length=2048)
    feed: Literal["iex", "sip"] = "iex"
    """Bars feed: ``iex`` works on every account, ``sip`` needs a market-data plan."""
    secret_max_age_seconds: int = Field(default=300, ge=0, le=3600)
    history_sessions: int = Field(default=2520, ge=30, le=10_000)
    """Sessions of daily bars read per run (10 years by default): finite indicator
    windows see all they need, exponential ones have long converged."""
    max_gap_sessions: int = Field(default=3, ge=0, le=30)
    """Sessions in a row a traded symbol may miss before its bars count as broken."""
    max_latest_price_age_seconds: int = Field(default=900, ge=10, le=3600)
    """How old a latest trade may be, by our clock, when a close-window run uses it as
    today's close (15 minutes by default: a thinly traded ETF still qualifies)."""
    time_budget_seconds: float = Field(default=600, gt=0, le=3600)
    """How long a run started from the command line may take (Lambda uses its own)."""
    retry: RetryPolicy = RetryPolicy()

    @field_validator("trading_url", "data_url")
    @classmethod
    def _normalised(cls, url: str | None) -> str | None:
        return None if url is None else normalise_url(url)
