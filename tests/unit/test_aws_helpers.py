"""Pure parts of the AWS adapters and handlers: the kill switch's precedence, the
report's subject and email text, the orchestrator's queue entries."""

from __future__ import annotations

import json
from datetime import date

import pytest

from alchemiser.adapters.aws.notifier import email_text, failure_text, subject
from alchemiser.adapters.aws.trading_state import strictest
from alchemiser.domain.decisions import TradingState
from alchemiser.domain.report import ErrorReport, Mode, RunReport, RunStatus
from alchemiser.errors import EventError, SecretError
from alchemiser.handlers.events import parse_account_message
from alchemiser.handlers.orchestrator import messages


def report(status: RunStatus, errors: tuple[ErrorReport, ...] = ()) -> RunReport:
    return RunReport(
        run_id="20260731-0123456789",
        account="ira",
        as_of=date(2026, 7, 30),
        trading_date=date(2026, 7, 31),
        scheduled_time=None,
        mode=Mode.PAPER,
        trading_state=TradingState.ACTIVE,
        status=status,
        errors=errors,
    )


@pytest.mark.parametrize(
    ("config", "switch", "expected"),
    [
        ("ACTIVE", "ACTIVE", "ACTIVE"),
        ("ACTIVE", "HALTED", "HALTED"),
        ("HALTED", "ACTIVE", "HALTED"),
        ("REDUCING", "ACTIVE", "REDUCING"),
        ("REDUCING", "HALTED", "HALTED"),
        ("ACTIVE", "REDUCING", "REDUCING"),
    ],
)
def test_the_stricter_trading_state_wins(config: str, switch: str, expected: str) -> None:
    assert strictest(TradingState(config), TradingState(switch)) is TradingState(expected)


def test_subject_and_text_say_what_happened() -> None:
    ok = report(RunStatus.NOOP)
    assert subject(ok) == "[alchemiser] ira 2026-07-31: NOOP"
    assert "Run 20260731-0123456789 for account ira: noop." in email_text(ok)
    failed = report(
        RunStatus.FAILED,
        (ErrorReport(type="DataError", code="DATA_STALE", message="no bar for 2026-07-30"),),
    )
    assert subject(failed).startswith("[alchemiser] ira 2026-07-31: FAILED - DATA_STALE")
    assert (
        len(
            subject(report(RunStatus.FAILED, (ErrorReport(type="E", code="X", message="y" * 500),)))
        )
        <= 100
    )
    assert "Why: DATA_STALE: no bar for 2026-07-30" in email_text(failed)
    assert "SECRET_INVALID" in failure_text("ira", "the run", SecretError("secret missing"))


def test_one_queue_entry_per_account_grouped_and_deduplicated() -> None:
    event = {"scheduled_time": "2026-07-31T09:30:00-04:00", "execution_id": "e1", "attempt": "2"}
    entries = messages(["main", "ira"], event)
    assert [e["MessageGroupId"] for e in entries] == ["main", "ira"]
    bodies = [parse_account_message(e["MessageBody"]) for e in entries]
    assert {b.scheduled_time.isoformat() for b in bodies} == {"2026-07-31T13:30:00+00:00"}
    assert bodies[1].attempt == 2
    again = messages(["main", "ira"], {**event, "execution_id": "e2", "attempt": "3"})
    # The same trigger, redelivered: the same deduplication ids.
    assert [e["MessageDeduplicationId"] for e in again] == [
        e["MessageDeduplicationId"] for e in entries
    ]
    assert len({e["MessageDeduplicationId"] for e in entries}) == 2
    assert json.loads(entries[0]["MessageBody"])["account"] == "main"


@pytest.mark.parametrize(
    "body",
    [
        "",
        "{}",
        "not json",
        '{"account": "x"}',
        '{"account": "a b", "scheduled_time": "2026-07-31T13:30:00Z"}',
    ],
)
def test_malformed_account_messages_are_refused(body: str) -> None:
    with pytest.raises(EventError, match="malformed account message"):
        parse_account_message(body)
