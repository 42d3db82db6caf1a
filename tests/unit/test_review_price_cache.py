"""A damaged binary copy of a price file is ignored and rebuilt, whatever its bytes:
these copies are valid archives or ``.npy`` headers that ``np.load`` takes at their
word, and the price store must still answer with the file's own prices."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from alchemiser.adapters.files import price_cache
from alchemiser.adapters.files.prices import FilePriceStore

TEXT = "date,close\n2026-07-29,10.5\n2026-07-30,11.25\n2026-07-31,12\n"


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files count as settled however recently they were written."""
    monkeypatch.setattr(price_cache, "SETTLED_NS", 0)


def closes(directory: Path) -> list[float]:
    history = FilePriceStore(directory).history(["SPY"], np.datetime64("2026-07-31").item(), 10)
    return [float(v) for v in history.closes[:, 0]]


def damaged(directory: Path, data: bytes) -> Path:
    """A directory whose SPY copy holds ``data`` (once a good copy was written)."""
    (directory / "SPY.csv").write_text(TEXT)
    assert closes(directory) == [10.5, 11.25, 12.0]
    copy = directory / ".cache" / "SPY.csv.npy"
    assert copy.is_file()
    copy.write_bytes(data)
    return copy


def npy(header: str, body: bytes) -> bytes:
    """A version 1.0 ``.npy`` file with this header text (padded as numpy pads it)."""
    text = header.encode("latin1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + body


@pytest.mark.usefixtures("settled")
def test_a_copy_that_is_a_zip_archive_is_ignored(tmp_path: Path) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as stream:
        stream.writestr("x.npy", b"")
    copy = damaged(tmp_path, archive.getvalue())
    assert closes(tmp_path) == [10.5, 11.25, 12.0]
    assert copy.read_bytes()[:6] == b"\x93NUMPY"  # rebuilt


@pytest.mark.usefixtures("settled")
def test_a_copy_that_starts_like_a_zip_archive_is_ignored(tmp_path: Path) -> None:
    copy = damaged(tmp_path, b"PK\x03\x04" + bytes(range(256)))
    assert closes(tmp_path) == [10.5, 11.25, 12.0]
    assert copy.read_bytes()[:6] == b"\x93NUMPY"  # rebuilt


@pytest.mark.usefixtures("settled")
def test_a_copy_claiming_far_more_rows_than_it_holds_is_ignored(tmp_path: Path) -> None:
    # Not np.save's exact spelling (a space inside the shape), so np.load reads it.
    header = "{'descr': '<i8', 'fortran_order': False, 'shape': (999999999999999, ), }"
    copy = damaged(tmp_path, npy(header, bytes(64)))
    assert closes(tmp_path) == [10.5, 11.25, 12.0]
    assert copy.read_bytes()[:6] == b"\x93NUMPY"  # rebuilt
    assert len(copy.read_bytes()) < 1000
