"""The RSI kernel's division: closes whose moves overflow the averages (a close near the
largest double) gave NaN quietly before; the division must stay as quiet as it was."""

from __future__ import annotations

import warnings

import numpy as np

from alchemiser.strategy.indicators import relative_strength_index


def test_rsi_of_overflowing_moves_warns_no_invalid_division() -> None:
    closes = np.array([1.0, 1.7e308] * 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rsi = relative_strength_index(closes, 2)
    assert np.isnan(rsi[3:]).all()  # the values, as before: no average, no RSI
    invalid = [str(w.message) for w in caught if "invalid value" in str(w.message)]
    assert invalid == []
