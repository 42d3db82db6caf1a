"""A binary copy of a parsed price file, kept in ``.cache/`` beside it, so that the next
process reads the arrays instead of inflating and parsing the text again.

``<dir>/.cache/<file>.npy`` is one int64 array: a header (a format mark, the source
file's size, modification and change times in nanoseconds, inode, the number of rows
and of series, a CRC-32 of the data) then the dates, the closes and, when the file has
them, the opens (the floats' bits). A copy is used only when the source's ``stat`` still
gives the same size, times and inode and the CRC checks out; anything else (missing,
stale, truncated, corrupt, unreadable) is ignored and the file parsed again, and a copy
that cannot be written is not written. A copy is written only for a file whose last
change is a couple of seconds old, so that a later change cannot share its times.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from alchemiser.domain.prices import DateArray, FloatMatrix

Series = tuple[DateArray, FloatMatrix, FloatMatrix | None]
Stamp = tuple[int, int, int, int]

CACHE_DIR = ".cache"
SETTLED_NS = 2_000_000_000
"""How long ago a file must have last changed for a copy of it to be written."""
_MARK = 0x616C6368_70726331  # "alchprc1"
_HEADER = 8
_NPY_PREFIX = 10
"""A ``.npy`` file's magic string, version and header length (format version 1.0)."""
_NPY_HEADER = re.compile(
    rb"\x93NUMPY\x01\x00(..)"
    rb"\{'descr': '<i8', 'fortran_order': False, 'shape': \(([0-9]{1,12}),\), \} *\n",
    re.DOTALL,
)
"""The header ``np.save`` writes for a 1-D int64 array (little-endian)."""


def stamp(path: Path) -> Stamp | None:
    """What invalidates a copy: the file's size, mtime, ctime and inode (None if
    ``stat`` fails)."""
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)


def writable(directory: Path) -> bool:
    """A directory this process may keep copies in."""
    return directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)


def _copy(path: Path) -> Path:
    return path.parent / CACHE_DIR / f"{path.name}.npy"


def load(path: Path, seen: Stamp) -> Series | None:
    """The copy of ``path`` made when it had stamp ``seen``, or None."""
    try:
        data = _read(_copy(path))
    except (OSError, ValueError, EOFError):
        return None
    if data.dtype != np.int64 or data.ndim != 1 or len(data) < _HEADER:
        return None
    mark, size, mtime, ctime, inode, rows, series, crc = (int(v) for v in data[:_HEADER])
    body = data[_HEADER:]
    if (mark, (size, mtime, ctime, inode)) != (_MARK, seen) or series not in (2, 3):
        return None
    if rows < 1 or len(body) != rows * series or zlib.crc32(body.tobytes()) != crc:
        return None
    dates: DateArray = body[:rows].view("datetime64[D]")
    closes: FloatMatrix = body[rows : 2 * rows].view(np.float64)
    opens: FloatMatrix | None = body[2 * rows :].view(np.float64) if series == 3 else None
    return dates, closes, opens


def _read(copy: Path) -> npt.NDArray[np.int64]:
    """The array in ``copy``, which must be exactly what ``save`` writes: the ``.npy``
    header ``np.save`` writes for a 1-D little-endian int64 array, then as many values as
    it claims and nothing more. Anything else (an archive, another header, a claim the
    file's size does not hold) is a ``ValueError``: the copy is ignored and rebuilt. The
    size is checked before the data is read, so junk is never read whole."""
    with copy.open("rb") as stream:
        prefix = stream.read(_NPY_PREFIX)
        if len(prefix) != _NPY_PREFIX:
            raise ValueError(f"{copy}: not a price copy")
        length = _NPY_PREFIX + int.from_bytes(prefix[-2:], "little")
        head = prefix + stream.read(length - _NPY_PREFIX)
        header = _NPY_HEADER.fullmatch(head)
        if header is None:
            raise ValueError(f"{copy}: not a price copy")
        count = int(header.group(2))
        if os.fstat(stream.fileno()).st_size != length + 8 * count:
            raise ValueError(f"{copy}: its size is not what its header claims")
        data: npt.NDArray[np.int64] = np.empty(count, dtype="<i8")
        # An ndarray is a writable buffer; numpy's stubs do not say so before 3.12.
        if stream.readinto(data) != 8 * count:  # type: ignore[arg-type]
            raise ValueError(f"{copy}: truncated")
    return data


def save(path: Path, seen: Stamp, arrays: Series) -> None:
    """Keep a copy of ``arrays``, parsed from ``path`` at stamp ``seen``, if its last
    change has settled; best effort: a copy that cannot be written is skipped."""
    if time.time_ns() - max(seen[1], seen[2]) < SETTLED_NS:
        return
    dates, closes, opens = arrays
    parts: list[npt.NDArray[np.int64]] = [
        dates.astype("datetime64[D]").view(np.int64),
        closes.astype(np.float64).view(np.int64),
    ]
    if opens is not None:
        parts.append(opens.astype(np.float64).view(np.int64))
    body = np.concatenate(parts)
    header = [_MARK, *seen, len(dates), len(parts), zlib.crc32(body.tobytes())]
    data = np.concatenate((np.array(header, dtype=np.int64), body))
    target = _copy(path)
    try:
        target.parent.mkdir(exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.save(stream, data, allow_pickle=False)
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError:
        return
