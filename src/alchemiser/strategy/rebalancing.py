"""What a strategy holds between rebalances: a pure, path-dependent pass over its history.

A strategy's targets say what it would buy on each session; its rebalance rule
(``:rebalance-frequency``, ``:rebalance-threshold``) says on which sessions it actually
trades back to them. In between, its holdings drift with prices. Holdings are a
function of the price history from an anchor session, recomputed on every run, never
stored: a live run and a backtest over the same history agree by construction.

The model, session by session from the anchor (docs/SYMPHONY.md for users):
- At the anchor (the first session with a decision, or the first one on or after a
  configured anchor date) holdings are the targets.
- On each later session, holdings first drift through that session's close:
  ``w_i <- w_i (1 + r_i) / (sum_j w_j (1 + r_j) + cash)`` with ``cash = 1 - sum w`` and
  ``r_i`` the return from the last known close (0 on a session without a close; the
  move across the gap counts on the next session that has one).
- Then, if the strategy decides that session, it trades back to the targets when the
  set of held symbols differs from the targets' (a branch switch, another filter pick),
  or the session opens a new period (week, month, quarter, year; compared with the
  previous session on which it decided), or some symbol's drifted weight is more than
  the threshold away from its target (strictly, over the union of both sets).
  Otherwise it keeps the drifted weights. A session without a decision only drifts.

Held weights are stored sparsely (the symbols held on each session), so the pass costs
sessions x held symbols, however many symbols the targets ever name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import IntEnum
from typing import Protocol

import numpy as np
import numpy.typing as npt

from alchemiser.domain.prices import PriceHistory
from alchemiser.errors import DataError, DataErrorKind, StrategyError
from alchemiser.strategy.symphony.ast import RebalanceFrequency, RebalanceRule

Series = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]
Indices = npt.NDArray[np.intp]

_PERIOD_NAMES = {
    RebalanceFrequency.WEEKLY: "week",
    RebalanceFrequency.MONTHLY: "month",
    RebalanceFrequency.QUARTERLY: "quarter",
    RebalanceFrequency.YEARLY: "year",
}


class Reason(IntEnum):
    """What happened on a session."""

    UNDECIDED = 0
    """Before the anchor, or no decision that session: holdings (if any) only drift."""
    ANCHOR = 1
    HELD_SET = 2
    PERIOD = 3
    DRIFT = 4
    KEPT = 5


class Targets(Protocol):
    """The raw targets, as a strategy decides them (raising StrategyError where it cannot)."""

    def weights_at(self, as_of: date) -> dict[str, float]: ...


def period_keys(dates: npt.NDArray[np.datetime64], frequency: RebalanceFrequency) -> Indices:
    """A number per session that changes exactly when a new period begins (weeks start
    on Monday, as ISO weeks do). Daily: every session its own; none: one period."""
    days = dates.astype("datetime64[D]").astype(np.int64)
    if frequency is RebalanceFrequency.DAILY:
        return np.arange(len(dates), dtype=np.intp)
    if frequency is RebalanceFrequency.WEEKLY:
        return ((days + 3) // 7).astype(np.intp)  # 1970-01-01 was a Thursday
    months = dates.astype("datetime64[M]").astype(np.int64)
    if frequency is RebalanceFrequency.MONTHLY:
        return months.astype(np.intp)
    if frequency is RebalanceFrequency.QUARTERLY:
        return (months // 3).astype(np.intp)
    if frequency is RebalanceFrequency.YEARLY:
        return (months // 12).astype(np.intp)
    return np.zeros(len(dates), dtype=np.intp)


def next_period_start(day: date, frequency: RebalanceFrequency) -> date | None:
    """The first calendar day of the period after ``day``'s (None when there is none)."""
    if frequency is RebalanceFrequency.DAILY:
        return day + timedelta(days=1)
    if frequency is RebalanceFrequency.WEEKLY:
        return day + timedelta(days=7 - day.weekday())
    if frequency is RebalanceFrequency.NONE:
        return None
    step = {RebalanceFrequency.MONTHLY: 1, RebalanceFrequency.QUARTERLY: 3}.get(frequency, 12)
    month = (day.month - 1) // step * step + step  # 0-based month after the period
    return date(day.year + month // 12, month % 12 + 1, 1)


@dataclass(frozen=True, eq=False)
class Holdings:
    """The holdings model's result over every session of ``dates``."""

    dates: npt.NDArray[np.datetime64]
    symbols: tuple[str, ...]
    rule: RebalanceRule
    anchor: int | None
    """Row of the anchor session; None when the strategy never decides on or after it."""
    held: list[tuple[Indices, Series]]
    """Per session: the held symbols (indices into ``symbols``) and their weights."""
    reasons: npt.NDArray[np.int8]
    drift: Series
    """Per decided session: the largest |drifted weight - target| before trading."""

    def decided(self, index: int) -> bool:
        return Reason(int(self.reasons[index])) is not Reason.UNDECIDED

    def rebalanced(self, index: int) -> bool:
        return Reason(int(self.reasons[index])) in (
            Reason.ANCHOR,
            Reason.HELD_SET,
            Reason.PERIOD,
            Reason.DRIFT,
        )

    def weights(self, index: int) -> dict[str, float]:
        """What the strategy holds after ``index``'s decision, by symbol."""
        columns, values = self.held[index]
        held = {self.symbols[c]: float(v) for c, v in zip(columns, values, strict=True) if v > 0}
        return dict(sorted(held.items()))

    def note(self, index: int) -> str:
        """One line on what the rule did on session ``index``."""
        reason = Reason(int(self.reasons[index]))
        points = float(self.drift[index]) * 100
        threshold = None if self.rule.threshold is None else self.rule.threshold * 100
        if reason is Reason.ANCHOR:
            return "rebalanced: the anchor session (holdings start at the targets)"
        if reason is Reason.HELD_SET:
            return "rebalanced: the held set changed"
        if reason is Reason.PERIOD:
            return f"rebalanced: first session of the {_PERIOD_NAMES[self.rule.frequency]}"
        if reason is Reason.DRIFT:
            return f"rebalanced: drift {_points(points, threshold)} points > {threshold:g}"
        if reason is Reason.UNDECIDED:
            return "no decision: holdings drift with prices"
        parts = []
        if threshold is not None:
            compare = "<" if points < threshold else "<="
            parts.append(
                f"within corridor: largest drift {_points(points, threshold)} points "
                f"{compare} {threshold:g}"
            )
        upcoming = next_period_start(_session(self.dates, index), self.rule.frequency)
        if upcoming is not None:
            parts.append(f"{self.rule.frequency.value}: next rebalance {upcoming.isoformat()}")
        elif threshold is None:
            parts.append("no scheduled rebalance")
        return "; ".join([*parts, "keeping drifted weights"])


GAP = np.timedelta64(7, "D")
"""An anchor this much before the history's first session is before the history (less
is a weekend or a holiday: the first session is the anchor's)."""


def hold(
    targets: Mapping[str, Series],
    valid: Mask,
    history: PriceHistory,
    rule: RebalanceRule,
    anchor: date | None = None,
) -> Holdings:
    """Run the holdings model over every session of ``history``.

    ``targets`` maps each symbol the strategy may hold to its target weight series
    (aligned with ``history.dates``), ``valid`` says where the strategy decides.
    """
    length = len(history.dates)
    if anchor is not None and length and history.dates[0] - np.datetime64(anchor, "D") > GAP:
        raise StrategyError(
            f"the strategy's anchor {anchor.isoformat()} is before the first session of the "
            f"price history this run reads ({history.session(0).isoformat()}): its holdings "
            "cannot be worked out from there; a live run reads at most "
            "alpaca.history_sessions sessions, so raise that or move the anchor"
        )
    symbols = tuple(sorted(targets))
    position = {symbol: column for column, symbol in enumerate(history.symbols)}
    columns = np.array([position[s] for s in symbols], dtype=np.intp)
    # Each symbol's last known close: a move across sessions without one still counts.
    prices = _forward_filled(history.closes[:, columns])
    starts, target_columns, target_values = _sparse_rows(targets, symbols, length)
    keys = period_keys(history.dates, rule.frequency)
    eligible = valid.copy()
    if anchor is not None:
        eligible &= history.dates >= np.datetime64(anchor, "D")
    found = np.flatnonzero(eligible)
    first = int(found[0]) if found.size else None

    empty: tuple[Indices, Series] = (np.empty(0, dtype=np.intp), np.empty(0))
    held: list[tuple[Indices, Series]] = [empty] * length
    reasons = np.zeros(length, dtype=np.int8)
    drift = np.full(length, np.nan)
    if first is None:
        return Holdings(history.dates, symbols, rule, None, held, reasons, drift)

    last_key = keys[first]
    index, weights = empty
    for t in range(first, length):
        if t > first and index.size:
            with np.errstate(invalid="ignore", divide="ignore"):
                growth = prices[t, index] / prices[t - 1, index]
            growth[~np.isfinite(growth)] = 1.0
            grown = weights * growth
            total = float(grown.sum()) + (1.0 - float(weights.sum()))
            weights = grown / total
        if not valid[t]:
            held[t] = (index, weights)
            continue
        aim = slice(starts[t], starts[t + 1])
        aim_index, aim_weights = target_columns[aim], target_values[aim]
        drift[t] = _largest_gap(index, weights, aim_index, aim_weights)
        if t == first:
            reason = Reason.ANCHOR
        elif not np.array_equal(index, aim_index):
            reason = Reason.HELD_SET
        elif keys[t] != last_key:
            reason = Reason.PERIOD
        elif rule.threshold is not None and drift[t] > rule.threshold:
            reason = Reason.DRIFT
        else:
            reason = Reason.KEPT
        if reason is not Reason.KEPT:
            index, weights = aim_index, aim_weights
        last_key = keys[t]
        reasons[t] = reason
        held[t] = (index, weights)
    return Holdings(history.dates, symbols, rule, first, held, reasons, drift)


def _forward_filled(closes: Series) -> Series:
    """``closes`` (sessions x symbols) with each gap holding the symbol's last close;
    NaN before its first."""
    rows = np.arange(closes.shape[0])[:, None]
    last = np.where(np.isfinite(closes), rows, 0)
    np.maximum.accumulate(last, axis=0, out=last)
    filled: Series = np.take_along_axis(closes, last, axis=0)
    return filled


def _sparse_rows(
    targets: Mapping[str, Series], symbols: tuple[str, ...], length: int
) -> tuple[Indices, Indices, Series]:
    """The positive targets row by row: row t's symbols are ``columns[starts[t]:starts[t+1]]``
    (ascending) and their weights ``values[...]``. One vectorised pass over the table."""
    rows, columns, values = [], [], []
    for position, symbol in enumerate(symbols):
        series = targets[symbol]
        at = np.flatnonzero(series > 0)
        rows.append(at)
        columns.append(np.full(at.size, position, dtype=np.intp))
        values.append(series[at])
    row = np.concatenate(rows) if rows else np.empty(0, dtype=np.intp)
    column = np.concatenate(columns) if columns else np.empty(0, dtype=np.intp)
    value = np.concatenate(values) if values else np.empty(0)
    order = np.lexsort((column, row))
    starts = np.searchsorted(row[order], np.arange(length + 1)).astype(np.intp)
    return starts, column[order], value[order].astype(np.float64)


def _largest_gap(index: Indices, weights: Series, aim_index: Indices, aim_weights: Series) -> float:
    """max |held - target| over the union of both sets of symbols (0 when both are empty)."""
    if np.array_equal(index, aim_index):
        return float(np.max(np.abs(weights - aim_weights))) if index.size else 0.0
    union, inverse = np.unique(np.concatenate([index, aim_index]), return_inverse=True)
    gaps = np.bincount(inverse, np.concatenate([weights, -aim_weights]), minlength=union.size)
    return float(np.max(np.abs(gaps)))


def _points(points: float, threshold: float | None) -> str:
    """Weight points to one decimal, or more where one would read as the threshold."""
    for digits in (1, 2, 3):
        text = f"{points:.{digits}f}"
        if threshold is None or float(text) != threshold:
            return text
    return f"{points:.4f}"


def _session(dates: npt.NDArray[np.datetime64], index: int) -> date:
    return date.fromisoformat(str(dates[index].astype("datetime64[D]")))


class HeldTable:
    """A strategy's weights over a history: what it holds after each session's decision
    (``weights_at``), its raw targets (``targets_at``), and what its rule did
    (``rebalance_note``). Without a holdings model (daily, no corridor) holdings are the
    targets and there is no note."""

    def __init__(
        self,
        name: str,
        targets: Targets,
        history: PriceHistory,
        holdings: Holdings | None,
        location: str | None = None,
    ) -> None:
        self._name = name
        self._targets = targets
        self._history = history
        self.holdings = holdings
        self._location = location

    def targets_at(self, as_of: date) -> dict[str, float]:
        return self._targets.weights_at(as_of)

    def weights_at(self, as_of: date) -> dict[str, float]:
        if self.holdings is None:
            return self._targets.weights_at(as_of)
        return self.holdings.weights(self._decided_row(as_of))

    def rebalance_note(self, as_of: date) -> str | None:
        if self.holdings is None:
            return None
        return self.holdings.note(self._decided_row(as_of))

    def _decided_row(self, as_of: date) -> int:
        assert self.holdings is not None
        index = self._history.row_index(as_of)
        if index < 0 or self._history.session(index) != as_of:
            raise DataError(
                f"no session {as_of.isoformat()} in the price data", kind=DataErrorKind.MISSING
            )
        if self.holdings.decided(index):
            return index
        self._targets.weights_at(as_of)  # raises when the strategy has no decision then
        anchor = self.holdings.anchor
        why = (
            "no session on or after the strategy's anchor has a decision"
            if anchor is None
            else f"it is before the strategy's anchor session "
            f"{self._history.session(anchor).isoformat()}, where its holdings start"
        )
        raise StrategyError(
            f"{self._name}: no holdings on {as_of.isoformat()}: {why}", location=self._location
        )
