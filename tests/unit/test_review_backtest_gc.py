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


def test_a_backtest_leaves_what_the_caller_froze_frozen(tmp_path: Path) -> None:
    config = load_config(fixed(tmp_path))
    kept = [["the caller's"]]  # a tracked object the caller sets aside
    gc.freeze()
    try:
        assert not any(o is kept for o in gc.get_objects())  # frozen: out of every generation
        run_backtest(config, FilePriceStore.bundled(), date(2023, 1, 3), date(2023, 1, 31))
        assert gc.get_freeze_count() > 0
        assert not any(o is kept for o in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(o is kept for o in gc.get_objects())


def test_a_range_before_the_data_is_a_typed_error() -> None:
    config = load_config(DEFAULT_CONFIG)
    with pytest.raises(AlchemiserError, match="no sessions between 1990-01-01 and 2000-01-05"):
        run_backtest(config, FilePriceStore.bundled(), date(1990, 1, 1), date(2000, 1, 5))
