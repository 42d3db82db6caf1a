"""Mutations of the bundled price files (byte flips, truncations, gzip corruption,
huge and odd numbers, odd headers, reordered and broken rows): the price reader either
reads a file or raises one of the product's typed errors, never anything else, never
slowly.

Every case comes from a seeded ``random.Random``: a failure names its case, and the
same seed and index reproduce it.
"""

from __future__ import annotations

import gzip
import random
import zlib
from pathlib import Path

import pytest

from alchemiser.adapters.files.prices import FilePriceStore, bundled_prices_dir
from alchemiser.errors import DataError
from tests.unit.fuzzing import each_case, mutate_text

pytestmark = pytest.mark.slow

CASES = 3000


def bundled_texts() -> list[str]:
    directory = bundled_prices_dir()
    names = sorted(e.name for e in directory.iterdir() if e.name.endswith(".csv.gz"))
    return [gzip.decompress(directory.joinpath(n).read_bytes()).decode() for n in names]


def price_text(rng: random.Random, texts: list[str]) -> str:
    """A real file, or a run of its rows under its header, maybe mutated line-wise."""
    header, *rows = rng.choice(texts).splitlines()
    if rng.random() < 0.9:
        start = rng.randrange(0, len(rows))
        rows = rows[start : start + rng.randrange(1, 300)]
    roll = rng.random()
    if roll < 0.2:
        header, rows = wider(rng, rows)
    elif roll < 0.3:
        header = rng.choice(
            [
                "DATE,CLOSE",
                " date , close ",
                "\ufeffdate,close",
                "close,date",
                "date,close,close",
                "date,price",
                "date;close",
                "",
                "date,close,open,high,low,volume,extra",
            ]
        )
    for _ in range(rng.randrange(0, 4)):
        rows = mutate_rows(rng, rows)
    ending = rng.choice(["\n", "\n", "\r\n", "\r", "\u2028", ""])
    return ending.join([header, *rows]) + rng.choice(["", ending, "\n\n"])


def wider(rng: random.Random, rows: list[str]) -> tuple[str, list[str]]:
    extra = rng.sample(["open", "high", "low", "volume"], rng.randrange(0, 5))
    names = ["date", "close", *extra]
    rng.shuffle(names)
    out = []
    for row in rows:
        day, _, close = row.partition(",")
        values = {"date": day, "close": close}
        cells = [values.get(n, rng.choice([close, "", "0", "1e3", close])) for n in names]
        out.append(",".join(cells))
    header = ",".join(n.upper() if rng.random() < 0.1 else n for n in names)
    return header, out


HUGE = ["1e308", "1e309", "-1e309", "9" * 400, "1" + "0" * 5000, "inf", "nan", "-0", "0", "1_000"]
ODD = ["0x10", "١٢", "1,5", "", " ", "\x00", "2026-07-31", "1e-400", "+1.5", ".5", "5."]


def mutate_rows(rng: random.Random, rows: list[str]) -> list[str]:
    rows = list(rows)
    if not rows:
        return [rng.choice(ODD + HUGE)]
    at = rng.randrange(0, len(rows))
    roll = rng.random()
    day, _, rest = rows[at].partition(",")
    if roll < 0.25:
        cells = rest.split(",")
        cells[rng.randrange(0, len(cells))] = rng.choice(HUGE + ODD)
        rows[at] = ",".join([day, *cells])
    elif roll < 0.4:
        rows[at] = ",".join(
            [
                rng.choice(
                    [
                        "0000-01-01",
                        "9999-12-31",
                        "2026-02-30",
                        "-2026-07-31",
                        "2026-7-31",
                        "+2026-07-31",
                        "20260731",
                        "2026-07",
                    ]
                ),
                rest,
            ]
        )
    elif roll < 0.5:
        rows.insert(at, rows[at])  # a repeated date
    elif roll < 0.6:
        rows[at], rows[-1] = rows[-1], rows[at]  # out of order
    elif roll < 0.7:
        del rows[at]
    elif roll < 0.8:
        rows[at] = mutate_text(rng, rows[at])
    elif roll < 0.9:
        rows[at] = rows[at] + rng.choice([",", ",1", ",,", "\x00", " ", "\u2028x"])
    else:
        rows[at] = rng.choice(["", " ", ",", "date,close", "x" * 100_000])
    return rows


def flip(rng: random.Random, raw: bytes, count: int) -> bytes:
    data = bytearray(raw)
    for _ in range(count):
        if data:
            data[rng.randrange(0, len(data))] ^= 1 << rng.randrange(0, 8)
    return bytes(data)


def price_file(rng: random.Random, texts: list[str]) -> tuple[str, bytes]:
    text = price_text(rng, texts)
    raw = text.encode("utf-8", "surrogatepass")
    roll = rng.random()
    if roll < 0.25:
        return "SPY.csv", flip(rng, raw, rng.randrange(0, 4)) if rng.random() < 0.3 else raw
    packed = gzip.compress(raw, compresslevel=rng.choice([1, 6, 9]))
    if roll < 0.45:
        return "SPY.csv.gz", packed
    if roll < 0.65:  # bit flips anywhere: header, deflate stream, CRC, length
        return "SPY.csv.gz", flip(rng, packed, rng.randrange(1, 6))
    if roll < 0.75:
        return "SPY.csv.gz", packed[: rng.randrange(0, len(packed))]
    if roll < 0.85:  # trailing bytes, a second member, a raw deflate stream
        extra = rng.choice([b"\x00" * 8, b"garbage", packed, zlib.compress(raw), b"\x1f\x8b"])
        return "SPY.csv.gz", packed + extra
    if roll < 0.9:
        return "SPY.csv.gz", zlib.compress(raw)
    start = rng.randrange(0, len(packed))
    return "SPY.csv.gz", packed[:start] + rng.randbytes(rng.randrange(1, 64)) + packed[start:]


def test_mutated_price_files_read_or_are_data_errors(tmp_path: Path) -> None:
    texts = bundled_texts()
    read = 0

    def check(rng: random.Random) -> None:
        nonlocal read
        name, raw = price_file(rng, texts)
        directory = tmp_path / str(rng.random())
        directory.mkdir()
        (directory / name).write_bytes(raw)
        store = FilePriceStore(directory)
        try:
            store.check("SPY")
        except DataError:
            return
        read += 1
        last = store.latest_session()
        history = store.history(["SPY"], last, 5)
        assert history.dates[-1] == last
        store.latest_prices(["SPY"], last)
        assert store.is_session(last)

    each_case(6, CASES, check)
    assert read > CASES // 20  # the mutations leave some files readable, too
