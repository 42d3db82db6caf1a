"""Each daily bar of a fetch is checked: typed errors for a bad reply."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from alchemiser.adapters.alpaca.bars import daily_bar, symbol_bars
from alchemiser.errors import DataError

GOOD: dict[str, Any] = {"t": "2026-07-17T04:00:00Z", "o": 10, "h": 12, "l": 9, "c": 11, "v": 5}


def test_a_good_bar() -> None:
    bar = daily_bar("SPY", GOOD)
    assert (bar.day, bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        date(2026, 7, 17),
        10.0,
        12.0,
        9.0,
        11.0,
        5.0,
    )


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"c": "11"}, "DATA_MALFORMED"),
        ({"c": True}, "DATA_MALFORMED"),
        ({"c": float("inf")}, "DATA_NON_FINITE"),
        ({"o": 0}, "DATA_NON_POSITIVE"),
        ({"v": -1}, "DATA_NON_POSITIVE"),
        ({"h": 10.5}, "DATA_MALFORMED"),  # below the close
        ({"l": 10.5}, "DATA_MALFORMED"),  # above the open
        ({"t": "not a time"}, "DATA_MALFORMED"),
    ],
)
def test_a_bad_bar_is_a_typed_error(change: dict[str, Any], code: str) -> None:
    with pytest.raises(DataError) as raised:
        daily_bar("SPY", {**GOOD, **change})
    assert raised.value.code == code


def test_two_bars_of_one_session_are_malformed_and_later_ones_left_out() -> None:
    with pytest.raises(DataError):
        symbol_bars("SPY", [GOOD, GOOD], date(2026, 7, 1), date(2026, 7, 31))
    later = {**GOOD, "t": "2026-07-20T04:00:00Z"}
    bars = symbol_bars("SPY", [later, GOOD], date(2026, 7, 1), date(2026, 7, 17))
    assert [b.day for b in bars] == [date(2026, 7, 17)]
