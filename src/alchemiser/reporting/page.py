"""What a backtest's HTML page shows, as plain data.

The page knows nothing of the backtest's own types: a backtest result is turned into a
``BacktestPage`` (numbers as floats, table cells as strings already formatted) and the
renderer draws that. ``validate`` checks that the series line up before anything is
drawn, so a malformed page is refused with a typed error instead of a broken chart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from alchemiser.errors import AlchemiserError

REPORT_INVALID = "REPORT_INVALID"


@dataclass(frozen=True)
class StatsTable:
    """``columns``: the header cells, e.g. ``["", "Strategy", "SPY"]``; each row is a
    label and one pre-formatted value per remaining column."""

    columns: list[str]
    rows: list[tuple[str, list[str]]]


@dataclass(frozen=True)
class MonthlyRow:
    """One year of returns as fractions (0.0123 is +1.23%): ``months[0]`` is January,
    ``None`` a month outside the backtest; ``total`` the year's compounded return."""

    year: int
    months: list[float | None]
    total: float | None


@dataclass(frozen=True)
class Allocations:
    """Target (or held) weights, 0..1 of equity, per symbol, aligned with ``dates``."""

    dates: list[date]
    weights: dict[str, list[float]]


@dataclass(frozen=True)
class BacktestPage:
    """Everything the HTML report shows.

    ``series`` maps a name to equity values aligned with ``dates``, in display order:
    the account first, then the benchmark (named by ``benchmark``) if any, then each
    strategy. ``risk_limited`` counts the orders risk shrank or denied, by reason code.
    """

    title: str
    subtitle: list[str]
    stats: StatsTable
    dates: list[date]
    series: dict[str, list[float]]
    benchmark: str | None = None
    monthly: list[MonthlyRow] = field(default_factory=list)
    allocations: Allocations | None = None
    risk_limited: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def account(self) -> str:
        """The account's series name (the first one)."""
        return next(iter(self.series))

    @property
    def strategies(self) -> list[str]:
        """The per-strategy series names: every series but the account and benchmark."""
        return [n for n in list(self.series)[1:] if n != self.benchmark]


def _invalid(message: str) -> AlchemiserError:
    return AlchemiserError(f"backtest page: {message}", code=REPORT_INVALID)


def _check_values(name: str, values: list[float], length: int, what: str) -> None:
    if len(values) != length:
        raise _invalid(f"{what} {name!r} has {len(values)} values for {length} dates")
    if not all(isinstance(v, int | float) and math.isfinite(v) for v in values):
        raise _invalid(f"{what} {name!r} holds a value that is not a finite number")


def validate(page: BacktestPage) -> None:
    """Raise ``AlchemiserError`` (code ``REPORT_INVALID``) unless ``page`` can be drawn."""
    if not page.series:
        raise _invalid("no equity series")
    if not page.dates:
        raise _invalid("no dates")
    if any(b <= a for a, b in zip(page.dates, page.dates[1:], strict=False)):
        raise _invalid("dates are not strictly increasing")
    for name, values in page.series.items():
        _check_values(name, values, len(page.dates), "series")
    if page.benchmark is not None and page.benchmark not in page.series:
        raise _invalid(f"benchmark {page.benchmark!r} is not one of the series")
    width = len(page.stats.columns) - 1
    for label, cells in page.stats.rows:
        if len(cells) != width:
            raise _invalid(f"statistics row {label!r} has {len(cells)} cells for {width}")
    for row in page.monthly:
        if len(row.months) != 12:
            raise _invalid(f"monthly returns for {row.year} have {len(row.months)} months")
        returns = [*row.months, row.total]
        if not all(v is None or (isinstance(v, int | float) and math.isfinite(v)) for v in returns):
            raise _invalid(f"monthly returns for {row.year} hold a non-finite value")
    if page.allocations is not None:
        alloc = page.allocations
        if any(b <= a for a, b in zip(alloc.dates, alloc.dates[1:], strict=False)):
            raise _invalid("allocation dates are not strictly increasing")
        for symbol, weights in alloc.weights.items():
            _check_values(symbol, weights, len(alloc.dates), "allocation")
    if any(count < 0 for count in page.risk_limited.values()):
        raise _invalid("a risk-limited count is negative")
