"""MarketData over per-ticker files ``<TICKER>.csv`` or ``<TICKER>.csv.gz`` (date,close).

The session calendar is the reference ticker's dates (SPY by default): a session is a
day the reference traded. Files are read lazily, once, and validated as they are read.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Sequence
from datetime import date
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np

from alchemiser.domain.prices import DateArray, FloatMatrix, PriceHistory
from alchemiser.errors import DataError, DataErrorKind

HEADER = "date,close"
BUNDLED_PACKAGE = "alchemiser.data"


def bundled_prices_dir() -> Traversable:
    """The demo prices shipped inside the package (see data/prices/SOURCE.md)."""
    return resources.files(BUNDLED_PACKAGE).joinpath("prices")


class _Series:
    __slots__ = ("closes", "dates")

    def __init__(self, dates: DateArray, closes: FloatMatrix) -> None:
        self.dates = dates
        self.closes = closes


def _parse(text: str, source: str) -> _Series:
    lines = text.splitlines()
    if not lines or lines[0].strip().lower() != HEADER:
        raise DataError(f"{source}:1: expected header {HEADER!r}", kind=DataErrorKind.MISSING)
    days: list[str] = []
    closes: list[float] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        day, sep, close = line.partition(",")
        try:
            if not sep:
                raise ValueError("missing comma")
            date.fromisoformat(day.strip())
            value = float(close)
        except ValueError as error:
            raise DataError(
                f"{source}:{number}: expected 'YYYY-MM-DD,close', got {line!r} ({error})",
                kind=DataErrorKind.MISSING,
            ) from error
        days.append(day.strip())
        closes.append(value if math.isfinite(value) else math.nan)
    dates = np.array(days, dtype="datetime64[D]")
    if len(dates) > 1 and not bool(np.all(dates[1:] > dates[:-1])):
        raise DataError(f"{source}: dates are not strictly increasing", kind=DataErrorKind.MISSING)
    return _Series(dates, np.array(closes, dtype=np.float64))


class FilePriceStore:
    """Daily closes from a directory of per-ticker files (or the bundled set)."""

    def __init__(self, directory: Path | Traversable, reference_symbol: str = "SPY") -> None:
        self._directory = directory
        self._reference = reference_symbol
        self._cache: dict[str, _Series] = {}

    @classmethod
    def bundled(cls) -> FilePriceStore:
        return cls(bundled_prices_dir())

    def _read(self, symbol: str) -> _Series:
        cached = self._cache.get(symbol)
        if cached is not None:
            return cached
        for name, opener in ((f"{symbol}.csv.gz", gzip.decompress), (f"{symbol}.csv", None)):
            entry = self._directory.joinpath(name)
            if entry.is_file():
                raw = entry.read_bytes()
                text = (opener(raw) if opener else raw).decode("utf-8")
                series = _parse(text, name)
                self._cache[symbol] = series
                return series
        raise DataError(
            f"{symbol}: no price file in the price directory", kind=DataErrorKind.MISSING
        )

    def sessions(self) -> DateArray:
        return self._read(self._reference).dates

    def latest_session(self, before: date | None = None) -> date:
        sessions = self.sessions()
        if before is not None:
            sessions = sessions[sessions < np.datetime64(before, "D")]
        if sessions.size == 0:
            raise DataError(
                "no session in the price data before that date", kind=DataErrorKind.MISSING
            )
        return date.fromisoformat(str(sessions[-1]))

    def history(self, symbols: Sequence[str], end: date, sessions: int) -> PriceHistory:
        calendar = self.sessions()
        calendar = calendar[calendar <= np.datetime64(end, "D")][-max(sessions, 1) :]
        ordered = tuple(sorted(set(symbols)))
        closes = np.full((len(calendar), len(ordered)), np.nan)
        for column, symbol in enumerate(ordered):
            series = self._read(symbol)
            positions = np.searchsorted(series.dates, calendar)
            positions = np.minimum(positions, len(series.dates) - 1)
            hit = series.dates[positions] == calendar
            closes[hit, column] = series.closes[positions[hit]]
        return PriceHistory(dates=calendar, symbols=ordered, closes=closes)
