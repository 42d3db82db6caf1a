"""A dry run: it reads, plans and reviews as a run does, records and reports it, and
submits and cancels nothing."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser import bootstrap
from alchemiser.adapters.aws.ledger import build_items
from alchemiser.adapters.aws.notifier import email_text, subject
from alchemiser.adapters.clock import ManualClock
from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.ledger import FileLedger, InMemoryLedger
from alchemiser.adapters.readonly import ReadOnlyBroker
from alchemiser.cli.main import main
from alchemiser.config import load_config
from alchemiser.domain.orders import OrderRecord, OrderRequest, OrderStatus, Side
from alchemiser.domain.report import RunReport, RunStatus
from alchemiser.errors import ConfigError, DryRunRefused
from alchemiser.handlers.events import HandlerSettings
from alchemiser.handlers.runtime import _dry_run
from alchemiser.handlers.watchdog import day_accounted_for
from alchemiser.render import render_report
from alchemiser.service import DRY_RUN_SUFFIX, RunRequest, make_run_id, rebalance
from tests.conftest import run_request
from tests.fakes import ScriptedBroker

PRICES = {"SPY": Decimal(520), "TLT": Decimal(94)}


def dry(run_id: str = "default-20260731-00000000aa") -> RunRequest:
    return dataclasses.replace(run_request(run_id), dry_run=True)


def test_the_read_only_broker_refuses_every_write(clock: ManualClock) -> None:
    inner = ScriptedBroker(clock, cash=Decimal(1000), prices=PRICES)
    broker = ReadOnlyBroker(inner)
    request = OrderRequest(client_order_id="a-buy-SPY-0", symbol="SPY", side=Side.BUY, qty=1)
    record = OrderRecord(
        client_order_id="a-buy-SPY-0",
        symbol="SPY",
        side=Side.BUY,
        qty=Decimal(1),
        status=OrderStatus.ACCEPTED,
    )
    with pytest.raises(DryRunRefused, match="refusing to submit buy SPY"):
        broker.submit_order(request)
    with pytest.raises(DryRunRefused, match="refusing to cancel"):
        broker.cancel_order(record)
    with pytest.raises(DryRunRefused, match="refusing to close"):
        broker.close_position("SPY", Decimal("0.5"))
    assert inner.submissions == []
    assert inner.cancels == []
    # Reads go through.
    assert broker.snapshot().cash == Decimal(1000)
    assert broker.buying_power() == Decimal(1000)
    assert broker.fractionable(["SPY"]) == frozenset({"SPY"})
    assert broker.orders_of_run("a") == []


def test_a_dry_run_plans_reviews_and_places_nothing(make_deps, clock) -> None:
    broker = ScriptedBroker(clock, cash=Decimal(100_000), prices=PRICES)
    deps = make_deps(broker=broker)
    report = rebalance(dry(), deps)
    assert report.errors == ()
    assert report.status is RunStatus.DRY_RUN
    assert report.status.succeeded
    assert report.status.finished
    assert report.dry_run
    assert [(i.side, i.symbol) for i in report.intents] == [(Side.BUY, "SPY"), (Side.BUY, "TLT")]
    assert [d.approved_qty > 0 for d in report.decisions] == [True, True]
    assert report.orders == ()
    assert report.fills == ()
    assert report.account_after == report.account_before
    assert broker.submissions == []
    assert broker.cancels == []
    assert isinstance(deps.ledger, InMemoryLedger)
    assert [(r.status, r.dry_run) for r in deps.ledger.reports] == [
        (RunStatus.STARTED, True),
        (RunStatus.DRY_RUN, True),
    ]
    text = render_report(report)
    assert text.splitlines()[0] == "DRY RUN: nothing was submitted or cancelled"
    assert "A real run would place 2 order(s)" in text
    assert "Status: DRY_RUN" in text


def test_a_dry_run_never_cancels_an_earlier_attempts_open_order(make_deps, clock) -> None:
    run_id = "default-20260731-00000000aa"
    broker = ScriptedBroker(clock, cash=Decimal(100_000), prices=PRICES, fill_after_seconds=None)
    broker.submit_order(
        OrderRequest(client_order_id=f"{run_id}-buy-SPY-0", symbol="SPY", side=Side.BUY, qty=10)
    )
    report = rebalance(dry(run_id + DRY_RUN_SUFFIX), make_deps(broker=broker))
    assert report.status is RunStatus.DRY_RUN, report.errors
    assert broker.cancels == []
    assert broker.submissions == [f"{run_id}-buy-SPY-0"]  # only the earlier attempt's
    assert broker.orders[f"{run_id}-buy-SPY-0"].status is OrderStatus.ACCEPTED
    assert any("a real run would cancel it first" in n for n in report.notes)


def test_a_dry_run_with_a_foreign_open_order_fails_as_a_run_would(make_deps, clock) -> None:
    broker = ScriptedBroker(clock, cash=Decimal(100_000), prices=PRICES, fill_after_seconds=None)
    broker.submit_order(
        OrderRequest(client_order_id="manual-1", symbol="SPY", side=Side.BUY, qty=10)
    )
    report = rebalance(dry(), make_deps(broker=broker))
    assert report.status is RunStatus.FAILED
    assert report.dry_run
    assert report.errors[0].code == "OPEN_ORDERS_PRESENT"
    assert broker.cancels == []


def test_a_dry_run_with_nothing_to_do_is_a_noop(make_deps, clock) -> None:
    deps = make_deps()
    rebalance(run_request("default-20260731-00000000aa"), deps)
    report = rebalance(dry("default-20260731-00000000bb"), deps)
    assert report.status is RunStatus.NOOP
    assert report.dry_run
    assert "Status: NOOP (dry run)" in render_report(report)
    assert "A real run would place no order." in render_report(report)


def test_the_dry_run_id_is_its_own() -> None:
    trigger = datetime(2026, 7, 31, 13, 30, tzinfo=UTC)
    real = make_run_id("acct", trigger.date(), trigger)
    dry_id = make_run_id("acct", trigger.date(), trigger, dry_run=True)
    assert dry_id == real + "-dry"


def test_a_real_run_is_not_answered_from_a_dry_run(make_deps, clock) -> None:
    trigger = datetime(2026, 7, 31, 13, 30, tzinfo=UTC)
    real_id = make_run_id("default", trigger.date(), trigger)
    dry_id = make_run_id("default", trigger.date(), trigger, dry_run=True)
    broker = ScriptedBroker(clock, cash=Decimal(100_000), prices=PRICES)
    deps = make_deps(broker=broker)
    assert rebalance(dry(dry_id), deps).status is RunStatus.DRY_RUN
    real = rebalance(run_request(real_id), deps)
    assert real.status is RunStatus.COMPLETED
    assert not real.dry_run
    assert sorted(broker.submissions) == [f"{real_id}-buy-SPY-0", f"{real_id}-buy-TLT-0"]


def test_dry_run_in_the_config_wraps_the_broker_and_names_the_run(
    tmp_path: Path, store: FilePriceStore
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        'dry_run = true\n[[strategies]]\nname = "f"\nallocation = 1.0\n'
        "weights = { SPY = 0.6, TLT = 0.4 }\n"
    )
    config = load_config(path)
    clock = ManualClock(datetime(2026, 8, 1, tzinfo=UTC))
    request = bootstrap.manual_request(config, store, clock.now())
    assert request.dry_run
    assert request.run_id.endswith("-dry")
    deps = bootstrap.build_run(config, store, request, clock=clock, state_dir=tmp_path)
    assert isinstance(deps.broker, ReadOnlyBroker)
    report = rebalance(request, deps)
    assert report.status is RunStatus.DRY_RUN
    assert not bootstrap.sim_state_path(config, tmp_path).exists()
    (row,) = [r for r in FileLedger(tmp_path / "ledger.jsonl").reports() if r.status.finished]
    assert row.dry_run
    assert row.status is RunStatus.DRY_RUN


def test_run_dry_run_leaves_the_simulated_account_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    assert main(["run", "--state-dir", str(state), "--as-of", "2026-07-01"]) == 0
    (account,) = state.glob("sim-*.json")
    before = account.read_bytes()
    capsys.readouterr()
    assert main(["run", "--state-dir", str(state), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("DRY RUN: nothing was submitted or cancelled\n")
    assert "A real run would place" in out
    assert account.read_bytes() == before
    assert main(["run", "--state-dir", str(state), "--dry-run", "--json"]) == 0
    assert '"dry_run": true' in capsys.readouterr().out


def test_handler_settings_read_alchemiser_dry_run() -> None:
    assert not HandlerSettings.from_env({}).dry_run
    assert HandlerSettings.from_env({"ALCHEMISER_DRY_RUN": "true"}).dry_run
    assert not HandlerSettings.from_env({"ALCHEMISER_DRY_RUN": "false"}).dry_run
    with pytest.raises(ConfigError, match="ALCHEMISER_DRY_RUN"):
        HandlerSettings.from_env({"ALCHEMISER_DRY_RUN": "yes"})


def _report(status: RunStatus, *, dry_run: bool) -> RunReport:
    return RunReport.model_validate(
        {
            "run_id": "a-20260731-00000000aa-dry",
            "attempt_id": "20260731T133000000000Z-abcdef",
            "as_of": "2026-07-30",
            "trading_date": "2026-07-31",
            "scheduled_time": None,
            "mode": "paper",
            "trading_state": "ACTIVE",
            "status": status.value,
            "dry_run": dry_run,
        }
    )


def test_the_watchdog_counts_a_dry_run_only_while_the_account_runs_dry() -> None:
    assert day_accounted_for([_report(RunStatus.DRY_RUN, dry_run=True)], dry_run=True)
    assert not day_accounted_for([_report(RunStatus.FAILED, dry_run=True)], dry_run=True)
    # Once the account trades for real, the morning's dry run is not the day's run.
    assert not day_accounted_for([_report(RunStatus.DRY_RUN, dry_run=True)])
    assert not day_accounted_for([_report(RunStatus.NOOP, dry_run=True)])
    assert day_accounted_for([_report(RunStatus.NOOP, dry_run=False)])


def test_the_dynamodb_item_says_dry_run() -> None:
    at = datetime(2026, 7, 31, 14, tzinfo=UTC)
    items = build_items(_report(RunStatus.DRY_RUN, dry_run=True), at)
    assert items.run["dry_run"] == {"BOOL": True}
    assert items.run["status"] == {"S": "dry_run"}
    assert "dry_run" not in build_items(_report(RunStatus.COMPLETED, dry_run=False), at).run


def test_the_email_says_dry_run() -> None:
    planned = _report(RunStatus.DRY_RUN, dry_run=True)
    assert subject(planned).endswith(": DRY_RUN")
    assert "dry run: nothing was submitted or cancelled" in email_text(planned)
    assert "DRY RUN: nothing was submitted or cancelled" in email_text(planned)
    failed = _report(RunStatus.FAILED, dry_run=True)
    assert "FAILED (dry run) - " in subject(failed)
    assert "(dry run)" not in subject(_report(RunStatus.FAILED, dry_run=False))


def test_the_lambda_runs_an_account_dry_when_either_says_so(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[[strategies]]\nname = "f"\nallocation = 1.0\nweights = { SPY = 1.0 }\n'
        '[[accounts]]\naccount = "a"\n[[accounts]]\naccount = "b"\ndry_run = true\n'
    )
    config = load_config(path)
    wet, dry_env = HandlerSettings(), HandlerSettings(dry_run=True)
    assert not _dry_run(config, "a", wet)
    assert _dry_run(config, "b", wet)
    assert _dry_run(config, "a", dry_env)
    assert not _dry_run(config, "missing", wet)  # the run itself says why it cannot


def test_a_dry_run_with_reset_does_not_wipe_the_simulated_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``run --dry-run`` promises to change nothing; with ``--reset`` it deletes the
    simulated account before it plans."""
    state = tmp_path / "state"
    assert main(["run", "--state-dir", str(state), "--as-of", "2026-07-01"]) == 0
    (account,) = state.glob("sim-*.json")
    before = account.read_bytes()
    capsys.readouterr()
    code = main(["run", "--state-dir", str(state), "--dry-run", "--reset"])
    assert code == 2
    assert "--reset would delete the simulated account" in capsys.readouterr().err
    assert account.exists()
    assert account.read_bytes() == before
