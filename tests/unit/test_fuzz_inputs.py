"""Mutated config and symphony files, read from disk as the product reads them: each
loads, or fails with one of the product's typed errors (an ``AlchemiserError``), never
anything else, never slowly.

Seeds are the files the product ships (the embedded default, ``examples/*.toml``, the
documentation's multi-account example and the built-in symphonies); each case mutates
one with byte flips, truncations, random insertions, deep nesting, huge numbers and
bytes that are not UTF-8, like ``tests/unit/symphony/test_fuzz.py`` does for texts.
"""

from __future__ import annotations

import contextlib
import random
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alchemiser.adapters.files.symphonies import read_symphony_file
from alchemiser.config import AppConfig, load_config
from alchemiser.errors import AlchemiserError

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "alchemiser"
CASES = 3000
FUZZ = settings(
    max_examples=CASES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MULTI_ACCOUNT = b"""broker = "alpaca"
mode = "paper"
[alpaca]
secret_id = "alchemiser/main"
account_number = "PA1"
[risk]
max_order_notional = 20000

[[strategies]]
name = "core"
allocation = 0.6
builtin = "nuclear"
kind = "symphony"

[[strategies]]
name = "fixed"
allocation = 0.4
weights = { SPY = 0.5, "BRK.B" = 0.25, TLT = 0.25 }
rebalance_threshold = 0.05

[[accounts]]
account = "main"

[[accounts]]
account = "ira"
mode = "live"
alpaca = { secret_id = "alchemiser/ira", account_number = "PA2" }
risk = { max_order_notional = 5000 }
"""
CONFIG_SEEDS = [
    (PACKAGE / "defaults" / "default.toml").read_bytes(),
    *(path.read_bytes() for path in sorted((ROOT / "examples").glob("*.toml"))),
    MULTI_ACCOUNT,
]
SYMPHONY_SEEDS = [
    path.read_bytes() for path in sorted((PACKAGE / "strategy" / "builtin").glob("*.clj"))
]
TOML_NOISE = b"[]{}=\"'.,#\n\t -+_0123456789eEinfatrulsxob:TZ\\\x00\xff\xba\xc3\xe2\x80"
LISP_NOISE = b"()[]{}\"\\;:,. \n\t-+0123456789eE/#@'abnilrsktquvwxyz\xc3\xa9\xef\xbb\xbf\x00\xba"
DEEP = [b"[", b"{a=", b"[[", b"{ x = ["]
LISP_DEEP = [b"(", b"[", b"{:a ", b'(if (> (rsi "SPY" {:window 10}) 70) [']


def mutate(data: bytes, rng: random.Random, times: int, noise: bytes, deep: list[bytes]) -> bytes:
    for _ in range(times):
        at = rng.randrange(len(data) + 1)
        values = [i + 2 for i in range(len(data)) if data.startswith(b"= ", i)]
        if values and rng.random() < 0.5:  # where a value starts: reaches past the syntax
            at = rng.choice(values)
        kind = rng.randrange(8)
        if kind == 0 and data:  # flip bits of one byte
            at = min(at, len(data) - 1)
            data = data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :]
        elif kind == 1:  # truncate
            data = data[:at]
        elif kind == 2:  # insert noise
            span = rng.randint(1, 8)
            data = data[:at] + bytes(rng.choice(noise) for _ in range(span)) + data[at:]
        elif kind == 3:  # delete
            data = data[:at] + data[at + rng.randint(1, 16) :]
        elif kind == 4:  # nest deeply, closed or not
            depth = rng.choice([10, 100, 500, 1000, 2000, 5000])
            opening = rng.choice(deep)
            closing = bytes(reversed(opening.translate(bytes.maketrans(b"([{", b")]}")))).strip(
                b"=a :x"
            )
            closed = closing * depth if rng.random() < 0.7 else b""
            data = data[:at] + opening * depth + closed + data[at:]
        elif kind == 5:  # a huge number, or one replaced by it
            digits = rng.choice([20, 310, 4300, 4301, 10_000])
            number = rng.choice(["", "-", "0x", "1e", "0."]) + "9" * digits
            data = data[:at] + number.encode() + data[at:]
        elif kind == 6:  # bytes that are not UTF-8 text
            data = (
                data[:at]
                + bytes(rng.choice(b"\x80\xba\xc3\xed\xf5\xff") for _ in range(2))
                + data[at:]
            )
        else:  # duplicate a slice elsewhere
            piece = data[at : at + rng.randint(1, 64)]
            where = rng.randrange(len(data) + 1)
            data = data[:where] + piece + data[where:]
    return data


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def settle(call: Callable[[], object]) -> None:
    """Run ``call``: it returns, or raises an AlchemiserError (a hang is pytest-timeout's
    to catch: no test here times the machine)."""
    with contextlib.suppress(AlchemiserError):
        call()


def load_every_account(path: Path) -> None:
    config: AppConfig = load_config(path)
    for name in config.account_names():
        config.for_account(name)


@FUZZ
@given(
    seed=st.integers(0, 2**32), which=st.integers(0, len(CONFIG_SEEDS) - 1), times=st.integers(1, 4)
)
def test_mutated_configs_load_or_fail_with_a_typed_error(
    scratch: Path, seed: int, which: int, times: int
) -> None:
    rng = random.Random(seed)
    path = scratch / "config.toml"
    path.write_bytes(mutate(CONFIG_SEEDS[which], rng, times, TOML_NOISE, DEEP))
    settle(lambda: load_every_account(path))


@FUZZ
@given(
    seed=st.integers(0, 2**32),
    which=st.integers(0, len(SYMPHONY_SEEDS) - 1),
    times=st.integers(1, 4),
)
def test_mutated_symphony_files_read_or_fail_with_a_typed_error(
    scratch: Path, seed: int, which: int, times: int
) -> None:
    rng = random.Random(seed)
    path = scratch / "symphony.clj"
    path.write_bytes(mutate(SYMPHONY_SEEDS[which], rng, times, LISP_NOISE, LISP_DEEP))
    settle(lambda: read_symphony_file(path))
