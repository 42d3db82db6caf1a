"""The DynamoDB ledger against moto: the table as template.yaml declares it, real reports
from the simulated broker, and the ``report`` command on top."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from alchemiser import bootstrap
from alchemiser.adapters.aws.ledger import DynamoLedger, build_items, instant
from alchemiser.adapters.clock import ManualClock
from alchemiser.cli import ledger as cli_ledger
from alchemiser.config import load_config
from alchemiser.domain.orders import Fill, OrderRecord, OrderStatus, Side
from alchemiser.domain.report import ErrorReport, RunReport, RunStatus
from alchemiser.errors import AlchemiserError, ConfigError
from alchemiser.service import rebalance

pytestmark = pytest.mark.integration

TABLE = "alchemiser-ledger-test"
REGION = "us-east-1"
FAKE_KEY_ID = "AKIAFAKELEDGERKEY000"
FAKE_SECRET = "fake-ledger-secret-never-printed"
DAY = date(2026, 7, 31)


def create_table(client: Any, name: str = TABLE) -> None:
    """Exactly the schema of docs and template.yaml."""
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": n, "AttributeType": "S"}
            for n in ("pk", "sk", "account_pk", "strategy_pk", "run_sk")
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": partition, "KeyType": "HASH"},
                    {"AttributeName": "run_sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, partition in (("by_account", "account_pk"), ("by_strategy", "strategy_pk"))
        ],
    )


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("AWS_", "ALCHEMISER_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def dynamodb(aws_env: None) -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client)
        yield client


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 7, 31, 14, 0, tzinfo=UTC))


@pytest.fixture
def ledger(dynamodb: Any, clock: ManualClock) -> DynamoLedger:
    return DynamoLedger(TABLE, dynamodb, clock=clock)


@pytest.fixture(scope="module")
def report() -> RunReport:
    """A real run of the embedded default config on the simulated broker."""
    config = load_config()
    market = bootstrap.market_data(config)
    run_clock = ManualClock(datetime(2026, 8, 1, 1, 0, tzinfo=UTC))
    request = bootstrap.manual_request(config, market, run_clock.now())
    deps = bootstrap.build(
        config, market=market, session=request.trading_date, clock=run_clock, state_dir=None
    )
    result = rebalance(request, deps)
    assert result.status is RunStatus.COMPLETED
    assert result.orders
    assert result.fills
    assert len(result.strategies) == 3
    # The service names each attempt (start time, random hex); the tests name the
    # attempts they need themselves, and otherwise store the one legacy attempt.
    return result.model_copy(update={"attempt_id": ""})


def variant(report: RunReport, run_id: str, **changes: Any) -> RunReport:
    return RunReport.model_validate({**report.model_dump(), "run_id": run_id, **changes})


def failed(report: RunReport, run_id: str, **changes: Any) -> RunReport:
    error = ErrorReport(type="DataError", code="DATA_STALE", message="SPY has no close")
    return variant(report, run_id, status=RunStatus.FAILED, errors=(error,), **changes)


def items_of(client: Any, run_id: str) -> list[dict[str, Any]]:
    response = client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}},
    )
    return list(response["Items"])


def with_orders(report: RunReport, run_id: str, count: int) -> RunReport:
    symbols = [f"S{i:03d}" for i in range(count)]
    orders = tuple(
        OrderRecord(
            client_order_id=f"{run_id}-buy-{s}-0",
            symbol=s,
            side=Side.BUY,
            qty=Decimal("1.5"),
            status=OrderStatus.FILLED,
            filled_qty=Decimal("1.5"),
            filled_avg_price=Decimal("10.25"),
            broker_order_id=f"b-{s}",
        )
        for s in symbols
    )
    fills = tuple(
        Fill(
            client_order_id=o.client_order_id,
            symbol=o.symbol,
            side=o.side,
            qty=o.qty,
            price=Decimal("10.25"),
            notional=Decimal("15.375"),
        )
        for o in orders
    )
    return report.model_copy(update={"run_id": run_id, "orders": orders, "fills": fills})


# -- the ledger --------------------------------------------------------------------


def test_a_recorded_run_reads_back_equal(
    ledger: DynamoLedger, dynamodb: Any, report: RunReport
) -> None:
    assert ledger.get_run(report.run_id) is None
    assert ledger.attempts(report.run_id) == []
    assert ledger.finished(report.run_id) is None
    report = report.model_copy(update={"attempt_id": FIRST_ATTEMPT})
    ledger.record(report)
    assert ledger.get_run(report.run_id) == report
    assert ledger.attempts(report.run_id) == [report]
    assert ledger.finished(report.run_id) == report
    items = {i["sk"]["S"]: i for i in items_of(dynamodb, report.run_id)}
    mine = f"ATTEMPT#{FIRST_ATTEMPT}#"
    expected = {f"RUN#{FIRST_ATTEMPT}"} | {f"{mine}STRATEGY#{s.name}" for s in report.strategies}
    expected |= {f"{mine}ORDER#{o.client_order_id}" for o in report.orders}
    assert set(items) == expected
    run = items[f"RUN#{FIRST_ATTEMPT}"]
    assert run["account_pk"] == {"S": "ACCOUNT#demo"}
    assert run["run_sk"]["S"] == f"{report.trading_date}#{FIRST_ATTEMPT}#{report.run_id}"
    assert run["attempt_id"] == {"S": FIRST_ATTEMPT}
    assert run["status"] == {"S": "completed"}
    assert "strategy_pk" not in run
    strategy = items[f"{mine}STRATEGY#tecl"]
    assert strategy["strategy_pk"] == {"S": "STRATEGY#tecl"}
    assert strategy["run_sk"] == run["run_sk"]
    assert "account_pk" not in strategy
    order = report.orders[0]
    stored = items[f"{mine}ORDER#{order.client_order_id}"]
    assert stored["filled_qty"] == {"S": str(order.filled_qty)}
    assert stored["fills"]["L"][0]["M"]["notional"]["S"] == str(report.fills[0].notional)


def test_last_runs_are_newest_first_and_per_account(
    ledger: DynamoLedger, clock: ManualClock, report: RunReport
) -> None:
    older_day = variant(report, "20260730-aaaaaaaaaa", trading_date=date(2026, 7, 30))
    first = variant(report, "20260731-aaaaaaaaaa", trading_date=DAY)
    second = failed(report, "20260731-bbbbbbbbbb", trading_date=DAY)
    other = variant(report, "20260731-cccccccccc", trading_date=DAY, account="ira")
    for run in (first, other, second):
        ledger.record(run)
        clock.advance(60)
    ledger.record(older_day)  # recorded last, but an earlier trading date
    assert [r.run_id for r in ledger.last_runs("demo", 10)] == [
        second.run_id,
        first.run_id,
        older_day.run_id,
    ]
    assert ledger.last_runs("demo", 2) == [second, first]
    assert ledger.last_runs("ira", 5) == [other]
    assert ledger.last_runs("nobody", 5) == []
    assert ledger.last_runs("demo", 0) == []


def test_run_on_lists_one_account_day(
    ledger: DynamoLedger, clock: ManualClock, report: RunReport
) -> None:
    early = failed(report, "20260731-1111111111", trading_date=DAY)
    late = variant(report, "20260731-2222222222", trading_date=DAY, status=RunStatus.SKIPPED)
    for run in (
        early,
        variant(report, "20260730-3333333333", trading_date=date(2026, 7, 30)),
        variant(report, "20260731-4444444444", trading_date=DAY, account="ira"),
        late,
    ):
        ledger.record(run)
        clock.advance(5)
    runs = ledger.run_on("demo", DAY)
    assert [r.run_id for r in runs] == [late.run_id, early.run_id]
    assert any(r.status.succeeded for r in runs)
    assert ledger.run_on("demo", date(2026, 8, 3)) == []
    assert [r.run_id for r in ledger.run_on("ira", DAY)] == ["20260731-4444444444"]


def test_runs_for_strategy(ledger: DynamoLedger, clock: ManualClock, report: RunReport) -> None:
    ledger.record(variant(report, "20260730-aaaaaaaaaa", trading_date=date(2026, 7, 30)))
    clock.advance(60)
    ledger.record(failed(report, "20260731-bbbbbbbbbb", trading_date=DAY, account="ira"))
    runs = ledger.runs_for_strategy("tecl", 5)
    assert [(r.run_id, r.account) for r in runs] == [
        ("20260731-bbbbbbbbbb", "ira"),
        ("20260730-aaaaaaaaaa", "demo"),
    ]
    tecl = next(s for s in report.strategies if s.name == "tecl")
    newest, oldest = runs
    assert newest.allocation == tecl.allocation == 0.5
    assert newest.weights == dict(tecl.weights)
    assert newest.status is RunStatus.FAILED
    assert newest.failure_reason == "DATA_STALE: SPY has no close"
    assert oldest.failure_reason is None
    mine = [o for o in report.orders if o.symbol in tecl.weights]
    assert oldest.orders == len(mine)
    assert oldest.turnover == sum(
        (f.notional for f in report.fills if f.symbol in tecl.weights), Decimal(0)
    )
    assert ledger.runs_for_strategy("tecl", 1) == [newest]
    assert ledger.runs_for_strategy("unknown", 5) == []


def test_re_recording_an_attempt_replaces_only_that_attempt(
    ledger: DynamoLedger, dynamodb: Any, clock: ManualClock, report: RunReport
) -> None:
    first_attempt = failed(report, report.run_id, attempt_id=FIRST_ATTEMPT)
    ledger.record(first_attempt)
    clock.advance(30)
    started = variant(
        report,
        report.run_id,
        attempt_id=SECOND_ATTEMPT,
        status=RunStatus.STARTED,
        strategies=report.strategies,
        orders=(),
        fills=(),
    )
    ledger.record(started)
    assert ledger.get_run(report.run_id) == started
    clock.advance(30)
    final = variant(
        report, report.run_id, attempt_id=SECOND_ATTEMPT, strategies=report.strategies[:1]
    )
    ledger.record(final)
    assert ledger.attempts(report.run_id) == [first_attempt, final]
    assert ledger.get_run(report.run_id) == final
    assert ledger.last_runs("demo", 5) == [final, first_attempt]
    keys = {i["sk"]["S"] for i in items_of(dynamodb, report.run_id)}
    # The second attempt's strategy the final report lacks is gone; the first attempt's
    # items are all still there.
    assert f"ATTEMPT#{SECOND_ATTEMPT}#STRATEGY#{report.strategies[1].name}" not in keys
    assert {f"ATTEMPT#{FIRST_ATTEMPT}#STRATEGY#{s.name}" for s in report.strategies} <= keys
    assert {f"ATTEMPT#{FIRST_ATTEMPT}#ORDER#{o.client_order_id}" for o in report.orders} <= keys
    assert [r.attempt_id for r in ledger.runs_for_strategy(report.strategies[1].name, 5)] == [
        FIRST_ATTEMPT
    ]
    assert [r.attempt_id for r in ledger.runs_for_strategy(report.strategies[0].name, 5)] == [
        SECOND_ATTEMPT,
        FIRST_ATTEMPT,
    ]
    assert ledger.run_on("demo", report.trading_date) == [final, first_attempt]


def test_a_run_of_more_than_100_items_is_stored_whole(
    dynamodb: Any, clock: ManualClock, report: RunReport
) -> None:
    calls: list[int] = []
    deleted: list[str] = []

    class Counting:
        """The real client, counting the items of each transaction."""

        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def transact_write_items(self, **kwargs: Any) -> Any:
            calls.append(len(kwargs["TransactItems"]))
            deleted.extend(
                op["Delete"]["Key"]["sk"]["S"] for op in kwargs["TransactItems"] if "Delete" in op
            )
            assert any(
                "Put" in op and op["Put"]["Item"]["sk"]["S"].startswith("RUN#")
                for op in kwargs["TransactItems"]
            ) == (len(calls) == 2)
            return dynamodb.transact_write_items(**kwargs)

    ledger = DynamoLedger(TABLE, Counting(), clock=clock)
    big = with_orders(report, "20260731-bbbbbbbbbb", 150)
    ledger.record(big)
    assert calls == [100, 54]  # 3 strategies + 150 orders, then the run item last
    assert ledger.get_run(big.run_id) == big
    assert len(items_of(dynamodb, big.run_id)) == 154
    assert ledger.last_runs("demo", 1) == [big]
    # A retry with 120 orders of its own: a new attempt, and nothing of the first deleted.
    calls.clear()
    retry = with_orders(report, big.run_id, 120).model_copy(update={"attempt_id": FIRST_ATTEMPT})
    ledger.record(retry)
    assert calls == [100, 24]
    assert deleted == []
    assert ledger.attempts(big.run_id) == [big, retry]
    assert len(items_of(dynamodb, big.run_id)) == 154 + 124


def test_a_report_too_big_for_one_item_is_chunked(
    ledger: DynamoLedger, dynamodb: Any, clock: ManualClock, report: RunReport
) -> None:
    noise = tuple(os.urandom(50_000).hex() for _ in range(10))  # ~1 MB, ~500 KB compressed
    big = variant(report, "20260731-cccccccccc", notes=noise)
    ledger.record(big)
    chunks = [i for i in items_of(dynamodb, big.run_id) if "#REPORT#" in i["sk"]["S"]]
    assert len(chunks) == 2
    assert ledger.get_run(big.run_id) == big
    assert ledger.last_runs("demo", 1) == [big]
    clock.advance(10)
    smaller = variant(big, big.run_id, notes=())
    ledger.record(smaller)  # the same attempt again: its old chunks go with the re-record
    assert ledger.get_run(big.run_id) == smaller
    assert not [i for i in items_of(dynamodb, big.run_id) if "#REPORT#" in i["sk"]["S"]]
    clock.advance(10)
    chunked_retry = variant(big, big.run_id, attempt_id=FIRST_ATTEMPT)
    ledger.record(chunked_retry)
    clock.advance(10)
    ledger.record(variant(big, big.run_id, attempt_id=SECOND_ATTEMPT, notes=()))
    # A later attempt does not touch an earlier one's chunks.
    assert ledger.attempts(big.run_id) == [smaller, chunked_retry, ledger.get_run(big.run_id)]


def test_a_missing_table_fails_the_write(dynamodb: Any, report: RunReport) -> None:
    ledger = DynamoLedger("no-such-table", dynamodb)
    with pytest.raises(AlchemiserError) as caught:
        ledger.record(report)
    assert caught.value.code == "LEDGER_UNAVAILABLE"
    assert "no-such-table" in caught.value.message
    assert "ResourceNotFoundException" in caught.value.message
    with pytest.raises(AlchemiserError, match="no-such-table") as read:
        ledger.last_runs("demo", 5)
    assert read.value.code == "LEDGER_UNAVAILABLE"


def test_an_unreachable_endpoint_fails_the_write(aws_env: None, report: RunReport) -> None:
    client = boto3.client(
        "dynamodb",
        region_name=REGION,
        endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"max_attempts": 0}, connect_timeout=1, read_timeout=1),
    )
    with pytest.raises(AlchemiserError) as caught:
        DynamoLedger(TABLE, client).record(report)
    assert caught.value.code == "LEDGER_UNAVAILABLE"
    assert "EndpointConnectionError" in caught.value.message
    assert FAKE_SECRET not in caught.value.message


def test_a_malformed_item_is_reported(ledger: DynamoLedger, dynamodb: Any) -> None:
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": "RUN#20260731-dddddddddd"},
            "sk": {"S": "RUN"},
            "account_pk": {"S": "ACCOUNT#demo"},
            "run_sk": {"S": "2026-07-31#2026-07-31T14:00:00.000000+00:00#20260731-dddddddddd"},
            "report": {"B": b"not zlib"},
        },
    )
    for read in (
        lambda: ledger.get_run("20260731-dddddddddd"),
        lambda: ledger.last_runs("demo", 1),
        lambda: ledger.run_on("demo", DAY),
    ):
        with pytest.raises(AlchemiserError, match="RUN#20260731-dddddddddd") as caught:
            read()
        assert caught.value.code == "LEDGER_MALFORMED"


# -- alchemiser report ---------------------------------------------------------------


def report_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="alchemiser")
    cli_ledger.add_commands(parser.add_subparsers(dest="command", required=True))
    return cli_ledger.run(parser.parse_args(["report", *argv]))


@pytest.fixture
def recorded(
    ledger: DynamoLedger, clock: ManualClock, report: RunReport, monkeypatch: pytest.MonkeyPatch
) -> list[RunReport]:
    """Four runs of the default account (the newest failed) and one of another."""
    monkeypatch.setenv("ALCHEMISER_LEDGER_TABLE", TABLE)
    runs = [
        variant(report, "20260728-0000000001", trading_date=date(2026, 7, 28)),
        variant(report, "20260729-0000000002", trading_date=date(2026, 7, 29)),
        variant(report, "20260730-0000000003", trading_date=date(2026, 7, 30)),
        failed(report, "20260731-0000000004", trading_date=DAY),
        variant(report, "20260731-0000000005", trading_date=DAY, account="ira"),
    ]
    for run in runs:
        ledger.record(run)
        clock.advance(60)
    return runs


def no_secrets(*outputs: str) -> None:
    for text in outputs:
        assert FAKE_KEY_ID not in text
        assert FAKE_SECRET not in text


def cells(line: str) -> tuple[list[str], str]:
    """One line of ``report``'s table: its columns (the one status of two words, "dry
    run", kept whole), and the reason after `` -- ``."""
    columns, _, why = line.partition("  -- ")
    return [c.replace("\0", " ") for c in columns.replace("dry run", "dry\0run").split()], why


def rows_of(lines: list[str]) -> list[tuple[list[str], str]]:
    """The table's rows, each with its reason (on the line below it, after ``--``)."""
    rows: list[tuple[list[str], str]] = []
    for line in lines:
        if line.lstrip().startswith("-- "):
            rows[-1] = (rows[-1][0], line.lstrip().removeprefix("-- "))
        else:
            rows.append(cells(line))
    return rows


def test_report_last(recorded: list[RunReport], capsys: pytest.CaptureFixture[str]) -> None:
    assert report_cli("--last", "3") == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert (
        lines[0] == f"Last 3 attempt(s) of account 'demo' in ledger table {TABLE!r}, newest first:"
    )
    assert cells(lines[1])[0] == [
        "DATE",
        "STATUS",
        "ORDERS",
        "TRADED",
        "BEFORE",
        "AFTER",
        "P&L",
        "%",
        "RUN",
    ]
    rows = rows_of(lines[2:])
    assert [columns[-1] for columns, _ in rows] == [
        "20260731-0000000004",
        "20260730-0000000003",
        "20260729-0000000002",
    ]
    assert rows[0][0][:2] == ["2026-07-31", "failed"]
    assert rows[0][1] == "DATA_STALE: SPY has no close"
    shown = recorded[2]
    assert shown.account_before is not None
    assert shown.account_after is not None
    delta = shown.account_after.equity - shown.account_before.equity
    assert rows[1][0][1:8] == [
        "completed",
        str(len(shown.orders)),
        f"${shown.turnover:,.0f}",
        f"${shown.account_before.equity:,.0f}",
        f"${shown.account_after.equity:,.0f}",
        f"-${-delta:,.0f}" if delta < 0 else f"+${delta:,.0f}",
        f"{delta / shown.account_before.equity * 100:+.2f}%",
    ]
    assert rows[1][1] == ""  # it did all it was asked
    no_secrets(out, err)
    assert report_cli() == 0  # the default: the last five of the config's account
    assert len(rows_of(capsys.readouterr().out.splitlines()[2:])) == 4
    assert report_cli("--account", "ira", "--table", TABLE) == 0
    assert "20260731-0000000005" in capsys.readouterr().out
    assert report_cli("--account", "ira", "--ledger", TABLE) == 0
    assert "20260731-0000000005" in capsys.readouterr().out


def test_report_run(recorded: list[RunReport], capsys: pytest.CaptureFixture[str]) -> None:
    assert report_cli("--run", "20260731-0000000004") == 0
    out, err = capsys.readouterr()
    assert out.startswith("Run 20260731-0000000004: 1 attempt(s), oldest first\n")
    assert "== Attempt 1 of 1: -  failed  orders " in out
    assert "\nRun 20260731-0000000004  mode=sim" in out
    assert "ERROR DATA_STALE (DataError): SPY has no close" in out
    assert "Status: FAILED" in out
    no_secrets(out, err)
    assert report_cli("--run", "20260731-ffffffffff") == 1
    assert "no run 20260731-ffffffffff" in capsys.readouterr().err


def test_report_strategy(recorded: list[RunReport], capsys: pytest.CaptureFixture[str]) -> None:
    assert report_cli("--strategy", "nuclear", "--last", "2") == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0] == "Last 2 attempt(s) of strategy 'nuclear', newest first:"
    assert lines[1].startswith("2026-07-31  20260731-0000000005  ira  completed   attempt -")
    assert "allocation 30%" in lines[1]
    assert lines[2].startswith("2026-07-31  20260731-0000000004  demo  failed")
    assert lines[2].endswith("-- DATA_STALE: SPY has no close")
    no_secrets(out, err)


def test_report_json(recorded: list[RunReport], capsys: pytest.CaptureFixture[str]) -> None:
    assert report_cli("--last", "2", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [RunReport.model_validate(r) for r in listed] == [recorded[3], recorded[2]]
    assert report_cli("--run", recorded[0].run_id, "--json") == 0
    attempts = json.loads(capsys.readouterr().out)
    assert [RunReport.model_validate(r) for r in attempts] == [recorded[0]]
    assert report_cli("--strategy", "tecl", "--json") == 0
    runs = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in runs][:2] == ["20260731-0000000005", "20260731-0000000004"]
    assert runs[1]["failure_reason"] == "DATA_STALE: SPY has no close"


def test_report_shows_every_attempt(
    ledger: DynamoLedger,
    clock: ManualClock,
    report: RunReport,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ALCHEMISER_LEDGER_TABLE", TABLE)
    killed = started(report, FIRST_ATTEMPT)
    completed = report.model_copy(update={"attempt_id": SECOND_ATTEMPT})
    for attempt_report in (killed, completed):
        ledger.record(attempt_report)
        clock.advance(600)
    # A later run whose attempt is still going: started, not "never finished".
    running = started(variant(report, "20260801-0000000009", trading_date=date(2026, 8, 1)), "")
    ledger.record(running)

    assert report_cli("--last", "5") == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith("Last 3 attempt(s) of account 'demo' in ledger table ")
    rows = rows_of(lines[2:])
    assert rows[0][1] == ""  # still going: no reason
    assert rows[0][0][:4] == ["2026-08-01", "started", "0", "$0"]
    assert rows[0][0][5:] == ["-", "-", "-", "20260801-0000000009"]  # no account after
    assert rows[1][0][:3] == ["2026-07-31", "completed", str(len(report.orders))]
    assert rows[1][0][-1] == report.run_id
    assert rows[2][0][:3] == ["2026-07-31", "unfinished", "0"]
    assert rows[2][1] == "started, never finished"
    assert report_cli("--last", "1", "--account", "demo") == 0
    assert cells(capsys.readouterr().out.splitlines()[2]) == (rows[0][0], "")
    assert report_cli("--strategy", "tecl") == 0
    strategy_rows = capsys.readouterr().out.splitlines()[1:]
    assert [row.split("  attempt ")[1].split()[0] for row in strategy_rows] == [
        "-",
        SECOND_ATTEMPT,
        FIRST_ATTEMPT,
    ]
    assert "started, never finished" not in strategy_rows[0]
    assert "started, never finished" in strategy_rows[2]

    assert report_cli("--run", report.run_id) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"Run {report.run_id}: 2 attempt(s), oldest first\n")
    first, second = out.split("== Attempt ")[1:]
    assert first.startswith(f"1 of 2: {FIRST_ATTEMPT}  started, never finished  orders 0  ")
    assert "Status: STARTED" in first
    assert second.startswith(f"2 of 2: {SECOND_ATTEMPT}  completed  orders {len(report.orders)}")
    assert report.orders[0].client_order_id in second
    assert "Status: COMPLETED" in second
    no_secrets(out, err)
    assert report_cli("--run", report.run_id, "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [RunReport.model_validate(r) for r in listed] == [killed, completed]


def test_report_without_a_ledger(
    aws_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no .alchemiser/ledger.jsonl here
    with pytest.raises(
        AlchemiserError, match=r"no ledger file \.alchemiser/ledger\.jsonl"
    ) as caught:
        report_cli("--last", "3")
    assert caught.value.code == "LEDGER_UNAVAILABLE"
    with pytest.raises(SystemExit):
        report_cli("--last", "0")
    with pytest.raises(ConfigError, match="cannot be combined"):
        report_cli("--table", TABLE, "--run", "x", "--strategy", "tecl")


# -- attempts ------------------------------------------------------------------------

FIRST_ATTEMPT = "20260731T133000123456Z-a1b2c3"
SECOND_ATTEMPT = "20260731T134500654321Z-d4e5f6"


def attempt(report: RunReport, attempt_id: str, orders: int, turnover: Decimal) -> RunReport:
    """An attempt of ``report``'s run that placed ``orders`` filled orders worth ``turnover``."""
    traded = with_orders(report, report.run_id, orders)
    each = turnover / orders
    fills = tuple(f.model_copy(update={"notional": each}) for f in traded.fills)
    return traded.model_copy(update={"attempt_id": attempt_id, "fills": fills})


def test_a_retried_run_keeps_its_first_attempts_trades(
    ledger: DynamoLedger, dynamodb: Any, clock: ManualClock, report: RunReport
) -> None:
    first = attempt(report, FIRST_ATTEMPT, 5, Decimal("131873"))
    assert first.turnover == Decimal("131873")
    ledger.record(first)
    clock.advance(900)
    retried = attempt(report, SECOND_ATTEMPT, 1, Decimal("1000"))
    ledger.record(retried)
    assert ledger.last_runs("demo", 5) == [retried, first]
    stored_orders = [i for i in items_of(dynamodb, report.run_id) if "client_order_id" in i]
    assert len(stored_orders) == 6
    assert ledger.attempts(report.run_id) == [first, retried]
    assert ledger.get_run(report.run_id) == retried
    assert [(len(r.orders), r.turnover) for r in ledger.attempts(report.run_id)] == [
        (5, Decimal("131873")),
        (1, Decimal("1000")),
    ]


def started(report: RunReport, attempt_id: str) -> RunReport:
    return variant(
        report,
        report.run_id,
        attempt_id=attempt_id,
        status=RunStatus.STARTED,
        orders=(),
        fills=(),
        account_after=None,
    )


def test_a_started_attempt_is_replaced_by_its_final_report(
    ledger: DynamoLedger, clock: ManualClock, report: RunReport
) -> None:
    ledger.record(started(report, FIRST_ATTEMPT))
    assert ledger.finished(report.run_id) is None
    clock.advance(60)
    final = report.model_copy(update={"attempt_id": FIRST_ATTEMPT})
    ledger.record(final)
    assert ledger.attempts(report.run_id) == [final]
    assert ledger.finished(report.run_id) == final
    assert ledger.last_runs("demo", 5) == [final]


def test_an_attempt_killed_mid_run_stays_visible_and_is_not_finished(
    ledger: DynamoLedger, clock: ManualClock, report: RunReport
) -> None:
    killed = started(report, FIRST_ATTEMPT)
    ledger.record(killed)  # and the Lambda died before its final report
    clock.advance(300)
    assert not ledger.superseded(report.run_id, FIRST_ATTEMPT)
    retry_failed = failed(report, report.run_id, attempt_id=SECOND_ATTEMPT)
    ledger.record(retry_failed)
    assert ledger.attempts(report.run_id) == [killed, retry_failed]
    assert ledger.finished(report.run_id) is None
    assert ledger.superseded(report.run_id, FIRST_ATTEMPT)
    assert not ledger.superseded(report.run_id, SECOND_ATTEMPT)
    assert [r.status for r in ledger.run_on("demo", report.trading_date)] == [
        RunStatus.FAILED,
        RunStatus.STARTED,
    ]


def test_finished_is_the_latest_finished_attempt(
    ledger: DynamoLedger, clock: ManualClock, report: RunReport
) -> None:
    third = "20260731T140000000000Z-0a0b0c"
    done = report.model_copy(update={"attempt_id": FIRST_ATTEMPT})
    noop = variant(
        report, report.run_id, attempt_id=SECOND_ATTEMPT, status=RunStatus.NOOP, orders=()
    )
    for attempt_report in (done, noop, failed(report, report.run_id, attempt_id=third)):
        ledger.record(attempt_report)
        clock.advance(60)
    assert ledger.finished(report.run_id) == noop
    latest = ledger.get_run(report.run_id)
    assert latest is not None
    assert latest.status is RunStatus.FAILED


def test_the_attempt_order_is_the_attempt_ids_not_the_recording_order(
    ledger: DynamoLedger, clock: ManualClock, report: RunReport
) -> None:
    later = report.model_copy(update={"attempt_id": SECOND_ATTEMPT})
    earlier = failed(report, report.run_id, attempt_id=FIRST_ATTEMPT)
    ledger.record(later)
    clock.advance(60)
    ledger.record(earlier)  # e.g. a slow attempt's final report arriving last
    assert ledger.attempts(report.run_id) == [earlier, later]
    assert ledger.get_run(report.run_id) == later
    assert ledger.last_runs("demo", 5) == [later, earlier]


def test_legacy_run_items_are_still_read(
    ledger: DynamoLedger, dynamodb: Any, clock: ManualClock, report: RunReport
) -> None:
    """A run stored before attempts (``sk = RUN``, children without an attempt) reads as
    the run's first attempt; a new attempt is added next to it, never over it."""
    legacy = variant(
        report, report.run_id, notes=tuple(os.urandom(50_000).hex() for _ in range(10))
    )
    items = build_items(legacy, clock.now(), max_inline=100_000)
    old_layout = []
    for item in (items.run, *items.children):
        sk = item["sk"]["S"]
        sk = "RUN" if sk == "RUN#-" else sk.removeprefix("ATTEMPT#-#")
        old_layout.append({**item, "sk": {"S": sk}})
    old_layout[0]["run_sk"] = {"S": f"{legacy.trading_date}#{instant(clock.now())}#{legacy.run_id}"}
    for item in old_layout:
        dynamodb.put_item(TableName=TABLE, Item=item)
    assert any(i["sk"]["S"].startswith("REPORT#") for i in old_layout)
    assert ledger.get_run(report.run_id) == legacy
    assert ledger.finished(report.run_id) == legacy
    clock.advance(60)
    retry = failed(report, report.run_id, attempt_id=FIRST_ATTEMPT)
    ledger.record(retry)
    assert ledger.attempts(report.run_id) == [legacy, retry]
    assert ledger.last_runs("demo", 5) == [retry, legacy]
    assert ledger.superseded(report.run_id, "")
    assert ledger.finished(report.run_id) == legacy
    assert len(items_of(dynamodb, report.run_id)) == len(old_layout) + 1 + len(
        build_items(retry, clock.now()).children
    )
