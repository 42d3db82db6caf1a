"""The deployed stack, in-process: the real Lambda handlers (direct, orchestrator,
worker, watchdog) with moto for DynamoDB, SNS, SQS, SSM and Secrets Manager, and the
local exchange for Alpaca (see aws_stack.py).

Every test checks at its end that no fake key reached stdout or stderr (the ``output``
fixture), and the stack fixture that none reached an SNS message or a DynamoDB item.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)

from alchemiser import cli
from alchemiser.adapters.aws.secrets import read_alpaca_credentials
from alchemiser.domain.report import RunReport
from alchemiser.errors import AlchemiserError, SecretError
from alchemiser.exchange import Fault, LocalExchange
from alchemiser.handlers import orchestrator, watchdog, worker
from alchemiser.handlers.runtime import RunFailed
from tests.integration.aws_stack import (
    ACCOUNT,
    FAKE_KEY_ID,
    FAKE_SECRET_KEY,
    IDEMPOTENCY_TABLE,
    LEDGER_TABLE,
    OTHER_ACCOUNT,
    OTHER_KEY_ID,
    OTHER_SECRET_KEY,
    PARAMETER,
    ROTATED_KEY_ID,
    ROTATED_SECRET_KEY,
    SCHEDULED,
    AccountSpec,
    Output,
    Stack,
    accepted_ids,
    assert_nothing_twice,
    event,
    lambda_context,
    order_posts,
    output,
    secret_document,
    sqs_record,
    stack,
    totals,
)

__all__ = ["output", "stack"]  # fixtures
pytestmark = pytest.mark.integration

DAY = "2026-07-31"
ORDERS = "/v2/orders"
AUTH_NOTE = "the broker refused the credentials once; the secret was read again (rotated keys)"
HANG_GUARD_SECONDS = 60
"""A guard against a hang only: the first order normally arrives in well under a second."""


def report_of(result: dict[str, Any]) -> RunReport:
    return RunReport.model_validate(result)


def sides(exchange: LocalExchange) -> set[str]:
    return {o.side for o in exchange.engine.accepted_orders()}


# -- 1. secrets -------------------------------------------------------------------------


MALFORMED = {
    "missing": None,
    "not-json": f"api_key_id={FAKE_KEY_ID}\napi_secret_key={FAKE_SECRET_KEY}",
    "not-an-object": json.dumps([FAKE_KEY_ID, FAKE_SECRET_KEY]),
    "missing-field": json.dumps({"api_key_id": FAKE_KEY_ID, "endpoint": "paper"}),
    "empty-secret-key": json.dumps(secret_document(secret_key="")),
}


@pytest.mark.parametrize("secret", list(MALFORMED.values()), ids=list(MALFORMED))
def test_bad_secret_fails_closed_without_touching_the_exchange(
    stack: Stack, output: Output, monkeypatch: pytest.MonkeyPatch, secret: str | None
) -> None:
    exchange, secret_id = stack.single()
    boto3.client("secretsmanager").delete_secret(
        SecretId=secret_id, ForceDeleteWithoutRecovery=True
    )
    if secret is not None:
        stack.put_secret(secret_id, secret)
    # The keys the exchange accepts are in the environment, under every name a tool
    # might look for them: the run must not use them.
    for name, value in {
        "ALPACA_API_KEY": FAKE_KEY_ID,
        "ALPACA_SECRET_KEY": FAKE_SECRET_KEY,
        "APCA_API_KEY_ID": FAKE_KEY_ID,
        "APCA_API_SECRET_KEY": FAKE_SECRET_KEY,
    }.items():
        monkeypatch.setenv(name, value)

    with pytest.raises(SecretError) as caught:
        stack.run()

    assert caught.value.code == "SECRET_INVALID"
    assert secret_id in str(caught.value)
    assert exchange.requests == [], "a request reached the broker without a valid secret"
    (notice,) = stack.notices()
    assert notice.subject == f"[alchemiser] {ACCOUNT}: FAILED before a report"
    assert notice.json()["error"]["code"] == "SECRET_INVALID"
    assert stack.ledger().last_runs(ACCOUNT, 5) == []
    assert output.metrics(output.read())["RunFailed"] == [1.0]


def test_rotated_keys_are_read_again_after_one_refusal(stack: Stack, output: Output) -> None:
    exchange, secret_id = stack.single()
    # A warm function read key pair A (cached by Powertools for secret_max_age_seconds).
    assert read_alpaca_credentials(secret_id).api_key_id.get_secret_value() == FAKE_KEY_ID
    # The keys are rotated: the secret holds B, the broker accepts only B.
    stack.put_secret(secret_id, secret_document(ROTATED_KEY_ID, ROTATED_SECRET_KEY))
    exchange.configure(key_id=ROTATED_KEY_ID, secret_key=ROTATED_SECRET_KEY)

    result = stack.run()

    assert result["status"] == "completed"
    assert [r.status for r in exchange.requests].count(401) == 1
    assert exchange.requests[0].status == 401
    assert_nothing_twice(exchange)
    assert len(accepted_ids(exchange)) == len(result["orders"]) == 5
    logs = output.logs(output.read())
    assert any("reading the secret again" in entry["message"] for entry in logs)
    (notice,) = stack.notices()
    assert notice.subject.endswith("COMPLETED")


def test_wrong_keys_fail_after_one_fresh_read(stack: Stack, output: Output) -> None:
    exchange, secret_id = stack.single()
    stack.put_secret(secret_id, secret_document(ROTATED_KEY_ID, ROTATED_SECRET_KEY))

    with pytest.raises(AlchemiserError) as caught:
        stack.run()

    assert caught.value.code == "BROKER_AUTH"
    assert [r.status for r in exchange.requests] == [401, 401]  # once per secret read
    assert order_posts(exchange) == 0
    (notice,) = stack.notices()
    assert notice.json()["error"]["code"] == "BROKER_AUTH"
    output.read()


def test_rotated_keys_show_in_the_report(stack: Stack, output: Output) -> None:
    exchange, secret_id = stack.single()
    read_alpaca_credentials(secret_id)
    stack.put_secret(secret_id, secret_document(ROTATED_KEY_ID, ROTATED_SECRET_KEY))
    exchange.configure(key_id=ROTATED_KEY_ID, secret_key=ROTATED_SECRET_KEY)
    result = stack.run()
    output.read()
    recorded = stack.ledger().get_run(result["run_id"])
    assert recorded is not None
    assert AUTH_NOTE in result["notes"]
    assert AUTH_NOTE in recorded.notes


# -- 2. idempotency ---------------------------------------------------------------------


def test_redelivered_trigger_is_answered_from_idempotency(stack: Stack, output: Output) -> None:
    exchange, _ = stack.single()
    first = stack.run(execution_id="exec-1", attempt=1)
    output.read()
    posts = order_posts(exchange)
    accepted = accepted_ids(exchange)
    assert first["status"] == "completed"
    assert len(stack.notices()) == 1

    second = stack.run(execution_id="exec-2", attempt=2)

    assert second == first
    text = output.read()
    assert any("answered from idempotency" in e["message"] for e in output.logs(text))
    assert output.metrics(text)["IdempotentReplay"] == [1.0]
    assert order_posts(exchange) == posts
    assert accepted_ids(exchange) == accepted
    assert stack.notices() == []  # the replay publishes nothing
    assert len(stack.ledger().last_runs(ACCOUNT, 5)) == 1


@pytest.mark.parametrize(
    "again",
    [
        "2026-07-31T09:30:00-04:00",
        "2026-07-31T13:30:00.250Z",
    ],
    ids=["other-offset", "fraction-of-a-second"],
)
def test_one_instant_written_another_way_is_the_same_trigger(
    stack: Stack, output: Output, again: str
) -> None:
    exchange, _ = stack.single()
    first = stack.run(SCHEDULED)
    posts = order_posts(exchange)
    output.read()

    second = stack.run(again)

    assert second["run_id"] == first["run_id"]  # service.make_run_id: one instant, one run
    assert order_posts(exchange) == posts
    recorded = stack.ledger().get_run(first["run_id"])
    assert recorded is not None
    assert (recorded.status.value, len(recorded.orders)) == ("completed", 5)
    assert second == first
    assert output.metrics(output.read()).get("IdempotentReplay") == [1.0]


def run_twice_at_once(stack: Stack, exchange: LocalExchange) -> tuple[dict[str, Any], Exception]:
    """The same trigger twice, the second while the first waits for its fills: returns
    the first's result and what the second raised."""
    exchange.configure(fill_delay_seconds=0.6)
    results: dict[str, Any] = {}

    def first() -> None:
        try:
            results["first"] = stack.run(execution_id="exec-1")
        except Exception as error:  # noqa: BLE001 - checked by the caller
            results["first"] = error

    thread = threading.Thread(target=first)
    thread.start()
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not exchange.engine.accepted_orders() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert exchange.engine.accepted_orders(), "the first run never placed an order"
    try:
        stack.run(execution_id="exec-2")
    except Exception as error:  # noqa: BLE001 - checked by the caller
        second: Exception = error
    else:
        pytest.fail("the concurrent duplicate ran")
    finally:
        thread.join(timeout=HANG_GUARD_SECONDS)
    result = results["first"]
    assert isinstance(result, dict), result
    return result, second


def test_concurrent_duplicate_places_nothing(stack: Stack, output: Output) -> None:
    exchange, _ = stack.single()
    result, second = run_twice_at_once(stack, exchange)

    assert isinstance(second, IdempotencyAlreadyInProgressError)
    assert result["status"] == "completed"
    ids = accepted_ids(exchange)
    assert sorted(ids) == sorted(o["client_order_id"] for o in result["orders"])
    assert all(i.startswith(result["run_id"]) for i in ids)
    assert order_posts(exchange) == len(ids)
    output.read()


def test_concurrent_duplicate_is_not_reported_as_a_failure(stack: Stack, output: Output) -> None:
    exchange, _ = stack.single()
    run_twice_at_once(stack, exchange)
    subjects = [n.subject for n in stack.notices()]
    metrics = output.metrics(output.read())
    assert subjects == [f"[alchemiser] {ACCOUNT} {DAY}: COMPLETED"]
    assert metrics["RunFailed"] == [0.0]


def test_failed_run_releases_idempotency_and_the_retry_completes(
    stack: Stack, output: Output
) -> None:
    # A clean run of the same plan on its own exchange: the most either attempt may trade.
    clean = stack.exchange()
    stack.put_secret("alchemiser/clean", secret_document())
    stack.write_config(
        [AccountSpec("acct-clean", "alchemiser/clean", clean.url)], name="clean.toml"
    )
    assert stack.run()["status"] == "completed"
    limits = totals(clean)

    exchange, _ = stack.single()
    exchange.add_fault(Fault.server_error(503, method="POST", path=ORDERS, nth=3, every=True))
    with pytest.raises(RunFailed):
        stack.run(execution_id="exec-1")
    # The failed attempt's idempotency record is gone (only the clean run's is left).
    (record,) = boto3.client("dynamodb").scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    assert json.loads(record["data"]["S"])["account"] == "acct-clean"
    failed = stack.ledger().last_runs(ACCOUNT, 5)
    assert [r.status.value for r in failed] == ["failed"]

    exchange.clear_faults()
    retry = stack.run(execution_id="exec-2", attempt=2)

    assert retry["status"] == "completed"
    assert retry["run_id"] == failed[0].run_id
    assert_nothing_twice(exchange)
    # The retry re-plans from the account as it is (the sells filled above their
    # reference prices, so its buys can be a little larger): a second copy of any order
    # would double a total, a 1% margin cannot hide that.
    for key, amount in totals(exchange).items():
        most = limits[key] * Decimal("1.01")
        assert amount <= most, f"{key}: {amount} traded, a clean run trades {limits[key]}"
    assert set(totals(exchange)) == set(limits)
    subjects = [n.subject for n in stack.notices()]
    assert subjects[-2].startswith(f"[alchemiser] {ACCOUNT} {DAY}: FAILED")
    assert subjects[-1] == f"[alchemiser] {ACCOUNT} {DAY}: COMPLETED"
    output.read()


# -- 3. ledger and the report command ---------------------------------------------------


def test_ledger_holds_the_report_and_the_cli_prints_it(
    stack: Stack, output: Output, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.single()
    result = stack.run()
    output.read()

    recorded = stack.ledger().get_run(result["run_id"])
    assert recorded is not None
    assert recorded.model_dump(mode="json") == result
    assert recorded == report_of(result)

    code = cli.main(["report", "--last", "5", "--table", LEDGER_TABLE, "--account", ACCOUNT])
    printed = output.read()
    assert code == 0
    assert f"Last 1 attempt(s) of account {ACCOUNT!r}" in printed
    (row,) = [line for line in printed.splitlines() if line.endswith(result["run_id"])]
    assert row.startswith(f"{DAY}  completed  ")

    code = cli.main(["report", "--table", LEDGER_TABLE, "--strategy", "core"])
    printed = output.read()
    assert code == 0
    assert result["run_id"] in printed
    assert ACCOUNT in printed

    code = cli.main(["report", "--table", LEDGER_TABLE, "--run", result["run_id"], "--json"])
    assert code == 0
    assert json.loads(output.read()) == [result]  # every attempt of the run: here one


# -- 4. one SNS message per run -----------------------------------------------------------


def test_completed_then_noop_publish_one_message_each(stack: Stack, output: Output) -> None:
    stack.single()
    completed = stack.run()
    noop = stack.run("2026-07-31T14:30:00Z")  # same day, a new trigger: a new run id
    output.read()

    assert noop["status"] == "noop"
    assert noop["run_id"] != completed["run_id"]
    notices = stack.notices()
    assert [n.subject for n in notices] == [
        f"[alchemiser] {ACCOUNT} {DAY}: COMPLETED",
        f"[alchemiser] {ACCOUNT} {DAY}: NOOP",
    ]
    assert [RunReport.model_validate_json(n.message) for n in notices] == [
        report_of(completed),
        report_of(noop),
    ]


def test_skipped_run_publishes_one_message(stack: Stack, output: Output) -> None:
    exchange, _ = stack.single()
    exchange.configure(now=datetime(2026, 7, 31, 20, 30, tzinfo=UTC))  # after the close
    result = stack.run("2026-07-31T20:30:00Z")
    output.read()

    assert result["status"] == "skipped"
    (notice,) = stack.notices()
    assert notice.subject == f"[alchemiser] {ACCOUNT} {DAY}: SKIPPED"
    assert RunReport.model_validate_json(notice.message) == report_of(result)


def test_failed_run_publishes_the_reason(stack: Stack, output: Output) -> None:
    exchange, _ = stack.single()
    exchange.configure(stale_bars_sessions=1)
    with pytest.raises(RunFailed, match="DATA_STALE"):
        stack.run()
    output.read()

    (notice,) = stack.notices()
    assert notice.subject.startswith(f"[alchemiser] {ACCOUNT} {DAY}: FAILED - DATA_STALE")
    report = RunReport.model_validate_json(notice.message)
    assert report.status.value == "failed"
    assert [e.code for e in report.errors] == ["DATA_STALE"]
    assert stack.ledger().get_run(report.run_id) == report
    assert order_posts(exchange) == 0


# -- 5. the kill switch -------------------------------------------------------------------


def test_halted_blocks_every_order(stack: Stack, output: Output) -> None:
    exchange, _ = stack.single()
    stack.set_trading_state("HALTED")
    result = stack.run()
    output.read()

    assert result["status"] == "blocked"
    assert result["trading_state"] == "HALTED"
    assert result["orders"] == []
    assert order_posts(exchange) == 0
    assert exchange.engine.accepted_orders() == []
    (notice,) = stack.notices()
    # Blocked is a success for Lambda, but not what the targets asked: it says so.
    assert notice.subject.startswith(f"[alchemiser] {ACCOUNT} {DAY}: BLOCKED (degraded: ")


def test_halted_cancels_our_earlier_working_order(stack: Stack, output: Output) -> None:
    exchange, _ = stack.single()
    exchange.configure(fill_delay_seconds=3600)  # an earlier run's buy, still working
    earlier = f"{ACCOUNT}-20260731-0123456789-buy-SPY-0"
    exchange.engine.submit_order(
        {
            "symbol": "SPY",
            "side": "buy",
            "type": "market",
            "time_in_force": "day",
            "notional": "1000",
            "client_order_id": earlier,
        }
    )
    exchange.configure(fill_delay_seconds=0)
    stack.set_trading_state("HALTED")

    result = stack.run()
    output.read()

    assert result["status"] == "blocked"
    assert accepted_ids(exchange) == [earlier]
    order = exchange.engine.order_by_client_id(earlier)
    assert order is not None
    assert order.status == "canceled"
    assert order.filled_qty == 0


def test_reducing_only_sells(stack: Stack, output: Output) -> None:
    exchange, _ = stack.single()
    stack.set_trading_state("REDUCING")
    result = stack.run()
    output.read()

    assert result["trading_state"] == "REDUCING"
    assert {o["side"] for o in result["orders"]} == {"sell"}
    assert sides(exchange) == {"sell"}
    assert {o.symbol for o in exchange.engine.accepted_orders()} == {"QQQ", "BND"}


def test_halt_and_resume_commands_set_the_parameter(
    stack: Stack, output: Output, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli.main(["halt", "--parameter", PARAMETER]) == 0
    assert stack.trading_state() == "HALTED"
    assert cli.main(["halt", "--reduce", "--parameter", PARAMETER]) == 0
    assert stack.trading_state() == "REDUCING"
    assert cli.main(["resume", "--parameter", PARAMETER]) == 0
    assert stack.trading_state() == "ACTIVE"
    # The parameter from the environment (the stack's output, exported).
    monkeypatch.setenv("ALCHEMISER_TRADING_STATE_PARAMETER", PARAMETER)
    assert cli.main(["halt"]) == 0
    assert stack.trading_state() == "HALTED"
    assert "HALTED" in output.read()


@pytest.mark.parametrize("value", [None, "PAUSED"], ids=["missing", "unknown-value"])
def test_unreadable_kill_switch_fails_closed(
    stack: Stack, output: Output, value: str | None
) -> None:
    exchange, _ = stack.single()
    if value is None:
        boto3.client("ssm").delete_parameter(Name=PARAMETER)
    else:
        stack.set_trading_state(value)

    with pytest.raises(AlchemiserError) as caught:
        stack.run()

    assert caught.value.code == "TRADING_STATE_UNAVAILABLE"
    assert exchange.requests == []
    (notice,) = stack.notices()
    assert notice.json()["error"]["code"] == "TRADING_STATE_UNAVAILABLE"
    output.read()


# -- 6. the market calendar -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "scheduled", "day", "why"),
    [
        (
            datetime(2026, 7, 3, 13, 30, tzinfo=UTC),
            "2026-07-03T13:30:00Z",
            "2026-07-03",
            "holiday",
        ),
        (
            datetime(2026, 7, 31, 20, 30, tzinfo=UTC),
            "2026-07-31T20:30:00Z",
            DAY,
            "market_closed",
        ),
    ],
    ids=["holiday", "after-the-close"],
)
def test_closed_market_skips_the_run(
    stack: Stack, output: Output, now: datetime, scheduled: str, day: str, why: str
) -> None:
    exchange, _ = stack.single()
    exchange.configure(now=now)
    result = stack.run(scheduled)

    assert result["status"] == "skipped"
    assert result["skipped"] == why  # a watchdog tells the holiday from the missed run
    assert result["trading_date"] == day
    assert any("the market is closed" in note for note in result["notes"])
    metrics = output.metrics(output.read())
    assert metrics["RunSkipped"] == [1.0]
    assert metrics["RunFailed"] == [0.0]
    assert order_posts(exchange) == 0
    (notice,) = stack.notices()
    assert notice.subject == f"[alchemiser] {ACCOUNT} {day}: SKIPPED"
    (recorded,) = stack.ledger().run_on(ACCOUNT, date.fromisoformat(day))
    assert recorded == report_of(result)


def test_trigger_for_another_day_is_refused(stack: Stack, output: Output) -> None:
    exchange, _ = stack.single()
    with pytest.raises(RunFailed, match="EVENT_INVALID"):
        stack.run("2026-07-30T13:30:00Z")
    output.read()

    assert order_posts(exchange) == 0
    (recorded,) = stack.ledger().last_runs(ACCOUNT, 5)
    assert [e.code for e in recorded.errors] == ["EVENT_INVALID"]
    (notice,) = stack.notices()
    assert "FAILED - EVENT_INVALID" in notice.subject


def test_stale_redelivery_keeps_the_completed_run_in_the_ledger(
    stack: Stack, output: Output
) -> None:
    exchange, _ = stack.single()
    first = stack.run()
    # Days later (the idempotency record has expired) the same trigger comes back.
    ddb = boto3.client("dynamodb")
    for item in ddb.scan(TableName=IDEMPOTENCY_TABLE)["Items"]:
        ddb.delete_item(TableName=IDEMPOTENCY_TABLE, Key={"id": item["id"]})
    exchange.configure(now=datetime(2026, 8, 3, 13, 30, tzinfo=UTC))
    posts = order_posts(exchange)

    # The run finished: the redelivery is answered from the ledger, and trades nothing.
    again = stack.run(attempt=2)
    output.read()

    assert again["attempt_id"] == first["attempt_id"]
    assert "answered from the ledger" in again["notes"][-1]
    assert order_posts(exchange) == posts
    recorded = stack.ledger().get_run(first["run_id"])
    assert recorded is not None
    assert recorded.status.value == "completed"
    assert recorded == report_of(first)


# -- 7. many accounts: orchestrator, FIFO queue, worker ---------------------------------------


def two_accounts(stack: Stack) -> tuple[LocalExchange, LocalExchange]:
    """Account A (default limits) and B (its own keys, exchange and a lower order cap)."""
    first = stack.exchange()
    second = stack.exchange(OTHER_KEY_ID, OTHER_SECRET_KEY)
    stack.put_secret("alchemiser/a", secret_document())
    stack.put_secret("alchemiser/b", secret_document(OTHER_KEY_ID, OTHER_SECRET_KEY))
    stack.write_config(
        [
            AccountSpec(ACCOUNT, "alchemiser/a", first.url),
            AccountSpec(OTHER_ACCOUNT, "alchemiser/b", second.url, {"max_order_notional": 20000}),
        ]
    )
    return first, second


def queued(stack: Stack) -> dict[str, dict[str, Any]]:
    """The accounts queue's messages by account."""
    return {json.loads(m["Body"])["account"]: m for m in stack.receive_accounts()}


def worker_event(stack: Stack, *messages: dict[str, Any]) -> dict[str, Any]:
    assert stack.accounts_queue_arn is not None
    return {"Records": [sqs_record(m, stack.accounts_queue_arn) for m in messages]}


def test_orchestrator_fans_out_and_each_worker_trades_its_own_account(
    stack: Stack, output: Output
) -> None:
    first, second = two_accounts(stack)
    stack.create_accounts_queue()
    trigger = event()

    assert orchestrator.handler(trigger, lambda_context("Orchestrator")) == {
        "queued": [ACCOUNT, OTHER_ACCOUNT]
    }
    messages = queued(stack)
    assert set(messages) == {ACCOUNT, OTHER_ACCOUNT}
    for account, message in messages.items():
        assert message["Attributes"]["MessageGroupId"] == account
        body = json.loads(message["Body"])
        assert body["scheduled_time"] == "2026-07-31T13:30:00Z"
        assert body["execution_id"] == trigger["execution_id"]
    # The same trigger again (a scheduler retry) within five minutes: SQS deduplicates
    # on MessageDeduplicationId (account + scheduled time), and moto implements it.
    orchestrator.handler(event(), lambda_context("Orchestrator"))
    assert stack.receive_accounts() == []

    results = {}
    for account in (ACCOUNT, OTHER_ACCOUNT):
        response = worker.handler(worker_event(stack, messages[account]), lambda_context("Worker"))
        assert response == {"batchItemFailures": []}
        recorded = stack.ledger().last_runs(account, 1)
        assert [r.status.value for r in recorded] == ["completed"]
        results[account] = recorded[0]
    output.read()

    # Each exchange traded only its own account's plan.
    for exchange, account in ((first, ACCOUNT), (second, OTHER_ACCOUNT)):
        run_id = results[account].run_id
        ids = accepted_ids(exchange)
        assert ids
        assert all(i.startswith(run_id) for i in ids)
        assert sorted(ids) == sorted(o.client_order_id for o in results[account].orders)
        assert_nothing_twice(exchange)
    assert results[ACCOUNT].run_id != results[OTHER_ACCOUNT].run_id
    # Its own limits: B's order cap is $20,000, A's the default $50,000.
    biggest = {
        account: max(o.notional or 0 for o in ex.engine.accepted_orders() if o.side == "buy")
        for account, ex in ((ACCOUNT, first), (OTHER_ACCOUNT, second))
    }
    assert biggest[OTHER_ACCOUNT] <= Decimal(20000) < biggest[ACCOUNT]


def test_worker_reports_only_the_failing_account(stack: Stack, output: Output) -> None:
    first, second = two_accounts(stack)
    second.configure(stale_bars_sessions=1)
    stack.create_accounts_queue()
    orchestrator.handler(event(), lambda_context("Orchestrator"))
    messages = queued(stack)

    response = worker.handler(
        worker_event(stack, messages[ACCOUNT], messages[OTHER_ACCOUNT]), lambda_context("Worker")
    )

    assert response == {
        "batchItemFailures": [{"itemIdentifier": messages[OTHER_ACCOUNT]["MessageId"]}]
    }
    assert accepted_ids(first)
    assert order_posts(second) == 0
    statuses = {
        account: [r.status.value for r in stack.ledger().last_runs(account, 5)]
        for account in (ACCOUNT, OTHER_ACCOUNT)
    }
    assert statuses == {ACCOUNT: ["completed"], OTHER_ACCOUNT: ["failed"]}
    # With the template's batch size of 1 the failing message is the whole batch: still
    # a failed item (SQS delivers it again), not a Lambda error (RunFailedAlarm counts
    # failed runs; HandlerErrorsAlarm is for crashes).
    alone = worker.handler(worker_event(stack, messages[OTHER_ACCOUNT]), lambda_context("Worker"))
    assert alone == {
        "batchItemFailures": [{"itemIdentifier": messages[OTHER_ACCOUNT]["MessageId"]}]
    }
    output.read()


def test_direct_handler_runs_every_account_when_one_cannot_start(
    stack: Stack, output: Output
) -> None:
    _, second = two_accounts(stack)
    boto3.client("secretsmanager").delete_secret(
        SecretId="alchemiser/a", ForceDeleteWithoutRecovery=True
    )
    with pytest.raises(AlchemiserError):
        stack.run()
    output.read()
    assert [r.status.value for r in stack.ledger().last_runs(OTHER_ACCOUNT, 5)] == ["completed"]
    assert accepted_ids(second)


def test_idempotency_is_per_account(stack: Stack, output: Output) -> None:
    first, second = two_accounts(stack)
    stack.create_accounts_queue()
    orchestrator.handler(event(), lambda_context("Orchestrator"))
    messages = queued(stack)
    worker.handler(worker_event(stack, messages[ACCOUNT]), lambda_context("Worker"))
    output.read()

    # The same trigger for B after A: B runs (its own idempotency key).
    worker.handler(worker_event(stack, messages[OTHER_ACCOUNT]), lambda_context("Worker"))
    assert "IdempotentReplay" not in output.metrics(output.read())
    assert accepted_ids(second)
    # A's message delivered again: answered from A's record, nothing new at A's broker.
    before = accepted_ids(first)
    worker.handler(worker_event(stack, messages[ACCOUNT]), lambda_context("Worker"))
    assert output.metrics(output.read())["IdempotentReplay"] == [1.0]
    assert accepted_ids(first) == before


# -- 8. the watchdog ------------------------------------------------------------------------


WATCHDOG_EVENT = {"scheduled_time": "2026-07-31T14:00:00Z"}


def test_watchdog_is_quiet_when_every_account_ran(stack: Stack, output: Output) -> None:
    two_accounts(stack)
    result = stack.run()
    assert {a: r["status"] for a, r in result["accounts"].items()} == {
        ACCOUNT: "completed",
        OTHER_ACCOUNT: "completed",
    }
    stack.notices()
    output.read()

    assert watchdog.handler(WATCHDOG_EVENT, lambda_context("Watchdog")) == {
        "day": DAY,
        "missing": [],
    }
    assert output.metrics(output.read())["RunMissing"] == [0.0]
    assert stack.notices() == []


def test_watchdog_alarms_for_a_session_whose_run_found_the_market_closed(
    stack: Stack, output: Output
) -> None:
    """A trigger that reached the broker after the close on a session day (a delayed
    delivery, a retry) is skipped, but the day went untraded: not a holiday."""
    _, second = two_accounts(stack)
    second.configure(now=datetime(2026, 7, 31, 20, 30, tzinfo=UTC))  # B: closed, skipped
    result = stack.run()
    assert result["accounts"][OTHER_ACCOUNT]["status"] == "skipped"
    assert result["accounts"][OTHER_ACCOUNT]["skipped"] == "market_closed"
    stack.notices()
    output.read()

    assert watchdog.handler(WATCHDOG_EVENT, lambda_context("Watchdog")) == {
        "day": DAY,
        "missing": [f"{OTHER_ACCOUNT} (skipped)"],
    }
    assert output.metrics(output.read())["RunMissing"] == [1.0]


def test_watchdog_alarms_for_failed_and_missing_accounts(stack: Stack, output: Output) -> None:
    first, second = two_accounts(stack)
    second.configure(stale_bars_sessions=1)
    with pytest.raises(RunFailed, match=OTHER_ACCOUNT):
        stack.run()
    stack.notices()
    # A third account that never ran at all.
    stack.write_config(
        [
            AccountSpec(ACCOUNT, "alchemiser/a", first.url),
            AccountSpec(OTHER_ACCOUNT, "alchemiser/b", second.url),
            AccountSpec("acct-c", "alchemiser/c", first.url),
        ],
        name="three.toml",
    )
    output.read()

    result = watchdog.handler(WATCHDOG_EVENT, lambda_context("Watchdog"))

    assert result == {
        "day": DAY,
        "missing": [f"{OTHER_ACCOUNT} (failed)", "acct-c (no run at all)"],
    }
    assert output.metrics(output.read())["RunMissing"] == [1.0]
    (notice,) = stack.notices()
    assert notice.subject == f"[alchemiser] no successful run on {DAY}"
    assert OTHER_ACCOUNT in notice.json()["notice"]
    assert "acct-c" in notice.json()["notice"]
    assert ACCOUNT + " " not in notice.json()["notice"]


def test_the_deadline_counts_from_the_invocation_start(stack: Stack, output: Output) -> None:
    """Time spent before the run (the secret, the calendar) comes out of the run's own
    time: with 30.4 s left and 30 kept to tidy up, a 0.45 s calendar read (inside the
    0.5 s read timeout) leaves nothing to trade with, so nothing is placed
    (OUT_OF_TIME). A deadline started after the calendar read would have let it trade."""
    from alchemiser.devstack.runner import LocalContext  # noqa: PLC0415
    from alchemiser.handlers.rebalance import handler  # noqa: PLC0415

    exchange, _ = stack.single()
    exchange.add_fault(Fault(method="GET", path="/v2/calendar", delay_seconds=0.45))
    context = LocalContext("RebalanceFunction", 1024, 30)
    context._deadline += 0.4  # a timeout of 30.4 s
    with pytest.raises(RunFailed, match="OUT_OF_TIME"):
        handler(event(), context)
    output.read()
    assert exchange.fault_hits()
    assert exchange.engine.accepted_orders() == []
