"""A user's text file read whole, within a size cap: never a device, a pipe or a
directory, never more than the cap plus one byte, and UTF-8 or refused."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from alchemiser.errors import AlchemiserError

NONBLOCKING = getattr(os, "O_NONBLOCK", 0)
"""Opening a pipe with no writer must not wait for one (the check refuses it next)."""


def read_capped_text(path: Path, limit: int, refuse: Callable[[str], AlchemiserError]) -> str:
    """The UTF-8 text of the regular file ``path``, at most ``limit`` bytes; otherwise
    ``refuse(reason)`` is raised, the reason saying what is wrong with the file."""
    try:
        descriptor = os.open(path, os.O_RDONLY | NONBLOCKING)
    except (OSError, ValueError) as error:  # ValueError: a NUL in the path
        raise refuse(_reason(error)) from error
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise refuse("not a regular file")
        with os.fdopen(descriptor, "rb", closefd=False) as stream:
            data = stream.read(limit + 1)
    except OSError as error:
        raise refuse(_reason(error)) from error
    finally:
        os.close(descriptor)
    if len(data) > limit:
        raise refuse(f"larger than {_size(limit)}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = data[error.start]
        raise refuse(f"not UTF-8 text (byte 0x{byte:02x} at offset {error.start})") from None


def _reason(error: OSError | ValueError) -> str:
    return (error.strerror if isinstance(error, OSError) else None) or str(error)


def _size(limit: int) -> str:
    mib, rest = divmod(limit, 1 << 20)
    return f"{mib} MiB" if mib and not rest else f"{limit:,} bytes"
