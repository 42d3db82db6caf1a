"""Every row of every reference symphony decides exactly as the engine always has.

Each case's root weights (every symbol, every session, to 1e-9) and validity are
hashed; the digests were taken from the engine before its fast paths (the filter's
picks without a full ranking where no tie crosses the cut, shared asset series,
in-place sub-portfolio returns, single-call indicator scans) existed. The reference
symphonies: the built-ins, generated exports of several seeds and sizes, and generated
benchmark symphonies, over the bundled prices.
"""

from __future__ import annotations

import hashlib
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.files.symphonies import builtin_symphony
from alchemiser.strategy.base import ALL_HISTORY
from alchemiser.strategy.symphony.ast import Symphony
from alchemiser.strategy.symphony.evaluator import Evaluation, evaluate
from alchemiser.strategy.symphony.parser import parse_symphony, symbols
from tests.bench_scripts import bench_script

ROOT = Path(__file__).resolve().parents[3]
BUNDLED = ROOT / "src/alchemiser/data/prices"
AS_OF = date(2026, 7, 31)
STORE = FilePriceStore.bundled()


@cache
def reference(case: str) -> Symphony:
    """A reference symphony by name: ``builtin:NAME``, ``export:SEED:NODES`` or
    ``bench:SEED:IFS:FILTERS``."""
    kind, _, rest = case.partition(":")
    if kind == "builtin":
        return builtin_symphony(rest)
    if kind == "export":
        seed, nodes = (int(part) for part in rest.split(":"))
        text, _ = bench_script("gen_symphony").generate(
            seed=seed, nodes=nodes, size=0, directory=BUNDLED
        )
        return parse_symphony(text, f"{case}.clj")
    seed, ifs, filters = (int(part) for part in rest.split(":"))
    bench = bench_script("bench_symphony")
    setattr(bench, "MIN_IFS", ifs)  # noqa: B010 (the generator's size knobs)
    setattr(bench, "MIN_FILTERS", filters)  # noqa: B010
    return parse_symphony(bench.Generator(seed).symphony(), f"{case}.clj")


def digest(evaluation: Evaluation) -> str:
    """sha256 (16 hex digits) of the root's validity and every weight series to 1e-9 (a
    sum's order may move its last bits; nothing a decision reads moves further)."""
    hashed = hashlib.sha256(evaluation.root.valid.tobytes())
    for symbol, series in sorted(evaluation.root.weights.items()):
        hashed.update(symbol.encode())
        hashed.update((np.round(series, 9) + 0.0).tobytes())
    return hashed.hexdigest()[:16]


DIGESTS = {
    "bench:1:60:10": "fdd4b8172cae9f9f",
    "bench:20260731:1000:250": "79e669235e5d50cd",
    "bench:2:60:10": "5dc23b993f867d1c",
    "builtin:kmlm-switcher": "b41737ca883223b4",
    "builtin:nuclear": "5678de8d9b02dd65",
    "builtin:tecl": "4293886991e0d720",
    "export:0:1500": "4e6bc613d0e189ae",
    "export:152026:5000": "897af24ab505f23d",
    "export:1:1500": "74b579c733eb069e",
    "export:2:800": "1bf4e86f63ec0dce",
}


@pytest.mark.parametrize("case", sorted(DIGESTS))
def test_every_row_decides_as_before(case: str) -> None:
    symphony = reference(case)
    history = STORE.history(sorted(symbols(symphony)), AS_OF, ALL_HISTORY)
    assert digest(evaluate(symphony, history)) == DIGESTS[case]
