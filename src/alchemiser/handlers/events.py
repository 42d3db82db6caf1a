"""Trigger events and handler settings, parsed strictly into typed models."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import AwareDatetime, Field, ValidationError

from alchemiser.domain.values import Frozen
from alchemiser.errors import ConfigError, EventError


class ScheduledEvent(Frozen):
    """The Input of the EventBridge Scheduler target (see template.yaml), with the
    scheduler's context attributes filled in."""

    scheduled_time: AwareDatetime
    """``<aws.scheduler.scheduled-time>``: the idempotency anchor of the run."""
    execution_id: str | None = Field(default=None, max_length=128)
    schedule_arn: str | None = Field(default=None, max_length=2048)
    attempt: int = Field(default=1, ge=1, le=200)


def parse_event(event: Any) -> ScheduledEvent:
    if not isinstance(event, Mapping):
        raise EventError(f"event must be a JSON object, got {type(event).__name__}")
    try:
        return ScheduledEvent.model_validate(dict(event))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'event'}: {e['msg']}" for e in error.errors()
        )
        raise EventError(f"malformed scheduled event: {problems}") from error


class HandlerSettings(Frozen):
    """What the function's environment (template.yaml) configures."""

    config_path: Path | None = None
    """ALCHEMISER_CONFIG: a TOML file; unset means the embedded default."""
    state_dir: Path = Path("/tmp/alchemiser")  # noqa: S108 - Lambda's only writable path
    """ALCHEMISER_STATE_DIR: where the simulated account and local ledger live."""
    live: bool = False
    """ALCHEMISER_LIVE=true: the function's ``--live``. Live trading also needs the
    config's mode and the secret's endpoint to say live."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> HandlerSettings:
        values: dict[str, str] = {}
        live = environ.get("ALCHEMISER_LIVE", "").strip().lower()
        if live not in ("", "true", "false"):
            raise ConfigError(
                f"expected 'true' or 'false', got {environ['ALCHEMISER_LIVE']!r}",
                field="ALCHEMISER_LIVE",
            )
        if live:
            values["live"] = live
        if environ.get("ALCHEMISER_CONFIG"):
            values["config_path"] = environ["ALCHEMISER_CONFIG"]
        if environ.get("ALCHEMISER_STATE_DIR"):
            values["state_dir"] = environ["ALCHEMISER_STATE_DIR"]
        return cls.model_validate(values)
