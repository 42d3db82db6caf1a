"""MarketData over per-ticker files ``<TICKER>.csv`` or ``<TICKER>.csv.gz``.

A file's header is ``date,close``, or names ``date`` and ``close`` among the optional
columns ``open,high,low,volume`` in any order; an empty ``open`` cell means no open
that session. Opens, where present, are what a market-open backtest fills at; high,
low and volume are checked and not used. The session calendar is the reference
ticker's dates (SPY by default): a session is a day the reference traded. Files are
read lazily, once, and validated as they are read.

A file is read up to ``MAX_FILE_BYTES`` (64 MiB, compressed or not, and again once
inflated: the largest real file is a few hundred kB) and ``MAX_ROWS`` lines; past
either, or unreadable (a corrupt or truncated gzip stream, not UTF-8), it is malformed.

In a directory of the file system this process may write (never the bundled prices), a
parsed file is kept as a binary copy in ``.cache/`` beside it, read instead of the text
while the file is unchanged (``price_cache``).
"""

from __future__ import annotations

import gzip
import io
import math
import re
import zlib
from collections.abc import Sequence
from datetime import date, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import numpy as np

from alchemiser.adapters.files import price_arrays, price_cache
from alchemiser.domain.prices import DateArray, FloatMatrix, PriceHistory, session_prices
from alchemiser.errors import DataError, DataErrorKind

HEADER = "date,close"
FORMAT_DOCS = "docs/CONFIG.md, [data]"
"""Where a price file's format is documented: named by a missing file's error."""
COLUMNS = frozenset({"date", "open", "high", "low", "close", "volume"})
SATURDAY = 5
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
BUNDLED_PACKAGE = "alchemiser.data"
MAX_FILE_BYTES = 64 * 1024 * 1024
"""The most a price file may hold, compressed or not, and once inflated."""
MAX_ROWS = 100_000
"""The most lines a price file may hold (about 400 years of sessions)."""
_MAX_CELLS = MAX_ROWS * len(COLUMNS)
_LINE_BREAKS = ("\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
"""What ``str.splitlines`` splits on (``\r\n`` is one break)."""
_SHOWN = 80


def bundled_prices_dir() -> Traversable:
    """The demo prices shipped inside the package (see data/prices/SOURCE.md)."""
    return resources.files(BUNDLED_PACKAGE).joinpath("prices")


def _in_package(directory: Path) -> bool:
    """``directory`` is inside the installed package (its bundled prices, say)."""
    package = Path(str(resources.files(BUNDLED_PACKAGE))).parent.resolve()
    return directory.resolve().is_relative_to(package)


class _Series:
    __slots__ = ("closes", "dates", "opens")

    def __init__(self, dates: DateArray, closes: FloatMatrix, opens: FloatMatrix | None) -> None:
        self.dates = dates
        self.closes = closes
        self.opens = opens


def _malformed(message: str) -> DataError:
    return DataError(message, kind=DataErrorKind.MALFORMED)


def _shown(text: str) -> str:
    """``text`` as an error message quotes it: its repr, shortened past a few words."""
    return repr(text) if len(text) <= _SHOWN else f"{text[:_SHOWN]!r}..."


def _load(entry: Path | Traversable, name: str, *, compressed: bool) -> str:
    """The file's text, within the caps; DataError(MALFORMED) naming it otherwise."""
    try:
        with entry.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
        if len(raw) > MAX_FILE_BYTES:
            raise _malformed(f"{name}: more than {MAX_FILE_BYTES >> 20} MiB")
        if compressed:
            # Inflated incrementally, and no further than the cap: a small file may
            # inflate to gigabytes.
            with gzip.GzipFile(fileobj=io.BytesIO(raw), mode="rb") as stream:
                raw = stream.read(MAX_FILE_BYTES + 1)
            if len(raw) > MAX_FILE_BYTES:
                raise _malformed(f"{name}: inflates to more than {MAX_FILE_BYTES >> 20} MiB")
        text = raw.decode("utf-8")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
        raise _malformed(f"{name}: cannot read: {error}") from error
    lines = sum(text.count(mark) for mark in _LINE_BREAKS) - text.count("\r\n")
    if lines > MAX_ROWS + 1:
        raise _malformed(f"{name}: more than {MAX_ROWS} rows")
    if text.count(",") > _MAX_CELLS:
        raise _malformed(f"{name}: more than {_MAX_CELLS} cells")
    return text


def _parse(text: str, source: str) -> _Series:
    """Rows ``YYYY-MM-DD,close``; a session without a close is simply absent. Any other
    row (a bad date, a non-number, inf, NaN, zero or a negative close) fails the file.

    Well-formed files (all of them, in practice), whatever their header, are converted
    in one go (``price_arrays``); any doubt sends the file through the line-by-line
    reader, which names the bad line.
    """
    header = text.partition("\n")[0].strip().lower()
    names = _columns(header) if header != HEADER else ["date", "close"]
    fast = _parse_fast(text, names) if names is not None else None
    if fast is not None:
        return fast
    if header != HEADER and names is not None:
        return _parse_columns(text, source, names)
    return _parse_lines(text, source)


def _columns(header: str) -> list[str] | None:
    """The header's column names when it is a valid wider header, else None."""
    names = [name.strip() for name in header.split(",")]
    if len(set(names)) != len(names) or not set(names) <= COLUMNS:
        return None
    if "date" not in names or "close" not in names:
        return None
    return names


def _parse_columns(text: str, source: str, names: list[str]) -> _Series:
    """A file with a wider header (``names``, its first line up to a newline), line by
    line: every close as in a ``date,close`` file; an open, high or low, when given, a
    finite positive price; a volume a finite non-negative number."""
    lines = text.partition("\n")[2].splitlines()
    at = {name: i for i, name in enumerate(names)}
    days: list[str] = []
    closes: list[float] = []
    opens: list[float] = []
    for number, line in enumerate(lines, start=2):
        if not line.strip():
            continue
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != len(names):
            raise _malformed(f"{source}:{number}: expected {len(names)} cells, got {_shown(line)}")
        day = cells[at["date"]]
        try:
            date.fromisoformat(day)
        except ValueError:
            day = ""
        if not _ISO_DAY.fullmatch(day):
            raise _malformed(f"{source}:{number}: bad date in {_shown(line)}")
        values: dict[str, float] = {}
        for name in names:
            if name == "date" or (name != "close" and not cells[at[name]]):
                continue
            values[name] = _number(
                cells[at[name]], name, f"{source}:{number}", volume=name == "volume"
            )
        days.append(day)
        closes.append(values["close"])
        opens.append(values.get("open", math.nan))
    if not days:
        raise _malformed(f"{source}: no rows")
    dates = np.array(days, dtype="datetime64[D]")
    if len(dates) > 1 and not bool(np.all(dates[1:] > dates[:-1])):
        raise _malformed(f"{source}: dates are not strictly increasing")
    opened = np.array(opens, dtype=np.float64) if "open" in at else None
    return _Series(dates, np.array(closes, dtype=np.float64), opened)


def _number(cell: str, name: str, where: str, *, volume: bool) -> float:
    try:
        value = float(cell)
    except ValueError as error:
        raise _malformed(f"{where}: {name} {_shown(cell)} is not a number") from error
    if not math.isfinite(value):
        raise DataError(
            f"{where}: {name} {_shown(cell)} is not finite", kind=DataErrorKind.NON_FINITE
        )
    if value < 0 or (value == 0 and not volume):
        raise DataError(
            f"{where}: {name} {_shown(cell)} is not a price", kind=DataErrorKind.NON_POSITIVE
        )
    return value


def _parse_fast(text: str, names: list[str]) -> _Series | None:
    arrays = price_arrays.parse(text, names)
    return _Series(*arrays) if arrays is not None else None


def _parse_lines(text: str, source: str) -> _Series:
    lines = text.splitlines()
    if not lines or lines[0].strip().lower() != HEADER:
        raise _malformed(f"{source}:1: expected header {HEADER!r}")
    days: list[str] = []
    closes: list[float] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        day, _, close = (part.strip() for part in line.partition(","))
        try:
            value = float(close)
            date.fromisoformat(day)
        except ValueError:
            value = math.nan
        if not _ISO_DAY.fullmatch(day) or math.isnan(value):
            raise _malformed(f"{source}:{number}: expected 'YYYY-MM-DD,close', got {_shown(line)}")
        if not math.isfinite(value) or value <= 0:
            kind = (
                DataErrorKind.NON_FINITE if not math.isfinite(value) else DataErrorKind.NON_POSITIVE
            )
            raise DataError(f"{source}:{number}: close {_shown(close)} is not a price", kind=kind)
        days.append(day)
        closes.append(value)
    if not days:
        raise _malformed(f"{source}: no rows")
    try:
        dates = np.array(days, dtype="datetime64[D]")
    except ValueError as error:
        raise _malformed(f"{source}: {error}") from error
    if len(dates) > 1 and not bool(np.all(dates[1:] > dates[:-1])):
        raise _malformed(f"{source}: dates are not strictly increasing")
    return _Series(dates, np.array(closes, dtype=np.float64), None)


def read_price_text(path: Path, *, compressed: bool) -> str:
    """A price file's text, within the caps (DataError MALFORMED otherwise)."""
    return _load(path, path.name, compressed=compressed)


def check_price_text(text: str, source: str) -> None:
    """DataError unless ``text`` is a price file this module reads."""
    _parse(text, source)


def _stretch(dates: DateArray, calendar: DateArray) -> tuple[slice, slice] | None:
    """(calendar rows, positions in ``dates``) when the dates within the calendar's span
    are exactly a run of consecutive calendar sessions (a file's usual shape: it starts
    late, perhaps ends early, and skips no session), else None."""
    if not len(calendar) or not len(dates):
        return None
    first = int(np.searchsorted(dates, calendar[0]))
    last = int(np.searchsorted(dates, calendar[-1], side="right"))
    if first >= last:
        return slice(0, 0), slice(0, 0)  # no date within the calendar's span
    row = int(np.searchsorted(calendar, dates[first]))
    rows = slice(row, row + last - first)
    if rows.stop > len(calendar) or not np.array_equal(calendar[rows], dates[first:last]):
        return None
    return rows, slice(first, last)


class FilePriceStore:
    """Daily closes from a directory of per-ticker files (or the bundled set)."""

    def __init__(
        self,
        directory: Path | Traversable,
        reference_symbol: str = "SPY",
        *,
        bundled: bool = False,
        binary_cache: bool = True,
    ) -> None:
        """``binary_cache``: keep parsed copies in ``.cache/`` beside the files, where
        the directory is a writable one of the file system outside the package (never
        the bundled prices, however named)."""
        self._directory = directory
        self._bundled = bundled
        self._reference = reference_symbol
        self._cache: dict[str, _Series] = {}
        self._binary_cache: bool | None = None if binary_cache and not bundled else False

    @classmethod
    def bundled(cls) -> FilePriceStore:
        return cls(bundled_prices_dir(), bundled=True)

    def check(self, symbol: str) -> None:
        """Read and validate ``symbol``'s file: DataError if it is missing or malformed."""
        self._read(symbol)

    def _read(self, symbol: str) -> _Series:
        cached = self._cache.get(symbol)
        if cached is not None:
            return cached
        for name, compressed in ((f"{symbol}.csv.gz", True), (f"{symbol}.csv", False)):
            entry = self._directory.joinpath(name)
            if entry.is_file():
                series = self._parsed(entry, name, compressed=compressed)
                self._cache[symbol] = series
                return series
        raise DataError(self._missing(symbol), kind=DataErrorKind.MISSING)

    def _parsed(self, entry: Path | Traversable, name: str, *, compressed: bool) -> _Series:
        """The file's series: its binary copy if one is current, else parsed (and a copy
        kept where the directory allows)."""
        if self._binary_cache is None:
            directory = self._directory
            self._binary_cache = (
                isinstance(directory, Path)
                and not _in_package(directory)
                and price_cache.writable(directory)
            )
        if not self._binary_cache or not isinstance(entry, Path):
            return _parse(_load(entry, name, compressed=compressed), name)
        seen = price_cache.stamp(entry)
        copy = price_cache.load(entry, seen) if seen is not None else None
        if copy is not None:
            return _Series(*copy)
        series = _parse(_load(entry, name, compressed=compressed), name)
        if seen is not None and price_cache.stamp(entry) == seen:
            price_cache.save(entry, seen, (series.dates, series.closes, series.opens))
        return series

    def _missing(self, symbol: str) -> str:
        """Which directory had no file for ``symbol``, and how to give it one."""
        if self._bundled:
            return (
                f"{symbol}: no price file in the bundled prices (demo tickers only): fetch "
                f"it with `alchemiser data fetch --symbols {symbol} --dir DIR`, or add "
                f"{symbol}.csv with {HEADER} rows to a directory of your own, and name the "
                f"directory with --prices DIR or the config's [data] dir ({FORMAT_DOCS})"
            )
        file = self._directory.joinpath(f"{symbol}.csv")
        return (
            f"{symbol}: no price file in {self._directory}: add {file} with {HEADER} rows "
            f"({FORMAT_DOCS})"
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

    def is_session(self, day: date) -> bool:
        """A day of the reference calendar; after the data ends, any weekday (the files
        cannot know later holidays, and such a run fails the staleness check first)."""
        sessions = self.sessions()
        if np.datetime64(day, "D") <= sessions[-1]:
            return bool(np.isin(np.datetime64(day, "D"), sessions))
        return day.weekday() < SATURDAY

    def history(self, symbols: Sequence[str], end: date, sessions: int) -> PriceHistory:
        calendar = self.sessions()
        calendar = calendar[calendar <= np.datetime64(end, "D")][-max(sessions, 1) :]
        ordered = tuple(sorted(set(symbols)))
        closes = np.full((len(calendar), len(ordered)), np.nan)
        opens: FloatMatrix | None = None
        for column, symbol in enumerate(ordered):
            series = self._read(symbol)
            stretch = _stretch(series.dates, calendar)
            if stretch is not None:
                rows, taken = stretch
                closes[rows, column] = series.closes[taken]
                if series.opens is not None:
                    if opens is None:
                        opens = np.full_like(closes, np.nan)
                    opens[rows, column] = series.opens[taken]
                continue
            positions = np.searchsorted(series.dates, calendar)
            positions = np.minimum(positions, len(series.dates) - 1)
            hit = series.dates[positions] == calendar
            closes[hit, column] = series.closes[positions[hit]]
            if series.opens is not None:
                if opens is None:
                    opens = np.full_like(closes, np.nan)
                opens[hit, column] = series.opens[positions[hit]]
        return PriceHistory(dates=calendar, symbols=ordered, closes=closes, opens=opens)

    def latest_prices(
        self, symbols: Sequence[str], session: date, now: datetime | None = None
    ) -> dict[str, float]:
        """The files' closes of ``session``: in a simulation, what a symbol traded at a
        few minutes before the close is its close (``now`` has nothing to measure: a
        file's prices carry no time of day)."""
        wanted = sorted(set(symbols))
        history = self.history(wanted, session, 1)
        if not len(history.dates) or history.session(0) != session:
            last = self.sessions()[-1]
            raise DataError(
                f"no prices for {session.isoformat()} in the price data (it ends {last})",
                kind=DataErrorKind.STALE,
            )
        return session_prices(history, session)
