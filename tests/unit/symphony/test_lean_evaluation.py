"""An evaluation that keeps only what routes capital decides exactly as a full one.

Without a trace the engine drops each node's result once its parent has used it,
stores a filter's picks as a mask and one share per date, and finds a filter's best
columns without ranking every column. These tests hold it to the full computation:
every node's weight series combined bottom-up (as the engine did for every node before
routing capital top-down), the traced evaluation, and the complete ranking of each row.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.files.symphonies import BUILTINS, builtin_symphony
from alchemiser.strategy.base import ALL_HISTORY
from alchemiser.strategy.symphony import evaluator, ranking
from alchemiser.strategy.symphony.ast import Node, Symphony, WeightEqual
from alchemiser.strategy.symphony.evaluator import TIE_TOLERANCE, Evaluation, evaluate
from alchemiser.strategy.symphony.explain import explain
from alchemiser.strategy.symphony.parser import iter_nodes, parse_symphony, symbols
from alchemiser.strategy.symphony.strategy import SymphonyStrategy
from tests.bench_scripts import bench_script

START = date(2012, 1, 3)
AS_OF = date(2026, 7, 31)
STORE = FilePriceStore.bundled()
BUNDLED = Path(__file__).resolve().parents[3] / "src/alchemiser/data/prices"


def _full_ranking(
    key: npt.NDArray[np.float64], known: npt.NDArray[np.bool_]
) -> npt.NDArray[np.intp]:
    """Every row's columns in rank order: sorted by key, keys within the relative
    tolerance of their sorted neighbour tied and ordered by column."""
    width = key.shape[1]
    by_key = np.argsort(key, axis=1, kind="stable")
    ordered = np.take_along_axis(key, by_key, axis=1)
    scored = np.take_along_axis(known, by_key, axis=1)
    low, high = ordered[:, :-1], ordered[:, 1:]
    with np.errstate(invalid="ignore"):
        apart = (high - low) > TIE_TOLERANCE * np.maximum(np.abs(low), np.abs(high))
    apart |= scored[:, :-1] != scored[:, 1:]
    group = np.zeros(key.shape, dtype=np.intp)
    group[:, 1:] = np.cumsum(apart, axis=1)
    group_of_column = np.empty_like(group)
    np.put_along_axis(group_of_column, by_key, group, axis=1)
    ranked: npt.NDArray[np.intp] = np.argsort(
        group_of_column * width + np.arange(width), axis=1, kind="stable"
    )
    return ranked


@pytest.mark.parametrize("width", range(2, 9))
def test_best_columns_are_the_head_of_the_full_ranking(width: int) -> None:
    rng = np.random.default_rng(width)
    rows = 4_000
    # Few distinct values, some within the tolerance of each other, some unscored.
    base = rng.choice([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0], size=(rows, width))
    noise = rng.choice([0.0, 0.0, 1e-12, -1e-12, 1e-3], size=(rows, width))
    key = base + noise
    known = rng.random((rows, width)) > 0.15
    key = np.where(known, key, np.inf)
    for picks in range(1, width):
        expected = np.zeros(key.shape, dtype=bool)
        np.put_along_axis(expected, _full_ranking(key, known)[:, :picks], True, axis=1)
        got = ranking.best(key, known, picks)
        expected &= known
        assert np.array_equal(got, expected), picks


@pytest.mark.parametrize("width", [2, 3, 4, 5, 8, 12, 20])
def test_the_cut_is_the_partition_order_statistics(width: int) -> None:
    # The running extremes (few candidates) and the partition (many) give the picks-th
    # and next smallest key of every row: with ties, zeros of both signs (equal for
    # every use of the cut) and unscored (inf) keys, in either memory layout.
    rng = np.random.default_rng(100 + width)
    rows = 3_000
    key = rng.choice([-1.5, -0.0, 0.0, 0.25, 2.0, np.inf], size=(rows, width))
    spread = rng.random(key.shape) < 0.5
    key[spread] = rng.normal(size=int(spread.sum()))
    for layout in (key, np.asfortranarray(key)):
        for picks in range(1, width):
            cut, after = ranking._cut(layout, picks)
            smallest = np.partition(key, (picks - 1, picks), axis=1)
            assert np.array_equal(cut, smallest[:, picks - 1]), picks
            assert np.array_equal(after, smallest[:, picks]), picks


def _every_node_combined(symphony: Symphony) -> set[int]:
    return {id(node) for node in iter_nodes(symphony)} | {id(symphony.body)}


def _assert_same_decisions(symphony: Symphony, history_symbols: list[str]) -> None:
    history = STORE.history(history_symbols, AS_OF, ALL_HISTORY)
    lean = evaluate(symphony, history)
    assert not lean.evaluated.trace
    traced = evaluate(symphony, history, trace=True)
    first = history.row_index(START)
    rows = range(max(first, 0), len(history.dates))
    assert np.array_equal(lean.root.valid, traced.root.valid)
    assert lean.root.weights.keys() == traced.root.weights.keys()
    for symbol, series in lean.root.weights.items():
        assert np.array_equal(series, traced.root.weights[symbol])
    # The full computation: every node combines its children's weight series.
    full = _bottom_up(symphony, history_symbols)
    valid = lean.root.valid
    decided = [i for i in rows if valid[i]]
    assert decided
    for symbol in full.keys() | lean.root.weights.keys():
        ours = lean.root.weights.get(symbol, np.zeros(len(history.dates)))
        theirs = full.get(symbol, np.zeros(len(history.dates)))
        assert np.allclose(ours[decided], theirs[decided], rtol=0, atol=1e-9), symbol
    # Explaining from the lean evaluation traces it again: the same lines.
    for index in decided[:: max(1, len(decided) // 25)]:
        assert explain(lean, index) == explain(traced, index)


def _bottom_up(
    symphony: Symphony, history_symbols: list[str]
) -> dict[str, npt.NDArray[np.float64]]:
    history = STORE.history(history_symbols, AS_OF, ALL_HISTORY)
    original = evaluator._scored_subtrees
    evaluator._scored_subtrees = lambda root: _every_node_combined(symphony)  # type: ignore[assignment]
    try:
        evaluation: Evaluation = evaluate(symphony, history)
    finally:
        evaluator._scored_subtrees = original
    return evaluation.evaluated.results[id(symphony.body)].weights


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtins_decide_the_same_on_every_session(name: str) -> None:
    symphony = builtin_symphony(name)
    _assert_same_decisions(symphony, sorted(symbols(symphony)))


@pytest.mark.parametrize("seed", range(3))
def test_generated_exports_decide_the_same_on_every_session(seed: int) -> None:
    text, _ = bench_script("gen_symphony").generate(seed=seed, nodes=400, size=0, directory=BUNDLED)
    symphony = parse_symphony(text, f"generated-{seed}.clj")
    _assert_same_decisions(symphony, sorted(symbols(symphony)))


def test_shared_nodes_keep_their_result_until_every_parent_used_it() -> None:
    text = '(defsymphony "s" {} (weight-equal [(asset "SPY") (asset "TLT")]))'
    symphony = parse_symphony(text, "s.clj")
    body = symphony.body
    assert isinstance(body, WeightEqual)
    shared = body.children[0]
    both = replace(symphony, body=WeightEqual((shared, shared), body.location))
    history = STORE.history(["SPY", "TLT"], AS_OF, ALL_HISTORY)
    weights = evaluate(both, history).weights_at(AS_OF)
    assert weights == {"SPY": pytest.approx(1.0)}


def _nodes(symphony: Symphony) -> list[Node]:
    return list(iter_nodes(symphony))


def test_a_lean_evaluation_keeps_no_node_results() -> None:
    rng = random.Random(7)
    symphony = builtin_symphony(rng.choice(sorted(BUILTINS)))
    history = STORE.history(sorted(symbols(symphony)), AS_OF, ALL_HISTORY)
    lean = evaluate(symphony, history)
    assert set(lean.evaluated.results) == {id(symphony.body)}
    assert not lean.evaluated.rankings
    assert not lean.evaluated.conditions
    assert not lean.evaluated.indicator_cache  # each let go after its last reader
    traced = evaluate(symphony, history, trace=True)
    assert len(traced.evaluated.results) == len({id(n) for n in _nodes(symphony)})


def test_a_strategy_keeps_the_trace_only_when_asked() -> None:
    symphony = builtin_symphony("nuclear")
    history = STORE.history(sorted(symbols(symphony)), AS_OF, ALL_HISTORY)
    strategy = SymphonyStrategy("nuclear", symphony)
    assert not strategy.evaluate_all(history).evaluation.evaluated.trace
    traced = strategy.evaluate_all(history, trace=True).evaluation
    assert traced.evaluated.trace
    assert traced.evaluated.conditions
