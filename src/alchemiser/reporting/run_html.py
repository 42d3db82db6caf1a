"""One run's report as a self-contained web page (``alchemiser report --run ID --html``).

The page is the run's latest attempt: its summary, the account before and after (and the
change between them), the targets with each strategy's part in them, the strategies,
the planned orders, the risk decisions with their reason codes, the orders and fills,
and the errors, notes and degraded reasons; a run attempted more than once lists every
attempt first. One HTML file with its CSS inline and no reference to anything outside it
(no scripts, fonts, images or links): it opens offline, and can be mailed or archived.
Every piece of text is escaped, since symbols and strategy names come from user files.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from html import escape

from alchemiser.domain.account import AccountValuation
from alchemiser.domain.report import RunReport, RunStatus, failure_reason

Cell = str | int | float | Decimal | None

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 72em;
  padding: 0 1em; color: #1a1a1a; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.15em; margin-top: 1.8em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { padding: 0.2em 0.8em; border-bottom: 1px solid #e4e4e4; text-align: left;
  vertical-align: top; }
th { background: #f4f4f4; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: bold; }
.bad { color: #a00; }
.good { color: #060; }
.muted { color: #666; }
ul { margin: 0.3em 0; }
"""


def _text(value: Cell) -> str:
    if value is None:
        return "-"
    return escape(str(value))


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def _pct(value: float | Decimal) -> str:
    return f"{float(value):.2%}"


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[Cell]], numeric: frozenset[int] = frozenset()
) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{_text(c)}</td>' if i in numeric else f"<td>{_text(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    if not body:
        return '<p class="muted">none</p>'
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    return f"<table>{thead}<tbody>{body}</tbody></table>"


def _section(title: str, content: str) -> str:
    return f"<h2>{escape(title)}</h2>\n{content}\n"


def _list(items: Iterable[str]) -> str:
    body = "".join(f"<li>{escape(item)}</li>" for item in items)
    return f"<ul>{body}</ul>" if body else '<p class="muted">none</p>'


def _summary(report: RunReport) -> str:
    status = report.status.value + (" (dry run)" if report.dry_run else "")
    css = "good" if report.status.succeeded and not report.degraded else "bad"
    rows: list[tuple[str, Cell]] = [
        ("Account", report.account),
        ("Trading date", report.trading_date.isoformat()),
        ("Decided on", None if report.as_of is None else report.as_of.isoformat()),
        ("Scheduled", None if report.scheduled_time is None else report.scheduled_time.isoformat()),
        ("Mode", report.mode.value),
        ("Trading state", report.trading_state.value),
        ("Attempt", report.attempt_id or "-"),
        ("Cash buffer", _pct(report.cash_buffer)),
        ("Orders", len(report.orders)),
        ("Fills", len(report.fills)),
        ("Turnover", _money(report.turnover)),
    ]
    if report.skipped is not None:
        rows.append(("Skipped", report.skipped.value))
    if not report.status.succeeded and report.status is not RunStatus.STARTED:
        rows.append(("Why", failure_reason(report)))
    return f'<p class="status {css}">Status: {escape(status)}</p>\n' + _table(("", ""), rows)


def _account(title: str, valuation: AccountValuation | None) -> str:
    if valuation is None:
        return _section(title, '<p class="muted">not recorded</p>')
    top = f"<p>Equity {escape(_money(valuation.equity))}, cash {escape(_money(valuation.cash))}</p>"
    rows = [
        (p.symbol, p.qty, _money(p.price), _money(p.market_value), _pct(p.weight))
        for p in valuation.positions
    ]
    positions = _table(("Symbol", "Qty", "Price", "Value", "Weight"), rows, frozenset({1, 2, 3, 4}))
    return _section(title, top + positions)


def _change(report: RunReport) -> str:
    before, after = report.account_before, report.account_after
    if before is None or after is None:
        return ""
    delta = after.equity - before.equity
    share = "" if before.equity == 0 else f" ({delta / before.equity:+.2%})"
    sign = "+" if delta >= 0 else "-"
    return f"<p>Equity change over the run: {sign}{escape(_money(abs(delta)))}{share}</p>"


def _targets(report: RunReport) -> str:
    rows = [
        (
            symbol,
            _pct(target.weight),
            ", ".join(
                f"{name} {_pct(part)}"
                for name, part in sorted(target.attribution.items(), key=lambda kv: -kv[1])
            ),
        )
        for symbol, target in sorted(report.targets.items(), key=lambda kv: -kv[1].weight)
    ]
    return _table(("Symbol", "Weight", "Wanted by (strategy: contribution)"), rows, frozenset({1}))


def _strategies(report: RunReport) -> str:
    rows = [
        (
            s.name,
            _pct(s.allocation),
            s.rebalance or "every session",
            ", ".join(f"{sym} {_pct(w)}" for sym, w in sorted(s.weights.items())) or "all cash",
        )
        for s in report.strategies
    ]
    return _table(("Strategy", "Allocation", "Rebalance", "Holds"), rows, frozenset({1}))


def _orders(report: RunReport) -> str:
    intents = _table(
        ("Side", "Symbol", "Qty", "Ref price", "Weight now", "Target", "Reason"),
        (
            (
                i.side.value,
                i.symbol,
                i.qty,
                _money(i.ref_price),
                _pct(i.current_weight),
                _pct(i.target_weight),
                i.reason,
            )
            for i in report.intents
        ),
        frozenset({2, 3, 4, 5}),
    )
    decisions = _table(
        ("Verdict", "Side", "Symbol", "Requested", "Approved", "Codes", "Reason"),
        (
            (
                d.verdict.value,
                d.side.value,
                d.symbol,
                d.requested_qty,
                d.approved_qty,
                ", ".join(code.value for code in d.codes) or "-",
                d.reason,
            )
            for d in report.decisions
        ),
        frozenset({3, 4}),
    )
    orders = _table(
        ("Client order id", "Side", "Symbol", "Qty", "Status", "Filled", "Avg price", "Note"),
        (
            (
                o.client_order_id,
                o.side.value,
                o.symbol,
                o.qty,
                o.status.value,
                o.filled_qty,
                _money(o.filled_avg_price),
                o.reject_reason,
            )
            for o in report.orders
        ),
        frozenset({3, 5, 6}),
    )
    fills = _table(
        ("Client order id", "Side", "Symbol", "Qty", "Price", "Notional"),
        (
            (f.client_order_id, f.side.value, f.symbol, f.qty, _money(f.price), _money(f.notional))
            for f in report.fills
        ),
        frozenset({3, 4, 5}),
    )
    return (
        _section("Planned orders", intents)
        + _section("Risk decisions", decisions)
        + _section("Orders", orders)
        + _section("Fills", fills)
    )


def _problems(report: RunReport) -> str:
    errors = [f"{e.code} ({e.type}): {e.message}" for e in report.errors]
    holds = [f"{h.symbol}: {h.reason.value}: {h.detail}" for h in report.holds]
    return (
        _section("Errors", _list(errors))
        + _section("Degraded", _list(report.degraded))
        + _section("Held back", _list(holds))
        + _section("Notes", _list(report.notes))
    )


def _attempts(attempts: Sequence[RunReport]) -> str:
    rows = [
        (
            index,
            r.attempt_id or "-",
            r.status.value,
            len(r.orders),
            _money(r.turnover),
            "" if r.status.succeeded else failure_reason(r),
        )
        for index, r in enumerate(attempts, start=1)
    ]
    return _section(
        "Attempts (oldest first; this page shows the last)",
        _table(("#", "Attempt", "Status", "Orders", "Turnover", "Why"), rows, frozenset({0, 3, 4})),
    )


def render_run(attempts: Sequence[RunReport]) -> str:
    """The page for one run: ``attempts`` oldest first (at least one); the last is shown
    in full."""
    if not attempts:
        raise ValueError("a run page needs at least one attempt")
    report = attempts[-1]
    title = f"Run {report.run_id}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{escape(title)}</h1>",
        _summary(report),
        _attempts(attempts) if len(attempts) > 1 else "",
        _account("Account before", report.account_before),
        _account("Account after", report.account_after),
        _change(report),
        _section("Targets", _targets(report)),
        _section("Strategies", _strategies(report)),
        _orders(report),
        _problems(report),
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(part for part in parts if part)
