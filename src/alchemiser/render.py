"""Plain-text rendering of a RunReport: the CLI's output and the body of the SNS email.

A person reads it to learn what a run did and, first of all, whether it did less than
its targets asked: the status line carries the degraded reasons. A dry run's report
says so in its first line, then lists what a real run would have ordered.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from alchemiser.domain.account import AccountValuation, UnmanagedPosition
from alchemiser.domain.orders import OrderRecord
from alchemiser.domain.report import RunReport, RunStatus


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells: Sequence[str]) -> str:
        return indent + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(headers), *(line(r) for r in rows)]


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


def _qty(value: Decimal) -> str:
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _account(title: str, account: AccountValuation | None) -> list[str]:
    if account is None:
        return [f"{title}: not available"]
    lines = [f"{title}: equity {_money(account.equity)}, cash {_money(account.cash)}"]
    if not account.positions:
        return [*lines, "  (no positions)"]
    rows = [
        [p.symbol, _qty(p.qty), _money(p.price), _money(p.market_value), f"{p.weight:.2%}"]
        for p in account.positions
    ]
    return lines + _table(["SYMBOL", "QTY", "PRICE", "VALUE", "WEIGHT"], rows)


def status_text(report: RunReport) -> str:
    """``COMPLETED``, or ``COMPLETED (degraded: why; why)`` for a run that did less than
    its targets asked: a "completed" that hides under-investment must not read as clean."""
    status = report.status.value.upper()
    if report.dry_run and report.status is not RunStatus.DRY_RUN:
        status += " (dry run)"
    if report.degraded:
        return f"{status} (degraded: {'; '.join(report.degraded)})"
    return status


def _orders(title: str, orders: Sequence[OrderRecord]) -> list[str]:
    rows = [
        [
            o.client_order_id,
            o.status.value,
            _qty(o.filled_qty),
            _money(o.filled_avg_price) if o.filled_avg_price is not None else "-",
            o.reject_reason or "",
        ]
        for o in orders
    ]
    return [title, *_table(["CLIENT ORDER ID", "STATUS", "FILLED", "AVG PRICE", "NOTE"], rows)]


def _unmanaged(holdings: Sequence[UnmanagedPosition]) -> list[str]:
    rows = [
        [
            h.symbol,
            _qty(h.qty),
            h.asset_class,
            _money(h.market_value) if h.market_value is not None else "-",
        ]
        for h in holdings
    ]
    title = f"Holdings left alone, not managed by the strategies ({len(holdings)}):"
    return [title, *_table(["SYMBOL", "QTY", "CLASS", "VALUE"], rows), ""]


def _dry_run(report: RunReport) -> list[str]:
    """The first lines of a dry run's report: that nothing happened, and what would."""
    planned = [d for d in report.decisions if d.approved_qty > 0]
    out = ["DRY RUN: nothing was submitted or cancelled", ""]
    if not planned:
        return [*out, "A real run would place no order.", ""]
    rows = [
        [
            d.side.value,
            d.symbol,
            _qty(d.approved_qty),
            _money(d.approved_qty * d.ref_price),
            d.verdict.value,
            d.client_order_id,
        ]
        for d in planned
    ]
    title = f"A real run would place {len(planned)} order(s) (as approved by risk):"
    return [
        *out,
        title,
        *_table(["SIDE", "SYMBOL", "QTY", "NOTIONAL", "VERDICT", "CLIENT ORDER ID"], rows),
        "",
    ]


def render_report(report: RunReport) -> str:
    as_of = report.as_of.isoformat() if report.as_of else "-"
    attempt = f"  attempt {report.attempt_id}" if report.attempt_id else ""
    out = [*_dry_run(report)] if report.dry_run else []
    out += [
        f"Run {report.run_id}  mode={report.mode.value}  data as of {as_of}  "
        f"trading {report.trading_date.isoformat()}  state={report.trading_state.value}"
        f"{attempt}",
        "",
    ]
    if report.targets:
        names = [s.name for s in report.strategies]
        rows = [
            [
                symbol,
                f"{t.weight:.2%}",
                *(f"{t.attribution[n]:.2%}" if n in t.attribution else "-" for n in names),
            ]
            for symbol, t in report.targets.items()
        ]
        unallocated = 1 - sum(t.weight for t in report.targets.values())
        rows.append(["(cash)", f"{unallocated:.2%}", *("" for _ in names)])
        allocations = ", ".join(f"{s.name} {s.allocation:.0%}" for s in report.strategies)
        out += [f"Target weights ({allocations}):", *_table(["SYMBOL", "TARGET", *names], rows)]
        if report.cash_buffer:
            out.append(
                f"  plus a cash buffer of {report.cash_buffer:.2%} of equity: "
                f"targets apply to the other {1 - report.cash_buffer:.2%}"
            )
        out += [f"  {s.name}: {s.rebalance}" for s in report.strategies if s.rebalance]
        out.append("")
    out += [*_account("Account before", report.account_before), ""]
    if report.unmanaged:
        out += _unmanaged(report.unmanaged)
    if report.intents:
        rows = [
            [
                i.side.value,
                i.symbol,
                _qty(i.qty),
                _money(i.ref_price),
                _money(i.notional),
                i.kind.value,
                i.reason,
            ]
            for i in report.intents
        ]
        headers = ["SIDE", "SYMBOL", "QTY", "REF PRICE", "NOTIONAL", "KIND", "WHY"]
        out += [f"Order intents ({len(report.intents)}):", *_table(headers, rows), ""]
    else:
        out += ["Order intents: none", ""]
    if report.holds:
        rows = [[h.symbol, h.reason.value, h.detail] for h in report.holds]
        out += ["Left alone:", *_table(["SYMBOL", "REASON", "DETAIL"], rows), ""]
    if report.decisions:
        rows = [
            [
                d.verdict.value.upper(),
                d.side.value,
                d.symbol,
                _qty(d.approved_qty),
                ",".join(d.codes) or "-",
                d.reason,
            ]
            for d in report.decisions
        ]
        out += [
            "Risk review:",
            *_table(["VERDICT", "SIDE", "SYMBOL", "APPROVED QTY", "CODES", "REASON"], rows),
            "",
        ]
    if report.adjustments:
        rows = [
            [a.side.value, a.symbol, _qty(a.approved_qty), _qty(a.placed_qty), a.reason]
            for a in report.adjustments
        ]
        out += ["Adjusted at execution:"]
        out += [*_table(["SIDE", "SYMBOL", "APPROVED QTY", "PLACED QTY", "WHY"], rows), ""]
    if report.earlier_orders:
        # Apart from this attempt's: counted against the run's plan, never placed again.
        count = len(report.earlier_orders)
        title = f"Orders placed by earlier attempts of this run ({count}), not placed again:"
        out += [*_orders(title, report.earlier_orders), ""]
        if not report.orders:
            out += ["Orders of this attempt: none", ""]
    if report.orders:
        title = "Orders of this attempt:" if report.earlier_orders else "Orders:"
        out += _orders(title, report.orders)
        out += [f"  {len(report.fills)} fills, turnover {_money(report.turnover)}", ""]
    out += [*_account("Account after", report.account_after), ""]
    out += [f"NOTE {note}" for note in report.notes]
    for error in report.errors:
        out.append(f"ERROR {error.code} ({error.type}): {error.message}")
    timings = ", ".join(f"{k} {v:.1f} ms" for k, v in report.timings_ms.items())
    out.append(f"Status: {status_text(report)}  ({timings})")
    return "\n".join(out)
