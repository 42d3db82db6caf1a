"""The close window through the Lambda handler, the real alpaca-py clients and the local
exchange: the 15:45 trigger trades on a normal day and the 12:45 one is skipped; on an
early-close day (the exchange's calendar closes 2025-12-24 at 13:00) it is the other
way round; today's latest prices stand in for today's close, and a latest price that
cannot be trusted fails the run closed."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from alchemiser.exchange import LocalExchange
from alchemiser.handlers.runtime import RunFailed
from tests.integration.aws_stack import (
    ACCOUNT,
    Output,
    Stack,
    order_posts,
    output,
    stack,
)

pytestmark = pytest.mark.integration

__all__ = ["output", "stack"]  # fixtures

NORMAL = date(2025, 12, 23)
EARLY = date(2025, 12, 24)
TRADES = "/v2/stocks/trades/latest"
BARS = "/v2/stocks/bars"


def utc(day: date, hour: int, minute: int) -> datetime:
    """New York wall time in December (EST, UTC-5) as UTC."""
    return datetime(day.year, day.month, day.day, hour + 5, minute, tzinfo=UTC)


def close_account(stack: Stack, at: datetime) -> LocalExchange:
    exchange, _ = stack.single()
    config = stack.tmp / "config.toml"
    config.write_text('trading_window = "close"\n' + config.read_text(), encoding="utf-8")
    exchange.configure(now=at)
    return exchange


def trigger(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("day", "hour", "minute"),
    [(NORMAL, 15, 45), (EARLY, 12, 45)],
    ids=["15:45-normal-day", "12:45-early-close"],
)
def test_the_trigger_15_minutes_before_the_close_trades_on_todays_prices(
    stack: Stack, output: Output, day: date, hour: int, minute: int
) -> None:
    at = utc(day, hour, minute)
    exchange = close_account(stack, at)

    result = stack.run(trigger(at), window="close")

    assert result["status"] == "completed", result["errors"]
    assert result["as_of"] == result["trading_date"] == day.isoformat()
    assert order_posts(exchange) > 0
    assert exchange.count("GET", TRADES) == 1  # one batched request for today's prices
    bars = [r for r in exchange.requests if r.path == BARS]
    assert bars  # the daily closes up to the session before
    metrics = output.metrics(output.read())
    assert metrics["RunSucceeded"] == [1.0]


@pytest.mark.parametrize(
    ("day", "hour", "minute", "why"),
    [(NORMAL, 12, 45, "other_trigger"), (EARLY, 15, 45, "market_closed")],
    ids=["12:45-normal-day", "15:45-early-close"],
)
def test_the_other_close_trigger_is_skipped_without_an_alarm(
    stack: Stack, output: Output, day: date, hour: int, minute: int, why: str
) -> None:
    at = utc(day, hour, minute)
    exchange = close_account(stack, at)

    result = stack.run(trigger(at), window="close")

    assert result["status"] == "skipped"
    assert result["skipped"] == why
    assert order_posts(exchange) == 0
    assert exchange.count("GET", TRADES) == 0
    metrics = output.metrics(output.read())
    assert metrics["RunSkipped"] == [1.0]
    assert metrics["RunFailed"] == [0.0]
    assert "RunDegraded" not in metrics


def test_an_open_trigger_for_a_close_account_is_skipped(stack: Stack, output: Output) -> None:
    at = utc(NORMAL, 9, 30)
    exchange = close_account(stack, at)
    result = stack.run(trigger(at), window="open")
    assert result["status"] == "skipped"
    assert result["skipped"] == "other_window"
    assert order_posts(exchange) == 0


def test_a_stale_latest_price_fails_the_run_closed(stack: Stack, output: Output) -> None:
    at = utc(NORMAL, 15, 45)
    exchange = close_account(stack, at)
    exchange.configure(stale_trades_seconds=3600)  # older than the 900 s allowed

    with pytest.raises(RunFailed, match="DATA_STALE"):
        stack.run(trigger(at), window="close")

    assert order_posts(exchange) == 0
    (report,) = [r for r in stack.ledger().run_on(ACCOUNT, NORMAL) if r.status.value == "failed"]
    assert report.errors[0].code == "DATA_STALE"
    assert not report.orders
