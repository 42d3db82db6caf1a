"""Trigger events and handler settings, parsed strictly into typed models."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import MAXYEAR, MINYEAR, UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, AwareDatetime, Field, ValidationError

from alchemiser.config import AppConfig, load_config
from alchemiser.domain.market import TradingWindow
from alchemiser.domain.values import Frozen
from alchemiser.errors import ConfigError, EventError

if TYPE_CHECKING:  # Powertools' record type, for the annotation only
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

BUILTIN_DEFAULT = "builtin:default"
"""ALCHEMISER_CONFIG's value for the embedded demo config (a simulated account on the
bundled prices). An empty or unset ALCHEMISER_CONFIG means the stack is not configured:
its runs are recorded as skipped (``not_configured``) and trade nothing."""
BUILTIN_PREFIX = "builtin:"

Window = TradingWindow
"""A trading window: a run at the open, or a run a few minutes before the close."""

FIRST_YEAR = 2000
LAST_YEAR = 2200


def _within_range(value: datetime) -> datetime:
    # Years 1 and 9999 first: with an offset (under a day) they may have no UTC instant
    # in datetime's range. Within 2000 to 2200 in UTC, every later conversion (to New
    # York time, back to UTC in the account message) stays in range.
    utc = value.astimezone(UTC) if MINYEAR < value.year < MAXYEAR else None
    if utc is None or not FIRST_YEAR <= utc.year <= LAST_YEAR:
        raise ValueError(f"the instant must be in the years {FIRST_YEAR} to {LAST_YEAR} (UTC)")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_within_range)]
"""A trigger's instant: timezone-aware, in the years 2000 to 2200 in UTC."""


class ScheduledEvent(Frozen):
    """The Input of the EventBridge Scheduler target (see template.yaml), with the
    scheduler's context attributes filled in."""

    scheduled_time: Instant
    """``<aws.scheduler.scheduled-time>``: the idempotency anchor of the run."""
    execution_id: str | None = Field(default=None, max_length=128)
    schedule_arn: str | None = Field(default=None, max_length=2048)
    attempt: int = Field(default=1, ge=1, le=200)
    window: Window | None = None
    """Which trading window the trigger is for (template.yaml's ``TradingWindow``);
    None: the account's own."""


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


_OPTIONAL = {
    "ledger_table": "ALCHEMISER_LEDGER_TABLE",
    "idempotency_table": "ALCHEMISER_IDEMPOTENCY_TABLE",
    "reports_topic_arn": "ALCHEMISER_REPORTS_TOPIC_ARN",
    "trading_state_parameter": "ALCHEMISER_TRADING_STATE_PARAMETER",
    "accounts_queue_url": "ALCHEMISER_ACCOUNTS_QUEUE_URL",
}


class AccountMessage(Frozen):
    """One account's run, as the orchestrator queues it for the worker."""

    account: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    scheduled_time: Instant
    execution_id: str | None = Field(default=None, max_length=128)
    attempt: int = Field(default=1, ge=1, le=200)
    window: Window | None = None
    """The trigger's trading window, as the schedule said (None: the account's own)."""

    def trigger(self) -> ScheduledEvent:
        return ScheduledEvent(
            scheduled_time=self.scheduled_time,
            execution_id=self.execution_id,
            attempt=self.attempt,
            window=self.window,
        )


def parse_account_message(body: str) -> AccountMessage:
    try:
        return AccountMessage.model_validate_json(body)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in error.errors()
        )
        raise EventError(f"malformed account message: {problems}") from error


class HandlerSettings(Frozen):
    """What the function's environment (template.yaml) configures."""

    config_path: Path | None = None
    """ALCHEMISER_CONFIG: a TOML file (None: the embedded default, or not configured)."""
    embedded: bool = False
    """ALCHEMISER_CONFIG=builtin:default: the embedded demo config."""
    state_dir: Path = Path("/tmp/alchemiser")  # noqa: S108 - Lambda's only writable path
    """ALCHEMISER_STATE_DIR: where the simulated account and local ledger live."""
    live: bool = False
    """ALCHEMISER_LIVE=true: the function's ``--live``. Live trading also needs the
    config's mode and the secret's endpoint to say live."""
    dry_run: bool = False
    """ALCHEMISER_DRY_RUN=true (the template's ``DryRun``): every account's run is a dry
    run, as with ``dry_run = true`` in its config: read and plan, submit and cancel
    nothing."""

    ledger_table: str | None = None
    """ALCHEMISER_LEDGER_TABLE: the DynamoDB ledger; unset: a file in ``state_dir``."""
    idempotency_table: str | None = None
    """ALCHEMISER_IDEMPOTENCY_TABLE: Powertools idempotency records; unset: none (the
    order-level client_order_id still keeps a repeated run from trading twice)."""
    reports_topic_arn: str | None = None
    """ALCHEMISER_REPORTS_TOPIC_ARN: every run's report is published there."""
    trading_state_parameter: str | None = None
    """ALCHEMISER_TRADING_STATE_PARAMETER: the kill switch in SSM Parameter Store."""
    accounts_queue_url: str | None = None
    """ALCHEMISER_ACCOUNTS_QUEUE_URL: where the orchestrator sends one message per account."""
    trading_windows: frozenset[TradingWindow] | None = None
    """ALCHEMISER_TRADING_WINDOWS (``open``, ``close`` or ``both``: the template's
    ``TradingWindow``): the windows the stack schedules; unset: every window."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> HandlerSettings:
        values: dict[str, str] = {}
        for field, name in _OPTIONAL.items():
            if environ.get(name):
                values[field] = environ[name]
        for field, name in (("live", "ALCHEMISER_LIVE"), ("dry_run", "ALCHEMISER_DRY_RUN")):
            flag = environ.get(name, "").strip().lower()
            if flag not in ("", "true", "false"):
                raise ConfigError(f"expected 'true' or 'false', got {environ[name]!r}", field=name)
            if flag:
                values[field] = flag
        config = environ.get("ALCHEMISER_CONFIG", "").strip()
        if config == BUILTIN_DEFAULT:
            values["embedded"] = "true"
        elif config.startswith(BUILTIN_PREFIX):
            raise ConfigError(
                f"unknown built-in config {config!r}: the one built-in is {BUILTIN_DEFAULT!r}",
                field="ALCHEMISER_CONFIG",
            )
        elif config:
            values["config_path"] = config
        if environ.get("ALCHEMISER_STATE_DIR"):
            values["state_dir"] = environ["ALCHEMISER_STATE_DIR"]
        windows = environ.get("ALCHEMISER_TRADING_WINDOWS", "").strip().lower()
        if windows:
            if windows not in ("open", "close", "both"):
                raise ConfigError(
                    f"expected 'open', 'close' or 'both', got {windows!r}",
                    field="ALCHEMISER_TRADING_WINDOWS",
                )
            chosen = tuple(TradingWindow) if windows == "both" else (TradingWindow(windows),)
            return cls.model_validate(values).model_copy(
                update={"trading_windows": frozenset(chosen)}
            )
        return cls.model_validate(values)

    @property
    def configured(self) -> bool:
        """False until ALCHEMISER_CONFIG names a config (a file or the built-in one)."""
        return self.embedded or self.config_path is not None

    @property
    def config_source(self) -> str:
        """What ALCHEMISER_CONFIG names, for logs ("" when not configured)."""
        if self.config_path is not None:
            return str(self.config_path)
        return BUILTIN_DEFAULT if self.embedded else ""


def load_handler_config(settings: HandlerSettings) -> AppConfig | None:
    """The config ALCHEMISER_CONFIG names: a TOML file, or the embedded demo config for
    ``builtin:default``; None when the stack is not configured (empty or unset)."""
    if not settings.configured:
        return None
    return load_config(settings.config_path)


# --- the worker's SQS batch ------------------------------------------------------------


def check_batch(event: Any) -> None:
    """EventError unless ``event`` is an SQS batch: a non-empty ``Records`` list of
    objects, each with a ``messageId`` (what a failed item is reported by)."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise EventError(f"not an SQS batch: no Records list in the {type(event).__name__}")
    if not records:
        raise EventError("not an SQS batch: no records (SQS sends at least one)")
    for index, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise EventError(f"not an SQS batch: record {index} is a {type(record).__name__}")
        message_id = record.get("messageId")
        if not isinstance(message_id, str) or not message_id:
            raise EventError(f"not an SQS batch: record {index} has no messageId")


def read_record(record: SQSRecord) -> tuple[AccountMessage, int]:
    """The record's account message and which delivery this is (its receive count; 1
    when SQS did not say). EventError if either cannot be read."""
    raw = record.raw_event
    body = raw.get("body")
    if not isinstance(body, str):
        raise EventError("the SQS record has no body")
    message = parse_account_message(body)
    attributes = raw.get("attributes", {})
    if not isinstance(attributes, Mapping):
        raise EventError("the SQS record's attributes are not an object")
    count = attributes.get("ApproximateReceiveCount", "1")
    if not isinstance(count, str) or not count.isdecimal() or len(count) > 9 or int(count) < 1:
        shown = repr(count) if len(repr(count)) <= 40 else f"{repr(count)[:40]}..."
        raise EventError(f"ApproximateReceiveCount {shown} is not a positive integer")
    return message, int(count)
