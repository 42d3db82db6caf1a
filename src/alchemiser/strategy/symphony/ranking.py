"""A filter's picks on every date: the best ``picks`` scored candidates of each row.

Candidates are columns in name order (the alphabetical tie-break). Keys are the scores
oriented so that lower is better, with unscored candidates at ``inf``. Sorted keys
within the relative ``TIE_TOLERANCE`` of their neighbour are ties (floating-point
noise), and ties rank by column. A row's picks are the head of that ranking, less any
unscored column (a row with fewer scored candidates than ``picks`` picks them all).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Series = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

TIE_TOLERANCE = 1e-9
"""Filter scores within this relative difference are ties (floating-point noise), and
the two sides of ``=`` are equal."""


def apart(low: Series, high: Series) -> Mask:
    """Sorted neighbours ``low <= high`` that are not tied: more than the relative
    tolerance apart, or one scored (finite) and the other not (inf)."""
    with np.errstate(invalid="ignore"):
        split: Mask = (high - low) > TIE_TOLERANCE * np.maximum(np.abs(low), np.abs(high))
    split |= np.isfinite(low) != np.isfinite(high)
    return split


def best(key: Series, known: Mask, picks: int) -> Mask:
    """Each row's chosen columns: its ``picks`` best scored ones (``known`` marks the
    scored columns, whose keys are finite; the others' keys are inf).

    Most rows need no ranking. When the ``picks``-th and the next smallest keys are
    apart, every tie group is wholly in or wholly out, so the ``picks`` smallest keys
    are the picks whatever their order. When the ``picks``-th smallest is unscored,
    every scored column is picked. Only the remaining rows (a tie across the cut) are
    ranked in full."""
    if key.shape[1] <= picks:
        return known.copy()
    cut, after = _cut(key, picks)
    clear = apart(cut, after)
    clear |= np.isinf(cut)
    # With the cut apart from the next key, exactly ``picks`` keys are at most the cut.
    chosen: Mask = key <= cut[:, None]
    if not clear.all():
        tied = ~clear
        chosen[tied] = ranked_best(key[tied], known[tied], picks)
    chosen &= known
    return chosen


def _cut(key: Series, picks: int) -> tuple[Series, Series]:
    """Each row's ``picks``-th and next smallest keys (values, so equal keys in either
    order give the same pair). Filters have few candidates and many rows: a running
    sorted list of the few smallest (or largest) keys, one column at a time, costs a
    few numpy calls per column where a per-row partition costs per row."""
    width = key.shape[1]
    if width * min(picks + 1, width - picks + 1) > _NETWORK_LIMIT:
        smallest = np.partition(key, (picks - 1, picks), axis=1)
        return smallest[:, picks - 1], smallest[:, picks]
    columns = np.ascontiguousarray(key.T)
    if picks + 1 <= width - picks + 1:  # keep the picks + 1 smallest, ascending
        kept = _extremes(columns, picks + 1, largest=False)
        return kept[picks - 1], kept[picks]
    # keep the width - picks + 1 largest, descending: the picks-th smallest is the
    # (width - picks + 1)-th largest
    kept = _extremes(columns, width - picks + 1, largest=True)
    return kept[width - picks], kept[width - picks - 1]


_NETWORK_LIMIT = 64
"""Above this many (column, kept key) steps a per-row partition is cheaper."""


def _extremes(columns: Series, count: int, *, largest: bool) -> Series:
    """The ``count`` smallest (or largest) values of each position across ``columns``,
    in order from the most extreme: ``count`` rows."""
    keep, drop = (np.maximum, np.minimum) if largest else (np.minimum, np.maximum)
    kept = np.full((count, columns.shape[1]), -np.inf if largest else np.inf)
    carry, spare = np.empty(columns.shape[1]), np.empty(columns.shape[1])
    for index, column in enumerate(columns):
        # Insert: each filled slot keeps the more extreme, passes the other on; the
        # first empty slot (an infinity, which would just pass the value on) takes it.
        filled = min(index, count)
        np.copyto(carry, column)
        for row in kept[:filled]:
            drop(row, carry, out=spare)
            keep(row, carry, out=row)
            carry, spare = spare, carry
        if filled < count:
            np.copyto(kept[filled], carry)
    return kept


def ranked_best(key: Series, known: Mask, picks: int) -> Mask:
    """The head of every row's full ranking: its first ``picks`` columns, scored or not."""
    width = key.shape[1]
    by_key = np.argsort(key, axis=1, kind="stable")
    ordered = np.take_along_axis(key, by_key, axis=1)
    scored = np.take_along_axis(known, by_key, axis=1)
    low, high = ordered[:, :-1], ordered[:, 1:]
    with np.errstate(invalid="ignore"):
        split = (high - low) > TIE_TOLERANCE * np.maximum(np.abs(low), np.abs(high))
    split |= scored[:, :-1] != scored[:, 1:]
    group = np.zeros(key.shape, dtype=np.intp)
    group[:, 1:] = np.cumsum(split, axis=1)
    group_of_column = np.empty_like(group)
    np.put_along_axis(group_of_column, by_key, group, axis=1)
    chosen = np.zeros(key.shape, dtype=bool)
    if picks == 1:  # the first column of the best group
        head = np.argmax(group_of_column == 0, axis=1)[:, None]
    else:  # rank keys are distinct: the ``picks`` smallest are one set, in any order
        rank = group_of_column * width + np.arange(width)
        head = np.argpartition(rank, picks - 1, axis=1)[:, :picks]
    np.put_along_axis(chosen, head, True, axis=1)
    return chosen
