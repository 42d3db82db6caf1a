"""Scheduler events and handler settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alchemiser.errors import ConfigError, EventError
from alchemiser.handlers.events import HandlerSettings, parse_event

EVENTS = Path(__file__).resolve().parents[2] / "events"


def test_the_shipped_event_parses() -> None:
    event = parse_event(json.loads((EVENTS / "market_open.json").read_text()))
    assert event.scheduled_time == datetime(2026, 7, 31, 13, 30, tzinfo=UTC)
    assert event.attempt == 1


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"scheduled_time": "<aws.scheduler.scheduled-time>"},
        {"scheduled_time": "2026-07-31T13:30:00"},
        {"scheduled_time": "2026-07-31T13:30:00Z", "attempt": 0},
        {"scheduled_time": "2026-07-31T13:30:00Z", "scheduledTime": "x"},
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


def test_live_is_off_unless_the_environment_says_true() -> None:
    assert HandlerSettings.from_env({}).live is False
    assert HandlerSettings.from_env({"ALCHEMISER_LIVE": "false"}).live is False
    assert HandlerSettings.from_env({"ALCHEMISER_LIVE": "TRUE"}).live is True
    with pytest.raises(ConfigError, match="ALCHEMISER_LIVE"):
        HandlerSettings.from_env({"ALCHEMISER_LIVE": "yes"})
