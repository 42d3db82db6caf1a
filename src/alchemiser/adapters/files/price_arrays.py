"""Price files read in one go with numpy, for the reader in ``prices``.

``parse`` returns a file's dates, closes and opens, or None at the least doubt: a
character the line-by-line reader would split a line at, a row without exactly one cell
per column, a date not exactly ``YYYY-MM-DD`` of the calendar, a value that reader would
refuse. The caller then reads the file line by line, which names the bad line. What
``parse`` returns is what that reader returns for the same text, bit for bit: the lines
and cells are found on the file's bytes, the dates computed from their digits, and each
number is ``float`` of its cell, as that reader reads it.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from alchemiser.domain.prices import DateArray, FloatMatrix

Cells = npt.NDArray[np.int64]
Series = tuple[DateArray, FloatMatrix, FloatMatrix | None]

_BREAKS = np.zeros(256, dtype=bool)
_BREAKS[[11, 12, 13, 28, 29, 30]] = True
"""ASCII characters ``str.splitlines`` splits at, besides ``\\n`` (``\\r\\n`` is replaced)."""
_DAY = 10
_ZERO, _NINE, _DASH, _COMMA, _NEWLINE = 48, 57, 45, 44, 10
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def parse(text: str, names: list[str]) -> Series | None:
    """The file's (dates, closes, opens or None), or None to read it line by line."""
    head, _, body = text.partition("\n")
    if len(head.removesuffix("\r").splitlines()) > 1:
        return None
    if "\r" in body:
        body = body.replace("\r\n", "\n")
    body = body.strip()
    if not body or not body.isascii():
        return None
    raw = np.frombuffer(body.encode("ascii"), dtype=np.uint8)
    if bool(_BREAKS[raw].any()):
        return None
    newlines = np.flatnonzero(raw == _NEWLINE)
    rows = len(newlines) + 1
    per = len(names) - 1
    commas = np.flatnonzero(raw == _COMMA)
    if len(commas) != rows * per:
        return None
    lines = np.searchsorted(newlines, commas)
    if not np.array_equal(lines, np.repeat(np.arange(rows), per)):
        return None
    cuts = commas.reshape(rows, per)
    first = np.column_stack((np.concatenate(([0], newlines + 1)), cuts + 1))
    last = np.column_stack((cuts, np.concatenate((newlines, [len(raw)]))))
    at = {name: i for i, name in enumerate(names)}
    cells = body.replace("\n", ",").split(",")
    dates = _dates(cells[at["date"] :: len(names)], first[:, at["date"]], last[:, at["date"]])
    if dates is None or (rows > 1 and not bool(np.all(dates[1:] > dates[:-1]))):
        return None
    columns: dict[str, FloatMatrix] = {}
    for name, i in at.items():
        if name == "date":
            continue
        numbers = _numbers(cells[i :: len(names)])
        if numbers is None:
            return None
        values, empty = numbers
        if name == "close" and bool(empty.any()):
            return None
        fine = np.isfinite(values) & (values >= 0 if name == "volume" else values > 0)
        if not bool(np.all(fine | empty)):
            return None
        columns[name] = values
    return dates, columns["close"], columns.get("open")


def _dates(days: list[str], first: Cells, last: Cells) -> DateArray | None:
    """Cells of exactly ``YYYY-MM-DD`` (ASCII digits, a day of the calendar), else None."""
    if not bool(np.all(last - first == _DAY)):
        return None
    cells = np.frombuffer("".join(days).encode("ascii"), dtype=np.uint8).reshape(-1, _DAY)
    if not bool(np.all(cells[:, [4, 7]] == _DASH)):
        return None
    digits = cells[:, [0, 1, 2, 3, 5, 6, 8, 9]] - np.uint8(_ZERO)  # below "0" wraps past 9
    if not bool(np.all(digits <= _NINE - _ZERO)):
        return None
    digits = digits.astype(np.int64)
    year = digits[:, :4] @ np.array([1000, 100, 10, 1])
    month = digits[:, 4] * 10 + digits[:, 5]
    day = digits[:, 6] * 10 + digits[:, 7]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    length = _MONTH_DAYS[np.clip(month, 0, 12)] + (leap & (month == 2))
    if not bool(np.all((year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= length))):
        return None
    # Days since 1970-01-01 of the proleptic Gregorian calendar, counted from March.
    shifted = year - (month <= 2)
    era = shifted // 400
    of_era = shifted - era * 400
    of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    of_cycle = of_era * 365 + of_era // 4 - of_era // 100 + of_year
    dates: DateArray = (era * 146097 + of_cycle - 719468).astype("datetime64[D]")
    return dates


def _numbers(cells: list[str]) -> tuple[FloatMatrix, npt.NDArray[np.bool_]] | None:
    """The cells' numbers (NaN where empty) and which are empty; None if one is not a
    number ``float`` reads as it is (a cell with other characters around it is left to
    the line-by-line reader)."""
    try:
        if "" not in cells:
            values = np.fromiter(map(float, cells), dtype=np.float64, count=len(cells))
            return values, np.zeros(len(cells), dtype=bool)
        numbers = np.fromiter(
            (float(cell) if cell else math.nan for cell in cells),
            dtype=np.float64,
            count=len(cells),
        )
    except ValueError:
        return None
    return numbers, np.array([not cell for cell in cells], dtype=bool)
