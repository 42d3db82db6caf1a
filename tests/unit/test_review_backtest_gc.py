"""A backtest's effect on the cyclic garbage collector, and its errors for a range that
ends before the price data can feed the strategies' indicators."""

from __future__ import annotations

import gc
from datetime import date
from pathlib import Path

import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.backtest import run_backtest
from alchemiser.config import load_config
from alchemiser.errors import AlchemiserError

from .test_backtest import fixed

DEFAULT_CONFIG = Path(__file__).parents[2] / "src" / "alchemiser" / "defaults" / "default.toml"


class _Stop(Exception):
    """Raised by the progress callback to end a backtest part way through."""


def test_a_failed_backtest_restores_the_collector(tmp_path: Path) -> None:
    config = load_config(fixed(tmp_path))
    before = (gc.get_threshold(), gc.isenabled(), gc.get_freeze_count())

    def progress(done: int, total: int) -> None:
        if done == 5:
            raise _Stop

    with pytest.raises(_Stop):
        run_backtest(config, FilePriceStore.bundled(), date(2023, 1, 3), date(2023, 3, 1), progress)
    assert (gc.get_threshold(), gc.isenabled(), gc.get_freeze_count()) == before


@pytest.mark.xfail(
    strict=True,
    reason="the backtest ends with gc.unfreeze(), which also releases what the caller froze",
)
def test_a_backtest_leaves_what_the_caller_froze_frozen(tmp_path: Path) -> None:
    config = load_config(fixed(tmp_path))
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        run_backtest(config, FilePriceStore.bundled(), date(2023, 1, 3), date(2023, 1, 31))
        assert gc.get_freeze_count() >= frozen
    finally:
        gc.unfreeze()


@pytest.mark.xfail(
    strict=True,
    reason="a range before the symphonies' data reaches numpy with a negative length "
    "(ValueError from context.price_series), not a typed error",
)
def test_a_range_before_the_data_is_a_typed_error() -> None:
    config = load_config(DEFAULT_CONFIG)
    with pytest.raises(AlchemiserError):
        run_backtest(config, FilePriceStore.bundled(), date(1990, 1, 1), date(2000, 1, 5))
