"""Price files, the reference calendar, reference prices and freshness."""

from __future__ import annotations

import gzip
import math
import zlib
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from alchemiser import bootstrap
from alchemiser.adapters.files.prices import (
    MAX_FILE_BYTES,
    MAX_ROWS,
    FilePriceStore,
    bundled_prices_dir,
)
from alchemiser.config import load_config
from alchemiser.domain.prices import PriceHistory, check_fresh, reference_prices
from alchemiser.errors import DataError, DataErrorKind
from tests.conftest import LAST, write_prices


def test_history_aligns_on_reference_calendar(store: FilePriceStore) -> None:
    history = store.history(["TLT", "SPY", "AAA"], LAST, 3)
    assert history.symbols == ("AAA", "SPY", "TLT")
    assert [str(d) for d in history.dates] == ["2026-07-29", "2026-07-30", "2026-07-31"]
    assert math.isnan(history.closes[-1, 0])
    assert history.closes[-1, 1] == pytest.approx(520.0)


def test_latest_session(store: FilePriceStore) -> None:
    assert store.latest_session() == LAST
    assert store.latest_session(before=LAST) == date(2026, 7, 30)
    assert store.latest_session(before=date(2026, 8, 3)) == LAST
    with pytest.raises(DataError):
        store.latest_session(before=date(2000, 1, 1))


def test_plain_csv_files_are_read(tmp_path: Path) -> None:
    write_prices(tmp_path, {"SPY": {"2026-07-31": 1.5}}, gz=False)
    assert FilePriceStore(tmp_path).history(["SPY"], LAST, 1).closes[0, 0] == 1.5


@pytest.mark.parametrize(
    ("text", "fragment", "kind"),
    [
        ("day,price\n2026-07-31,1\n", "header", DataErrorKind.MALFORMED),
        ("date,close\n", "no rows", DataErrorKind.MALFORMED),
        ("date,close\n2026-07-31\n", ":2:", DataErrorKind.MALFORMED),
        ("date,close\n2026-13-31,1\n", ":2:", DataErrorKind.MALFORMED),
        ("date,close\n20260731,1\n", ":2:", DataErrorKind.MALFORMED),
        ("date,close\n2026-W31-5,1\n", ":2:", DataErrorKind.MALFORMED),
        ("date,close\n2026-07-31,abc\n", ":2:", DataErrorKind.MALFORMED),
        ("date,close\n2026-07-31,nan\n", ":2:", DataErrorKind.MALFORMED),
        ("date,close\n2026-07-30,1\n2026-07-31,inf\n", ":3:", DataErrorKind.NON_FINITE),
        ("date,close\n2026-07-31,0\n", ":2:", DataErrorKind.NON_POSITIVE),
        ("date,close\n2026-07-31,-5\n", ":2:", DataErrorKind.NON_POSITIVE),
        ("date,close\n2026-07-31,1\n2026-07-30,1\n", "increasing", DataErrorKind.MALFORMED),
    ],
)
def test_malformed_files_raise_data_error(
    tmp_path: Path, text: str, fragment: str, kind: DataErrorKind
) -> None:
    (tmp_path / "SPY.csv").write_text(text)
    with pytest.raises(DataError, match=fragment) as error:
        FilePriceStore(tmp_path).history(["SPY"], LAST, 1)
    assert error.value.kind is kind


@pytest.mark.parametrize(
    "raw", [b"date,close\n2026-07-31,\xff\n", b"\x1f\x8b not really gzip"], ids=["utf8", "gzip"]
)
def test_unreadable_files_raise_data_error(tmp_path: Path, raw: bytes) -> None:
    name = "SPY.csv.gz" if raw.startswith(b"\x1f") else "SPY.csv"
    (tmp_path / name).write_bytes(raw)
    with pytest.raises(DataError) as error:
        FilePriceStore(tmp_path).history(["SPY"], LAST, 1)
    assert error.value.kind is DataErrorKind.MALFORMED


def test_a_corrupt_gzip_stream_is_malformed(tmp_path: Path) -> None:
    # A valid gzip header, then a deflate block of an invalid type (a zlib error).
    (tmp_path / "SPY.csv.gz").write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff")
    with pytest.raises(DataError, match=r"^SPY\.csv\.gz: cannot read") as error:
        FilePriceStore(tmp_path).history(["SPY"], LAST, 1)
    assert error.value.kind is DataErrorKind.MALFORMED


@pytest.mark.parametrize("cut", [10, 20, -8, -3])
def test_a_truncated_gzip_file_is_malformed(tmp_path: Path, cut: int) -> None:
    raw = gzip.compress(b"date,close\n" + b"2026-07-31,1.5\n" * 100)
    (tmp_path / "SPY.csv.gz").write_bytes(raw[:cut])
    with pytest.raises(DataError, match=r"^SPY\.csv\.gz: ") as error:
        FilePriceStore(tmp_path).history(["SPY"], LAST, 1)
    assert error.value.kind is DataErrorKind.MALFORMED


def test_a_gzip_file_that_inflates_past_the_cap_is_malformed(tmp_path: Path) -> None:
    """About 2 MB that would inflate to 2 GiB: refused once past the cap, unread beyond."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"0" * (1 << 20)
    member = b"".join(packer.compress(chunk) for _ in range(64)) + packer.flush()
    (tmp_path / "SPY.csv.gz").write_bytes(member * 32)  # 32 members of 64 MiB each
    with pytest.raises(DataError, match=r"^SPY\.csv\.gz: .*more than 64 MiB") as error:
        FilePriceStore(tmp_path).history(["SPY"], LAST, 1)
    assert error.value.kind is DataErrorKind.MALFORMED


@pytest.mark.parametrize("name", ["SPY.csv", "SPY.csv.gz"])
def test_a_file_past_the_cap_is_malformed(tmp_path: Path, name: str) -> None:
    with (tmp_path / name).open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing much written
    with pytest.raises(DataError, match=rf"^{name}: .*more than 64 MiB") as error:
        FilePriceStore(tmp_path).history(["SPY"], LAST, 1)
    assert error.value.kind is DataErrorKind.MALFORMED


def test_a_file_of_the_most_rows_is_read_whatever_its_line_breaks(tmp_path: Path) -> None:
    first = date(1800, 1, 1)
    rows = "".join(f"{first + timedelta(days=i)},1\r\n" for i in range(MAX_ROWS))
    (tmp_path / "SPY.csv").write_text(f"date,close\r\n{rows}", newline="")
    assert len(FilePriceStore(tmp_path).sessions()) == MAX_ROWS


@pytest.mark.parametrize("header", ["date,close", "date,open,close"])
def test_a_file_with_too_many_rows_is_malformed(tmp_path: Path, header: str) -> None:
    first = date(1800, 1, 1)
    cells = ",2" if header == "date,open,close" else ""
    rows = "".join(f"{first + timedelta(days=i)}{cells},1\n" for i in range(MAX_ROWS + 1))
    (tmp_path / "SPY.csv").write_text(f"{header}\n{rows}")
    with pytest.raises(DataError, match=r"^SPY\.csv: more than 100000 rows") as error:
        FilePriceStore(tmp_path).history(["SPY"], LAST, 1)
    assert error.value.kind is DataErrorKind.MALFORMED


@pytest.mark.parametrize(
    "text",
    [
        "date,close,open\n2026-07-31,1,1,1\n",
        "date,close,open\n2026-07-31,1\n",
        "date,close,open\n2026-07-31,,1\n",
        "date,close,open\n2026-02-30,1,1\n",
        "date,close,open\n2026-07-31,1,-1\n",
        "date,close,volume\n2026-07-31,1,inf\n",
        "date,close,open\n2026-07-31,1,1\n2026-07-31,1,1\n",
        "close,date\n",
        f"date,close,open\n2026-07-31,1,{'9' * 400_000}x\n",
    ],
)
def test_wider_headers_fail_only_with_data_errors(tmp_path: Path, text: str) -> None:
    (tmp_path / "SPY.csv").write_text(text)
    with pytest.raises(DataError, match=r"^SPY\.csv") as error:
        FilePriceStore(tmp_path).history(["SPY"], LAST, 1)
    assert len(str(error.value)) < 300  # a long line is shown shortened


@pytest.mark.parametrize("header", ["date,open\x85,close", "date,close\u2028,open"])
def test_a_wider_header_is_read_up_to_its_newline(tmp_path: Path, header: str) -> None:
    """Cells are stripped of whitespace, also the kinds ``splitlines`` would break at."""
    (tmp_path / "SPY.csv").write_text(f"{header}\n2026-07-31,1,2\n")
    history = FilePriceStore(tmp_path).history(["SPY"], LAST, 1)
    assert history.opens is not None
    assert history.closes[0, 0] + history.opens[0, 0] == 3


def test_a_long_bad_line_is_shown_shortened(tmp_path: Path) -> None:
    (tmp_path / "SPY.csv").write_text(f"date,close\n2026-07-31,{'x' * 1_000_000}\n")
    with pytest.raises(DataError, match=r"^SPY\.csv:2:") as error:
        FilePriceStore(tmp_path).history(["SPY"], LAST, 1)
    assert len(str(error.value)) < 300


def test_missing_file_is_data_missing(store: FilePriceStore) -> None:
    with pytest.raises(DataError) as error:
        store.history(["ZZZ"], LAST, 1)
    assert error.value.kind is DataErrorKind.MISSING


def test_a_missing_file_names_the_directory_and_how_to_add_the_data(tmp_path: Path) -> None:
    directory = write_prices(tmp_path / "prices", {"SPY": {LAST: 1.0}})
    with pytest.raises(DataError) as error:
        FilePriceStore(directory).check("ZZZ")
    assert error.value.kind is DataErrorKind.MISSING
    assert str(error.value) == (
        f"ZZZ: no price file in {directory}: add {directory / 'ZZZ.csv'} "
        "with date,close rows (docs/CONFIG.md, [data])"
    )


def test_a_ticker_missing_from_the_bundled_prices_says_how_to_use_your_own() -> None:
    with pytest.raises(DataError) as error:
        FilePriceStore.bundled().check("ZZZ")
    assert error.value.kind is DataErrorKind.MISSING
    assert str(error.value) == (
        "ZZZ: no price file in the bundled prices (demo tickers only): fetch it with "
        "`alchemiser data fetch --symbols ZZZ --dir DIR`, or add ZZZ.csv with date,close "
        "rows to a directory of your own, and name the directory with --prices DIR or the "
        "config's [data] dir (docs/CONFIG.md, [data])"
    )


def _history(values: list[float]) -> PriceHistory:
    dates = np.array(["2026-07-29", "2026-07-30", "2026-07-31"], dtype="datetime64[D]")
    return PriceHistory(
        dates=dates, symbols=("X",), closes=np.array(values, dtype=float).reshape(3, 1)
    )


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([1.0, 1.0, math.nan], DataErrorKind.STALE),
        ([1.0, 1.0, math.inf], DataErrorKind.NON_FINITE),
        ([1.0, 1.0, 0.0], DataErrorKind.NON_POSITIVE),
        ([1.0, 1.0, -2.0], DataErrorKind.NON_POSITIVE),
        ([1.0, 1.0, 1e25], DataErrorKind.NON_FINITE),
    ],
)
def test_reference_prices_fail_closed(values: list[float], kind: DataErrorKind) -> None:
    with pytest.raises(DataError) as error:
        reference_prices(_history(values), ["X"], LAST)
    assert error.value.kind is kind


def test_reference_prices_convert_once_to_decimal() -> None:
    prices = reference_prices(_history([1.0, 2.0, 747.030029296875]), ["X"], LAST)
    assert prices == {"X": Decimal("747.0300")}


def test_reference_prices_need_the_exact_session() -> None:
    with pytest.raises(DataError) as error:
        reference_prices(_history([1.0, 2.0, 3.0]), ["X"], date(2026, 8, 1))
    assert error.value.kind is DataErrorKind.MISSING
    with pytest.raises(DataError):
        reference_prices(_history([1.0, 2.0, 3.0]), ["Y"], LAST)


def test_check_fresh() -> None:
    check_fresh(date(2026, 7, 31), date(2026, 8, 3), 5)
    with pytest.raises(DataError, match="limit 5"):
        check_fresh(date(2026, 7, 31), date(2026, 8, 6), 5)
    with pytest.raises(DataError, match="after"):
        check_fresh(date(2026, 8, 1), date(2026, 7, 31), 5)


def test_bundled_prices_cover_the_default_config() -> None:
    bundled = FilePriceStore.bundled()
    symbols = {s for a in bootstrap.strategies(load_config()) for s in a.strategy.symbols()}
    assert len(symbols) > 30
    session = bundled.latest_session()
    assert session == LAST
    assert (
        set(reference_prices(bundled.history(sorted(symbols), session, 1), symbols, session))
        == symbols
    )


def test_price_history_rejects_bad_shapes() -> None:
    dates = np.array(["2026-07-31", "2026-07-30"], dtype="datetime64[D]")
    with pytest.raises(ValueError, match="increasing"):
        PriceHistory(dates=dates, symbols=("X",), closes=np.ones((2, 1)))
    with pytest.raises(ValueError, match="shape"):
        PriceHistory(dates=dates[:1], symbols=("X",), closes=np.ones((2, 1)))


SHARED_PRICES = Path(__file__).resolve().parents[3] / "shared" / "data" / "prices"


@pytest.mark.skipif(
    not SHARED_PRICES.is_dir(), reason="../shared/data/prices is not beside the checkout"
)
def test_bundled_prices_are_unaltered_copies_of_the_source() -> None:
    bundled = Path(str(bundled_prices_dir()))
    files = sorted(bundled.glob("*.csv.gz"))
    assert len(files) >= 30
    for path in files:
        assert path.read_bytes() == (SHARED_PRICES / path.name).read_bytes(), path.name
