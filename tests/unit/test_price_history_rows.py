"""``FilePriceStore.history`` places each file's closes (and opens) on the calendar's
rows the same way whether the file's dates run along consecutive sessions (the usual
file: starts late, perhaps ends early, skips none) or not (gaps, extra days)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from alchemiser.adapters.files import prices
from alchemiser.adapters.files.prices import FilePriceStore

START = date(2026, 1, 5)
SESSIONS = [
    START + timedelta(days=i) for i in range(40) if (START + timedelta(days=i)).weekday() < 5
]


def write(directory: Path, symbol: str, days: list[date], *, opens: bool) -> None:
    lines = ["date,open,close" if opens else "date,close"]
    for i, day in enumerate(days):
        close = f"{100 + i}.25"
        lines.append(f"{day.isoformat()},{99 + i},{close}" if opens else f"{day},{close}")
    (directory / f"{symbol}.csv").write_text("\n".join(lines) + "\n")


def weekend_after(day: date) -> date:
    return day + timedelta(days=5 - day.weekday())


LAYOUTS: dict[str, list[date]] = {
    "every-session": SESSIONS,
    "late-start": SESSIONS[7:],
    "early-end": SESSIONS[:20],
    "late-start-early-end": SESSIONS[3:18],
    "gap": SESSIONS[:10] + SESSIONS[11:],
    "extra-day": sorted([*SESSIONS[:12], weekend_after(SESSIONS[5])]),
    "before-the-window": [SESSIONS[0] - timedelta(days=30), SESSIONS[0] - timedelta(days=29)],
    "after-the-window": [SESSIONS[-1] + timedelta(days=3)],
    "one-day": [SESSIONS[4]],
}


def histories(
    directory: Path, monkeypatch: pytest.MonkeyPatch, end: date, sessions: int
) -> tuple[prices.PriceHistory, prices.PriceHistory]:
    store = FilePriceStore(directory, binary_cache=False)
    symbols = sorted(p.name.removesuffix(".csv") for p in directory.glob("*.csv"))
    got = store.history(symbols, end, sessions)
    with monkeypatch.context() as patch:
        patch.setattr(prices, "_stretch", lambda dates, calendar: None)  # the general way
        expected = FilePriceStore(directory, binary_cache=False).history(symbols, end, sessions)
    return got, expected


def same(got: prices.PriceHistory, expected: prices.PriceHistory) -> None:
    assert got.symbols == expected.symbols
    assert got.dates.tolist() == expected.dates.tolist()
    assert got.closes.tobytes() == expected.closes.tobytes()
    assert (got.opens is None) == (expected.opens is None)
    if got.opens is not None and expected.opens is not None:
        assert got.opens.tobytes() == expected.opens.tobytes()


@pytest.mark.parametrize("opens", [False, True], ids=["closes", "opens"])
@pytest.mark.parametrize("window", [(SESSIONS[-1], 1000), (SESSIONS[-6], 12)], ids=["all", "cut"])
def test_every_layout_lands_on_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, opens: bool, window: tuple[date, int]
) -> None:
    write(tmp_path, "SPY", SESSIONS, opens=False)
    for name, days in LAYOUTS.items():
        write(tmp_path, name.upper().replace("-", ""), days, opens=opens)
    got, expected = histories(tmp_path, monkeypatch, *window)
    same(got, expected)
    assert np.isnan(got.closes).any()
    assert not np.isnan(got.closes).all()


def test_a_late_file_fills_its_rows_only(tmp_path: Path) -> None:
    write(tmp_path, "SPY", SESSIONS, opens=False)
    write(tmp_path, "LATE", SESSIONS[7:], opens=False)
    history = FilePriceStore(tmp_path, binary_cache=False).history(["LATE"], SESSIONS[-1], 1000)
    column = history.closes[:, 0]
    assert np.isnan(column[:7]).all()
    assert column[7:].tolist() == [100 + i + 0.25 for i in range(len(SESSIONS) - 7)]


@pytest.mark.parametrize("seed", range(20))
def test_random_files_land_on_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    write(tmp_path, "SPY", SESSIONS, opens=False)
    every_day = [SESSIONS[0] + timedelta(days=i) for i in range(-5, 50)]
    for k in range(4):
        first = rng.randrange(len(every_day))
        days = every_day[first : first + rng.randrange(1, 40)]
        if rng.random() < 0.6:  # sessions only, maybe a run of them
            days = [d for d in days if d in SESSIONS]
        if rng.random() < 0.3 and len(days) > 2:
            del days[rng.randrange(1, len(days) - 1)]
        write(tmp_path, f"T{k}", days or [SESSIONS[0]], opens=rng.random() < 0.5)
    end = rng.choice(SESSIONS)
    got, expected = histories(tmp_path, monkeypatch, end, rng.randrange(1, 40))
    same(got, expected)


def test_which_files_run_along_the_calendar() -> None:
    calendar = np.array(SESSIONS[2:30], dtype="datetime64[D]")

    def stretch(days: list[date]) -> tuple[slice, slice] | None:
        return prices._stretch(np.array(days, dtype="datetime64[D]"), calendar)

    assert stretch(SESSIONS) == (slice(0, 28), slice(2, 30))
    assert stretch(SESSIONS[7:]) == (slice(5, 28), slice(0, 23))
    assert stretch(SESSIONS[3:18]) == (slice(1, 16), slice(0, 15))
    assert stretch(LAYOUTS["after-the-window"]) == (slice(0, 0), slice(0, 0))
    assert stretch(LAYOUTS["gap"]) is None
    assert stretch(LAYOUTS["extra-day"]) is None
