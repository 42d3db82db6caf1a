"""The DynamoDB ledger's pure parts: the items a report becomes, how they are batched
into transactions, how they decode, and how AWS failures are named."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError, NoCredentialsError

from alchemiser.adapters.aws.ledger import (
    MAX_TRANSACTION_ITEMS,
    DynamoLedger,
    RunItems,
    build_items,
    decode_report,
    decode_strategy_run,
    instant,
    plan_transactions,
    run_sort_key,
    stored_chunk_prefix,
)
from alchemiser.domain.decisions import TradingState
from alchemiser.domain.orders import Fill, OrderRecord, OrderStatus, Side
from alchemiser.domain.report import ErrorReport, Mode, RunReport, RunStatus, StrategyReport
from alchemiser.errors import AlchemiserError

AT = datetime(2026, 7, 31, 13, 30, 5, tzinfo=UTC)
ATTEMPT = "20260731T133001000000Z-a1b2c3"


def make_report(status: RunStatus = RunStatus.COMPLETED, **changes: Any) -> RunReport:
    order = OrderRecord(
        client_order_id="20260731-0123456789-buy-SPY-0",
        symbol="SPY",
        side=Side.BUY,
        qty=Decimal("2"),
        status=OrderStatus.FILLED,
        filled_qty=Decimal("2"),
        filled_avg_price=Decimal("500.25"),
        submitted_at=AT,
    )
    fill = Fill(
        client_order_id=order.client_order_id,
        symbol="SPY",
        side=Side.BUY,
        qty=Decimal("2"),
        price=Decimal("500.25"),
        notional=Decimal("1000.50"),
    )
    values: dict[str, Any] = {
        "run_id": "20260731-0123456789",
        "attempt_id": ATTEMPT,
        "account": "main",
        "as_of": date(2026, 7, 30),
        "trading_date": date(2026, 7, 31),
        "scheduled_time": AT,
        "mode": Mode.PAPER,
        "trading_state": TradingState.ACTIVE,
        "status": status,
        "strategies": (
            StrategyReport(name="core", allocation=0.7, weights={"SPY": 0.6, "TLT": 1e-7}),
            StrategyReport(name="gold", allocation=0.3, weights={"GLD": 1.0}),
        ),
        "orders": (order,),
        "fills": (fill,),
        **changes,
    }
    return RunReport.model_validate(values)


def by_sk(items: RunItems) -> dict[str, dict[str, Any]]:
    return {i["sk"]["S"]: i for i in (items.run, *items.children)}


def test_instants_are_fixed_width_utc() -> None:
    eastern = timezone(timedelta(hours=-4))
    assert instant(datetime(2026, 7, 31, 9, 30, tzinfo=eastern)) == (
        "2026-07-31T13:30:00.000000+00:00"
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        instant(datetime(2026, 7, 31, 9, 30))


def test_a_report_becomes_an_attempt_item_and_one_item_per_strategy_and_order() -> None:
    report = make_report()
    items = by_sk(build_items(report, AT))
    mine = f"ATTEMPT#{ATTEMPT}#"
    assert set(items) == {
        f"RUN#{ATTEMPT}",
        f"{mine}STRATEGY#core",
        f"{mine}STRATEGY#gold",
        f"{mine}ORDER#{report.orders[0].client_order_id}",
    }
    run = items[f"RUN#{ATTEMPT}"]
    sort_key = f"2026-07-31#{ATTEMPT}#20260731-0123456789"
    assert run["pk"] == {"S": "RUN#20260731-0123456789"}
    assert run["attempt_id"] == {"S": ATTEMPT}
    assert run["recorded_at"] == {"S": "2026-07-31T13:30:05.000000+00:00"}
    assert run["account_pk"] == {"S": "ACCOUNT#main"}
    assert run["run_sk"] == {"S": sort_key}
    assert run["status"] == {"S": "completed"}
    assert run["mode"] == {"S": "paper"}
    assert run["turnover"] == {"S": "1000.50"}
    assert "reason" not in run
    assert "chunks" not in run
    assert decode_report(run) == report
    core = items[f"{mine}STRATEGY#core"]
    assert core["strategy_pk"] == {"S": "STRATEGY#core"}
    assert core["run_sk"] == {"S": sort_key}
    assert core["weights"] == {"M": {"SPY": {"N": "0.6"}, "TLT": {"N": "0.0000001"}}}
    assert core["allocation"] == {"N": "0.7"}
    assert core["orders"] == {"N": "1"}
    assert items[f"{mine}STRATEGY#gold"]["orders"] == {"N": "0"}
    assert "account_pk" not in core
    assert decode_strategy_run(core).attempt_id == ATTEMPT
    order = items[f"{mine}ORDER#{report.orders[0].client_order_id}"]
    assert order["attempt_id"] == {"S": ATTEMPT}
    assert order["filled_avg_price"] == {"S": "500.25"}
    assert order["submitted_at"] == {"S": "2026-07-31T13:30:05Z"}
    assert "reject_reason" not in order
    assert order["fills"] == {
        "L": [{"M": {"qty": {"S": "2"}, "price": {"S": "500.25"}, "notional": {"S": "1000.50"}}}]
    }
    assert "account_pk" not in order
    assert "strategy_pk" not in order


def test_a_failed_run_carries_its_reason() -> None:
    error = ErrorReport(type="BrokerError", code="BROKER_REJECTED", message="no")
    items = by_sk(build_items(make_report(RunStatus.FAILED, errors=(error,)), AT))
    assert items[f"RUN#{ATTEMPT}"]["reason"] == {"S": "BROKER_REJECTED: no"}
    run = decode_strategy_run(items[f"ATTEMPT#{ATTEMPT}#STRATEGY#core"])
    assert run.failure_reason == "BROKER_REJECTED: no"
    assert run.weights == {"SPY": 0.6, "TLT": 1e-7}
    assert run.recorded_at == AT
    assert run.turnover == Decimal("1000.50")


def test_a_big_report_is_split_into_chunks_keyed_by_attempt() -> None:
    report = make_report(notes=tuple(f"note {i}" for i in range(200)))
    items = build_items(report, AT, max_inline=50, chunk_bytes=100)
    prefix = f"ATTEMPT#{ATTEMPT}#REPORT#2026-07-31T13:30:05.000000+00:00#"
    chunks = [c for c in items.children if "#REPORT#" in c["sk"]["S"]]
    assert len(chunks) > 2
    assert all(c["sk"]["S"].startswith(prefix) for c in chunks)
    assert stored_chunk_prefix(items.run) == prefix
    assert "report" not in items.run
    assert items.run["chunks"] == {"N": str(len(chunks))}
    assert decode_report(items.run, list(reversed(chunks))) == report
    with pytest.raises(AlchemiserError, match="chunks expected") as caught:
        decode_report(items.run, chunks[1:])
    assert caught.value.code == "LEDGER_MALFORMED"


def puts_and_deletes(batch: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    puts = [op["Put"]["Item"]["sk"]["S"] for op in batch if "Put" in op]
    deletes = [op["Delete"]["Key"]["sk"]["S"] for op in batch if "Delete" in op]
    return puts, deletes


def test_a_small_run_is_one_transaction_with_its_deletions() -> None:
    items = build_items(make_report(), AT)
    old = f"ATTEMPT#{ATTEMPT}#ORDER#old"
    batches = plan_transactions("t", items, [("RUN#20260731-0123456789", old)])
    assert len(batches) == 1
    puts, deletes = puts_and_deletes(batches[0])
    assert puts[-1] == f"RUN#{ATTEMPT}"
    assert len(puts) == 4
    assert deletes == [old]
    assert all(op[kind]["TableName"] == "t" for op in batches[0] for kind in op)


def test_a_large_run_writes_its_run_item_in_the_last_transaction() -> None:
    run = {"pk": {"S": "RUN#r"}, "sk": {"S": "RUN"}}
    children = tuple({"pk": {"S": "RUN#r"}, "sk": {"S": f"ORDER#{i:03d}"}} for i in range(250))
    stale = [("RUN#r", f"ORDER#old{i:03d}") for i in range(60)]
    batches = plan_transactions("t", RunItems(run=run, children=children), stale)
    assert [len(b) for b in batches] == [100, 100, 100, 11]
    assert all(len(b) <= MAX_TRANSACTION_ITEMS for b in batches)
    seen = [puts_and_deletes(b) for b in batches]
    assert [i for i, (puts, _) in enumerate(seen) if "RUN" in puts] == [2]
    assert seen[2][0][-1] == "RUN"
    assert not seen[0][1]
    assert not seen[1][1]
    assert len(seen[2][1]) + len(seen[3][1]) == 60


def test_transactions_stay_under_the_size_limit() -> None:
    run = {"pk": {"S": "RUN#r"}, "sk": {"S": "RUN"}}
    blob = b"x" * 340_000
    children = tuple(
        {"pk": {"S": "RUN#r"}, "sk": {"S": f"REPORT#t#{i:04d}"}, "data": {"B": blob}}
        for i in range(25)
    )
    batches = plan_transactions("t", RunItems(run=run, children=children), [])
    assert [len(b) for b in batches] == [10, 10, 6]


def test_malformed_items_are_named() -> None:
    item = {"pk": {"S": "RUN#x"}, "sk": {"S": "STRATEGY#core"}, "run_id": {"S": "x"}}
    with pytest.raises(AlchemiserError, match="RUN#x / STRATEGY#core") as caught:
        decode_strategy_run(item)
    assert caught.value.code == "LEDGER_MALFORMED"
    with pytest.raises(AlchemiserError, match="malformed") as bad_json:
        decode_report({"pk": {"S": "RUN#x"}, "sk": {"S": "RUN"}, "report": {"B": b"x\x9c"}})
    assert bad_json.value.code == "LEDGER_MALFORMED"


class NoCredentials:
    """A DynamoDB client without credentials: every call fails before sending."""

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> Any:
            raise NoCredentialsError()

        return call


class FailingSecondTransaction:
    """A DynamoDB client whose second transaction is cancelled."""

    def __init__(self) -> None:
        self.transactions = 0

    def query(self, **kwargs: Any) -> dict[str, Any]:
        return {"Items": []}

    def transact_write_items(self, **kwargs: Any) -> dict[str, Any]:
        self.transactions += 1
        if self.transactions == 2:
            error = {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"}}
            raise ClientError(error, "TransactWriteItems")
        return {}


def test_no_credentials_is_ledger_unavailable() -> None:
    ledger = DynamoLedger("runs", NoCredentials())
    for call in (
        lambda: ledger.record(make_report()),
        lambda: ledger.get_run("x"),
        lambda: ledger.runs_for_strategy("core", 3),
    ):
        with pytest.raises(AlchemiserError, match="NoCredentialsError") as caught:
            call()
        assert caught.value.code == "LEDGER_UNAVAILABLE"
        assert "'runs'" in caught.value.message


def test_a_failed_final_transaction_fails_the_record() -> None:
    client = FailingSecondTransaction()
    many = tuple(
        OrderRecord(
            client_order_id=f"20260731-0123456789-buy-S{i:03d}-0",
            symbol=f"S{i:03d}",
            side=Side.BUY,
            qty=Decimal(1),
            status=OrderStatus.CANCELED,
        )
        for i in range(120)
    )
    with pytest.raises(AlchemiserError, match="transaction 2 of 2") as caught:
        DynamoLedger("runs", client).record(make_report(orders=many, fills=()))
    assert caught.value.code == "LEDGER_UNAVAILABLE"
    assert "TransactionCanceledException" in caught.value.message


def test_an_attempt_without_an_id_is_one_legacy_attempt_sorted_first() -> None:
    legacy = build_items(make_report(attempt_id=""), AT)
    assert legacy.run["sk"] == {"S": "RUN#-"}
    assert "attempt_id" not in legacy.run
    assert all(c["sk"]["S"].startswith("ATTEMPT#-#") for c in legacy.children)
    later = build_items(make_report(attempt_id="20260731T000000000000Z-000000"), AT)
    # The same day's legacy attempt sorts before every real one, in the table and the index.
    assert legacy.run["sk"]["S"] < later.run["sk"]["S"]
    assert legacy.run["run_sk"]["S"] < later.run["run_sk"]["S"]
    assert run_sort_key(date(2026, 7, 31), "", AT, "r") == (
        "2026-07-31#2026-07-31T13:30:05.000000+00:00#r"
    )


def test_attempt_keys_never_reach_another_attempts_items() -> None:
    first = build_items(make_report(attempt_id="20260731T133000000000Z-aaaaaa"), AT)
    second = build_items(make_report(attempt_id="20260731T133000000000Z-aaaaaa1"), AT)
    assert not first.keys() & second.keys()
    prefix = "ATTEMPT#20260731T133000000000Z-aaaaaa#"
    assert all(c["sk"]["S"].startswith(prefix) for c in first.children)
    assert not any(c["sk"]["S"].startswith(prefix) for c in second.children)
    with pytest.raises(AlchemiserError, match="contains '#'") as caught:
        build_items(make_report(attempt_id="a#ORDER"), AT)
    assert caught.value.code == "LEDGER_MALFORMED"


def test_a_legacy_run_item_keeps_its_chunk_prefix() -> None:
    run = {"pk": {"S": "RUN#r"}, "sk": {"S": "RUN"}, "recorded_at": {"S": "t"}}
    assert stored_chunk_prefix(run) == "REPORT#t#"
