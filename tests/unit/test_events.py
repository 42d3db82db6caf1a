"""Scheduler events and handler settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alchemiser.domain.market import TradingWindow
from alchemiser.errors import ConfigError, EventError
from alchemiser.handlers.events import (
    BUILTIN_DEFAULT,
    AccountMessage,
    HandlerSettings,
    load_handler_config,
    parse_account_message,
    parse_event,
)
from alchemiser.handlers.orchestrator import messages

EVENTS = Path(__file__).resolve().parents[2] / "events"


def test_the_shipped_event_parses() -> None:
    event = parse_event(json.loads((EVENTS / "market_open.json").read_text()))
    assert event.scheduled_time == datetime(2026, 7, 31, 13, 30, tzinfo=UTC)
    assert event.attempt == 1
    assert event.window is None
    close = parse_event(json.loads((EVENTS / "market_close.json").read_text()))
    assert close.window == "close"
    assert close.scheduled_time == datetime(2026, 7, 31, 19, 45, tzinfo=UTC)


def test_an_event_without_a_window_is_the_accounts_own() -> None:
    event = parse_event({"scheduled_time": "2026-07-31T13:30:00Z"})
    assert event.window is None
    assert AccountMessage(account="main", scheduled_time=event.scheduled_time).window is None


@pytest.mark.parametrize("window", ["open", "close"])
def test_the_window_travels_from_the_schedule_to_the_worker(window: str) -> None:
    event = {"scheduled_time": "2026-07-31T19:45:00Z", "attempt": "1", "window": window}
    assert parse_event(event).window == window

    entries = messages(["main", "ira"], event)

    for entry in entries:
        message = parse_account_message(entry["MessageBody"])
        assert message.window == window
        assert message.trigger().window == window
        assert message.trigger().scheduled_time == datetime(2026, 7, 31, 19, 45, tzinfo=UTC)


def test_the_open_and_close_triggers_of_a_day_are_different_messages() -> None:
    opening = messages(["main"], {"scheduled_time": "2026-07-31T13:30:00Z", "window": "open"})
    closing = messages(["main"], {"scheduled_time": "2026-07-31T19:45:00Z", "window": "close"})
    assert opening[0]["MessageDeduplicationId"] != closing[0]["MessageDeduplicationId"]


def test_a_message_without_a_window_still_parses() -> None:
    # Messages queued before windows existed (no "window" key).
    body = '{"account": "demo", "scheduled_time": "2026-07-31T13:30:00Z", "attempt": 1}'
    assert parse_account_message(body).trigger().window is None
    with pytest.raises(EventError, match="window"):
        parse_account_message(body[:-1] + ', "window": "noon"}')


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"scheduled_time": "<aws.scheduler.scheduled-time>"},
        {"scheduled_time": "2026-07-31T13:30:00"},
        {"scheduled_time": "2026-07-31T13:30:00Z", "attempt": 0},
        {"scheduled_time": "2026-07-31T13:30:00Z", "scheduledTime": "x"},
        {"scheduled_time": "2026-07-31T19:45:00Z", "window": "midday"},
        {"scheduled_time": "2026-07-31T19:45:00Z", "window": "CLOSE"},
        {"scheduled_time": "2026-07-31T19:45:00Z", "window": 1},
        [],
        "2026-07-31T13:30:00Z",
        None,
    ],
)
def test_malformed_events_are_event_errors(event: object) -> None:
    with pytest.raises(EventError, match="event"):
        parse_event(event)


def test_settings_from_environment() -> None:
    assert HandlerSettings.from_env({}).config_path is None
    settings = HandlerSettings.from_env(
        {"ALCHEMISER_CONFIG": "c.toml", "ALCHEMISER_STATE_DIR": "/tmp/x"}
    )
    assert settings.config_path == Path("c.toml")
    assert settings.state_dir == Path("/tmp/x")


def test_the_config_is_not_configured_until_named() -> None:
    for environ in ({}, {"ALCHEMISER_CONFIG": ""}, {"ALCHEMISER_CONFIG": "  "}):
        settings = HandlerSettings.from_env(environ)
        assert not settings.configured
        assert load_handler_config(settings) is None
    demo = HandlerSettings.from_env({"ALCHEMISER_CONFIG": BUILTIN_DEFAULT})
    assert demo.configured
    assert demo.config_path is None
    config = load_handler_config(demo)
    assert config is not None
    assert config.account_names() == ["demo"]
    named = HandlerSettings.from_env({"ALCHEMISER_CONFIG": "deploy/alchemiser.toml"})
    assert named.configured
    assert named.config_path == Path("deploy/alchemiser.toml")


def test_an_unknown_builtin_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="builtin:default") as raised:
        HandlerSettings.from_env({"ALCHEMISER_CONFIG": "builtin:demo"})
    assert raised.value.field == "ALCHEMISER_CONFIG"


def test_live_is_off_unless_the_environment_says_true() -> None:
    assert HandlerSettings.from_env({}).live is False
    assert HandlerSettings.from_env({"ALCHEMISER_LIVE": "false"}).live is False
    assert HandlerSettings.from_env({"ALCHEMISER_LIVE": "TRUE"}).live is True
    with pytest.raises(ConfigError, match="ALCHEMISER_LIVE"):
        HandlerSettings.from_env({"ALCHEMISER_LIVE": "yes"})


@pytest.mark.parametrize(
    ("value", "windows"),
    [
        ("open", {TradingWindow.OPEN}),
        ("close", {TradingWindow.CLOSE}),
        ("both", {TradingWindow.OPEN, TradingWindow.CLOSE}),
        ("", None),
    ],
)
def test_the_stacks_trading_windows_come_from_the_environment(
    value: str, windows: set[TradingWindow] | None
) -> None:
    settings = HandlerSettings.from_env({"ALCHEMISER_TRADING_WINDOWS": value})
    assert settings.trading_windows == (None if windows is None else frozenset(windows))


def test_an_unknown_trading_window_in_the_environment_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as raised:
        HandlerSettings.from_env({"ALCHEMISER_TRADING_WINDOWS": "noon"})
    assert raised.value.field == "ALCHEMISER_TRADING_WINDOWS"


@pytest.mark.parametrize(
    "instant",
    [
        "0001-01-01T00:00:00+14:00",  # before datetime.min once in UTC
        "9999-12-31T23:59:59-14:00",  # after datetime.max once in UTC
        "1999-12-31T23:59:59Z",
        "2201-01-01T00:00:00Z",
        "2000-01-01T08:59:59+09:00",  # 1999 in UTC
        "2200-12-31T14:00:00-10:00",  # 2201 in UTC
    ],
)
def test_an_instant_out_of_range_is_an_invalid_event(instant: str) -> None:
    with pytest.raises(EventError, match="scheduled_time"):
        parse_event({"scheduled_time": instant})
    with pytest.raises(EventError, match="scheduled_time"):
        messages(["main"], {"scheduled_time": instant})
    body = json.dumps({"account": "main", "scheduled_time": instant})
    with pytest.raises(EventError, match="scheduled_time"):
        parse_account_message(body)


@pytest.mark.parametrize(
    "instant",
    [
        "2000-01-01T00:00:00+00:00",
        "2000-01-01T09:00:00+09:00",
        "2200-12-31T23:59:59+00:00",
        "2200-12-31T13:59:59-10:00",
    ],
)
def test_the_edges_of_the_range_are_accepted(instant: str) -> None:
    """The years 2000 to 2200 in UTC, whatever offset the instant is written with."""
    assert parse_event({"scheduled_time": instant}).scheduled_time.isoformat() == instant
    (entry,) = messages(["main"], {"scheduled_time": instant})
    assert parse_account_message(entry["MessageBody"]).scheduled_time.tzinfo is not None
