"""Settings of the Alpaca adapters, kept apart from them so that reading a config does
not import alpaca-py (over a second of imports a simulated run never needs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from alchemiser.domain.values import Frozen

PAPER_TRADING_URL = "https://paper-api.alpaca.markets"
LIVE_TRADING_URL = "https://api.alpaca.markets"
DATA_URL = "https://data.alpaca.markets"


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
    secret_id: str = Field(min_length=1, max_length=512)
    """Secrets Manager id (name or ARN) of ``{"api_key_id", "api_secret_key", "endpoint"}``."""
    account_number: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9-]+$", repr=False
    )
    """The Alpaca account these keys must belong to: the broker checks it against
    ``GET /v2/account`` before anything else. An identifier, kept out of reprs (and so
    out of logs); two accounts of one config may not pin the same number."""
    trading_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(:\d+)?/?$")
    """Default: Alpaca's paper URL in paper mode, its live URL in live mode."""
    data_url: str = Field(default=DATA_URL, pattern=r"^https?://[^\s/]+(:\d+)?/?$")
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
