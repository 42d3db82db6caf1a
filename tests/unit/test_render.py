"""The text report a person reads (CLI output, SNS email body and subject): a degraded
run says so next to its status, holdings left alone are listed, the attempt is named,
and earlier attempts' orders stand apart from this attempt's."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from alchemiser.adapters.aws.notifier import email_text, subject
from alchemiser.domain.account import UnmanagedPosition
from alchemiser.domain.decisions import TradingState
from alchemiser.domain.orders import Fill, OrderRecord, OrderStatus, Side
from alchemiser.domain.report import ErrorReport, Mode, RunReport, RunStatus
from alchemiser.render import render_report, status_text

D = Decimal
SHRUNK = "buy SPY shrunk by risk to 3 of 10 (POSITION_WEIGHT_EXCEEDS_MAX)"
SCALED = "buy TLT scaled down at execution: 2 of 5 placed"
ATTEMPT = "20260731T133012Z-5f3a9c"


def _order(client_order_id: str, symbol: str, qty: str, price: str = "100") -> OrderRecord:
    return OrderRecord(
        client_order_id=client_order_id,
        symbol=symbol,
        side=Side.BUY,
        qty=D(qty),
        status=OrderStatus.FILLED,
        filled_qty=D(qty),
        filled_avg_price=D(price),
        broker_order_id=f"b-{client_order_id}",
    )


def _report(status: RunStatus = RunStatus.COMPLETED, **fields: object) -> RunReport:
    values: dict[str, object] = {
        "run_id": "20260731-0123456789",
        "account": "ira",
        "as_of": date(2026, 7, 30),
        "trading_date": date(2026, 7, 31),
        "scheduled_time": None,
        "mode": Mode.PAPER,
        "trading_state": TradingState.ACTIVE,
        "status": status,
        **fields,
    }
    return RunReport.model_validate(values)


def _status_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("Status: "))


# --- degraded --------------------------------------------------------------------------


def test_a_degraded_run_says_so_next_to_its_status() -> None:
    text = render_report(_report(degraded=(SHRUNK, SCALED)))
    assert _status_line(text).startswith(f"Status: COMPLETED (degraded: {SHRUNK}; {SCALED})")


def test_a_clean_run_status_line_is_unchanged() -> None:
    assert _status_line(render_report(_report())).startswith("Status: COMPLETED  (")
    assert status_text(_report()) == "COMPLETED"


def test_the_subject_says_degraded() -> None:
    line = subject(_report(degraded=(SHRUNK,)))
    assert line.startswith("[alchemiser] ira 2026-07-31: COMPLETED (degraded: buy SPY shrunk")
    assert len(line) <= 100
    assert subject(_report()) == "[alchemiser] ira 2026-07-31: COMPLETED"


def test_an_incomplete_degraded_run_keeps_its_failure_reason_in_the_subject() -> None:
    failed = _report(
        RunStatus.INCOMPLETE,
        degraded=(SCALED,),
        errors=(ErrorReport(type="E", code="OUT_OF_TIME", message="deadline"),),
    )
    assert subject(failed) == (
        "[alchemiser] ira 2026-07-31: INCOMPLETE (degraded) - OUT_OF_TIME: deadline"
    )


def test_the_email_opens_with_the_degraded_reasons() -> None:
    text = email_text(_report(degraded=(SHRUNK, SCALED)))
    head = text.splitlines()[:3]
    assert head == [
        "Run 20260731-0123456789 for account ira: completed, degraded.",
        f"Degraded: {SHRUNK}",
        f"Degraded: {SCALED}",
    ]
    assert f"Status: COMPLETED (degraded: {SHRUNK}; {SCALED})" in text


# --- holdings left alone ---------------------------------------------------------------


def test_unmanaged_holdings_are_listed_as_left_alone() -> None:
    unmanaged = (
        UnmanagedPosition(
            symbol="BTC/USD", qty=D("0.25"), asset_class="crypto", market_value=D("15000.5")
        ),
        UnmanagedPosition(symbol="XYZ", qty=D(10), asset_class="us_equity"),
    )
    lines = render_report(_report(unmanaged=unmanaged)).splitlines()
    start = lines.index("Holdings left alone, not managed by the strategies (2):")
    assert lines[start + 1].split() == ["SYMBOL", "QTY", "CLASS", "VALUE"]
    assert lines[start + 2].split() == ["BTC/USD", "0.25", "crypto", "$15,000.50"]
    assert lines[start + 3].split() == ["XYZ", "10", "us_equity", "-"]


def test_no_unmanaged_section_without_unmanaged_holdings() -> None:
    assert "left alone, not managed" not in render_report(_report())


# --- attempts --------------------------------------------------------------------------


def test_the_attempt_is_named_in_the_header() -> None:
    header = render_report(_report(attempt_id=ATTEMPT)).splitlines()[0]
    assert header.startswith("Run 20260731-0123456789  mode=paper")
    assert header.endswith(f"attempt {ATTEMPT}")
    assert "attempt" not in render_report(_report()).splitlines()[0]


def test_earlier_attempts_orders_stand_apart_from_this_attempts() -> None:
    earlier = _order("20260731-0123456789-buy-SPY-1", "SPY", "3")
    this = _order("20260731-0123456789-buy-TLT-1", "TLT", "2", "90")
    fill = Fill(
        client_order_id=this.client_order_id,
        symbol="TLT",
        side=Side.BUY,
        qty=D(2),
        price=D(90),
        notional=D(180),
    )
    lines = render_report(
        _report(attempt_id=ATTEMPT, earlier_orders=(earlier,), orders=(this,), fills=(fill,))
    ).splitlines()
    first = lines.index("Orders placed by earlier attempts of this run (1), not placed again:")
    assert lines[first + 2].split()[:3] == [earlier.client_order_id, "filled", "3"]
    assert lines[first + 3] == ""
    mine = lines.index("Orders of this attempt:")
    assert mine > first
    assert lines[mine + 2].split()[:3] == [this.client_order_id, "filled", "2"]
    # The fills and turnover are this attempt's alone.
    assert lines[mine + 3] == "  1 fills, turnover $180.00"
    assert sum(earlier.client_order_id in line for line in lines) == 1


def test_an_attempt_that_only_found_earlier_orders_says_it_placed_none() -> None:
    earlier = _order("20260731-0123456789-buy-SPY-1", "SPY", "3")
    text = render_report(_report(earlier_orders=(earlier,)))
    assert "Orders of this attempt: none" in text
    assert "\nOrders:" not in text


def test_without_earlier_orders_the_orders_table_keeps_its_title() -> None:
    this = _order("20260731-0123456789-buy-TLT-1", "TLT", "2")
    lines = render_report(_report(orders=(this,))).splitlines()
    assert "Orders:" in lines
    assert not any("earlier attempts" in line or "this attempt" in line for line in lines)


def test_the_subject_stays_what_sns_accepts_whatever_the_reasons_say() -> None:
    # SNS refuses a Subject with line breaks or anything but printable ASCII.
    line = subject(_report(degraded=("buy SPY 10 → 3 shares\nshrunk by risk",)))
    assert all(" " <= c <= "~" for c in line), line
    assert "buy SPY 10 ? 3 shares shrunk by risk" in line


# --- rebalance notes -------------------------------------------------------------------


def test_a_strategy_rebalance_note_is_shown_under_the_targets() -> None:
    note = "within corridor: largest drift 3.4 points < 5; keeping drifted weights"
    strategies = (
        {
            "name": "pair",
            "allocation": 0.6,
            "weights": {"SPY": 0.52, "TLT": 0.48},
            "rebalance": note,
        },
        {"name": "daily", "allocation": 0.4, "weights": {"QQQ": 1.0}},
    )
    targets = {
        "SPY": {"weight": 0.312, "attribution": {"pair": 0.312}},
        "TLT": {"weight": 0.288, "attribution": {"pair": 0.288}},
        "QQQ": {"weight": 0.4, "attribution": {"daily": 0.4}},
    }
    text = render_report(_report(strategies=strategies, targets=targets))
    assert f"  pair: {note}" in text.splitlines()
    assert not any(line.startswith("  daily:") for line in text.splitlines())
