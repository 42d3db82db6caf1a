"""Writing per-ticker price files: what ``alchemiser data fetch`` stores.

A file is ``<TICKER>.csv`` with the header ``date,open,high,low,close,volume``, one row
a session in date order. A file already there (``.csv`` or ``.csv.gz``, read as the
price reader reads them, the ``.gz`` first) keeps its rows as they are: rows of a
``date,close`` file keep empty open, high, low and volume cells. New sessions are
appended after its last row, or the whole file is replaced (a history re-adjusted
for a split or dividend). The result is always written as ``<TICKER>.csv``; a
``<TICKER>.csv.gz`` it replaces is removed once the new file is in place.

A write is atomic: the text goes to a temporary file in the same directory, which is
read back with the price reader before it replaces the old file (``os.replace``), so
a file the reader refuses, or half a file, is never left behind.

A file's name is its ticker's: a symbol whose file would not sit directly in the
directory (a path separator, ``..``) is a ConfigError before anything is read or written.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import NamedTuple

from alchemiser.adapters.files.prices import check_price_text, read_price_text
from alchemiser.domain.prices import DailyBar
from alchemiser.errors import ConfigError

COLUMNS = ("date", "open", "high", "low", "close", "volume")
HEADER = ",".join(COLUMNS)


class Row(NamedTuple):
    """One session of a file, its cells as text (empty: not in the file)."""

    day: date
    open: str
    high: str
    low: str
    close: str
    volume: str

    def text(self) -> str:
        return ",".join((self.day.isoformat(), *self[1:]))


class Stored(NamedTuple):
    """A ticker's file as found: where it is and its rows (at least one)."""

    path: Path
    rows: list[Row]

    @property
    def last(self) -> Row:
        return self.rows[-1]


def _number(value: float) -> str:
    """The shortest text that reads back as ``value`` (an integral volume without .0)."""
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def bar_row(bar: DailyBar) -> Row:
    return Row(
        bar.day,
        repr(bar.open),
        repr(bar.high),
        repr(bar.low),
        repr(bar.close),
        _number(bar.volume),
    )


def _inside(directory: Path, name: str) -> Path:
    """``directory / name``; ConfigError when that file would not sit directly in
    ``directory`` (``name`` holds a separator, or is ``.`` or ``..``). The name itself is
    not resolved: a write replaces a link in the directory, never what it points to."""
    path = directory / name
    alone = name not in ("", ".", "..") and Path(name).name == name and "\\" not in name
    if not alone or path.parent.resolve() != directory.resolve():
        raise ConfigError(f"{name!r} is not a file name in the price directory", field="symbols")
    return path


def stored_path(directory: Path, symbol: str) -> Path | None:
    """The file the price reader would read for ``symbol`` (``.csv.gz`` first)."""
    for name in (f"{symbol}.csv.gz", f"{symbol}.csv"):
        path = _inside(directory, name)
        if path.is_file():
            return path
    return None


def read_stored(directory: Path, symbol: str) -> Stored | None:
    """``symbol``'s file in ``directory`` and its rows, or None when there is none.
    DataError when the price reader refuses it (it is then left alone)."""
    path = stored_path(directory, symbol)
    if path is None:
        return None
    text = read_price_text(path, compressed=path.name.endswith(".gz"))
    check_price_text(text, path.name)
    header, _, body = text.partition("\n")
    names = [name.strip().lower() for name in header.split(",")]
    rows = []
    for line in body.splitlines():
        if not line.strip():
            continue
        cells = dict(zip(names, (cell.strip() for cell in line.split(",")), strict=True))
        rows.append(
            Row(
                date.fromisoformat(cells["date"]),
                *(cells.get(name, "") for name in COLUMNS[1:]),
            )
        )
    return Stored(path, rows)


def appended(stored: Sequence[Row], bars: Iterable[DailyBar]) -> list[Row]:
    """``stored`` as it is, then every bar after its last session."""
    last = stored[-1].day if stored else None
    return [*stored, *(bar_row(b) for b in bars if last is None or b.day > last)]


def render(rows: Iterable[Row]) -> str:
    return HEADER + "\n" + "".join(row.text() + "\n" for row in rows)


def write_rows(directory: Path, symbol: str, rows: Sequence[Row]) -> Path:
    """Replace ``symbol``'s file with ``rows`` (see the module docstring); the
    directory is created when missing. DataError, and nothing replaced, when the text
    does not read back as a price file."""
    target = _inside(directory, f"{symbol}.csv")
    directory.mkdir(parents=True, exist_ok=True)
    text = render(rows)
    check_price_text(text, target.name)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed before it is replaced)
        "w",
        encoding="utf-8",
        newline="\n",
        dir=directory,
        prefix=f".{symbol}.",
        suffix=".tmp",
        delete=False,
    )
    temporary = Path(handle.name)
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        check_price_text(read_price_text(temporary, compressed=False), target.name)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    _inside(directory, f"{symbol}.csv.gz").unlink(missing_ok=True)
    return target
