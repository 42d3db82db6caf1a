"""``alchemiser evaluate | explain | validate`` in-process: output, exit codes, locations."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.files.symphonies import builtin_symphony
from alchemiser.cli import main
from alchemiser.strategy.base import ALL_HISTORY
from alchemiser.strategy.symphony.evaluator import evaluate
from alchemiser.strategy.symphony.parser import symbols
from tests.conftest import write_prices

SESSIONS = [
    d.isoformat()
    for d in (date(2026, 7, 1) + timedelta(days=i) for i in range(31))
    if d.weekday() < 5
]
LAST = SESSIONS[-1]  # 2026-07-31, a Friday
TINY = """(defsymphony "Tiny" {}
  (if (> (current-price "AAA") (moving-average-price "AAA" {:window 3}))
    [(weight-specified 0.6 (asset "AAA") 0.3 (asset "BBB"))]
    [(asset "SPY")]))
"""
# Three semantic errors, each reported with its own location; the rest is fine.
BAD = """(defsymphony "Bad" {}
  (weight-equal [
    (asset "SPY")
    (frobnicate "X")
    (if (> (rsi "SPY") 50) [(asset "AAA")] [(asset "BBB")])
    (weight-specified 0.7 (asset "SPY") 0.6 (asset "AAA"))]))
"""


@pytest.fixture
def prices(tmp_path: Path) -> Path:
    """SPY, AAA (rising 1 a day) and BBB over the weekdays of July 2026."""
    return write_prices(
        tmp_path / "prices",
        {
            "SPY": dict.fromkeys(SESSIONS, 500.0),
            "AAA": {d: 10.0 + i for i, d in enumerate(SESSIONS)},
            "BBB": {d: 50.0 - i for i, d in enumerate(SESSIONS)},
        },
    )


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.clj"
    path.write_text(TINY)
    return path


def engine_weights(name: str, as_of: date) -> dict[str, float]:
    symphony = builtin_symphony(name)
    history = FilePriceStore.bundled().history(sorted(symbols(symphony)), as_of, ALL_HISTORY)
    return evaluate(symphony, history).weights_at(as_of)


# ------------------------------------------------------------------ evaluate


def test_evaluate_builtin_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "builtin:nuclear", "--as-of", "2026-07-31", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"as_of", "weights"}
    assert printed["as_of"] == "2026-07-31"
    assert printed["weights"] == pytest.approx(engine_weights("nuclear", date(2026, 7, 31)))
    assert printed["weights"]
    assert all(w > 0 for w in printed["weights"].values())
    assert sum(printed["weights"].values()) <= 1 + 1e-9


def test_evaluate_a_file_against_a_price_directory(
    tiny: Path, prices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(tiny), "--as-of", LAST, "--prices", str(prices)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"Tiny as of the close of {LAST}:"
    assert [line.split() for line in lines[1:]] == [
        ["AAA", "60.00%"],
        ["BBB", "30.00%"],
        ["(cash)", "10.00%"],
    ]
    args = ["evaluate", str(tiny), "--as-of", LAST, "--prices", str(prices), "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == {
        "as_of": LAST,
        "weights": pytest.approx({"AAA": 0.6, "BBB": 0.3}),
    }


def test_evaluate_without_enough_history_fails_with_one_line(
    tiny: Path, prices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["evaluate", str(tiny), "--as-of", SESSIONS[1], "--prices", str(prices)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err.endswith("\n")
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("alchemiser: STRATEGY_INVALID: ")
    assert f"no decision on {SESSIONS[1]}" in captured.err
    # The window-3 average on line 2, column 32 of the file, is what lacks history.
    assert f"(moving-average-price AAA window 3) at {tiny}:2:32 has no value" in captured.err
    # Two sessions later the average exists.
    assert main(["evaluate", str(tiny), "--as-of", SESSIONS[2], "--prices", str(prices)]) == 0


def test_evaluate_on_a_day_without_a_session_or_an_unknown_builtin(
    tiny: Path, prices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(tiny), "--as-of", "2026-07-25", "--prices", str(prices)]) == 1
    assert capsys.readouterr().err.startswith("alchemiser: DATA_MISSING: ")
    assert main(["evaluate", "builtin:nope", "--as-of", LAST]) == 1
    assert "no built-in strategy 'nope'" in capsys.readouterr().err


# ------------------------------------------------------------------- explain


@pytest.mark.parametrize("name", ["nuclear", "tecl", "kmlm-switcher"])
def test_evaluate_before_the_first_close_is_a_typed_error(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A date before any of the symphony's prices: no rows to evaluate, a one-line
    error, not a traceback from an empty history."""
    assert main(["evaluate", f"builtin:{name}", "--as-of", "1999-01-04"]) == 1
    assert capsys.readouterr().err == (
        "alchemiser: DATA_MISSING: no session 1999-01-04 in the price data\n"
    )


def test_explain_prints_the_path(
    tiny: Path, prices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", str(tiny), "--as-of", LAST, "--prices", str(prices)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # AAA on the last of 23 sessions is 32; its 3-session average is 31.
    assert lines[0] == f"Tiny on {LAST}"
    assert lines[1] == (
        "  if current-price(AAA, 1) = 32.0000 > moving-average-price(AAA, 3) = 31.0000: "
        f"true -> then  [{tiny}:2:3]"
    )
    assert [line.strip() for line in lines[2:4]] == ["AAA 60.00%", "BBB 30.00%"]
    assert lines[-1] == "weights: AAA 60.00%, BBB 30.00%"


def test_explain_a_builtin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "builtin:kmlm-switcher", "--as-of", "2026-07-31"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "KMLM switcher on 2026-07-31"
    weights = engine_weights("kmlm-switcher", date(2026, 7, 31))
    assert lines[-1] == "weights: " + ", ".join(f"{s} {w:.2%}" for s, w in weights.items())


# ------------------------------------------------------------------ validate


def test_validate_a_good_file(tiny: Path, prices: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tiny), "--prices", str(prices)]) == 0
    assert capsys.readouterr().out == f"{tiny}: ok\n"


def test_validate_reports_every_semantic_error_with_its_location(
    tmp_path: Path, tiny: Path, prices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.clj"
    bad.write_text(BAD)
    assert main(["validate", str(bad), str(tiny), "--prices", str(prices)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{bad}: 3 problem(s)"
    problems = lines[1:4]
    assert problems[0].startswith(f"  {bad}:4:6: unknown operator 'frobnicate'")
    assert problems[1] == f"  {bad}:5:12: rsi needs a window: {{:window N}}"
    assert problems[2].startswith(f"  {bad}:6:5: weight-specified weights sum to 1.3")
    assert lines[4:] == [f"{tiny}: ok"]  # the good file is still checked


def test_validate_reports_a_ticker_missing_from_the_prices(
    tmp_path: Path, prices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "z.clj"
    path.write_text('(defsymphony "Z" {}\n  [(asset "AAA") (asset "ZZZ")])\n')
    assert main(["validate", str(path), "--prices", str(prices)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: 1 problem(s)",
        f"  {path}:2:18: ZZZ: no price file in {prices}: add {prices / 'ZZZ.csv'} "
        "with date,close rows (docs/CONFIG.md, [data])",
    ]


def test_validate_a_reader_error_and_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unbalanced = tmp_path / "open.clj"
    unbalanced.write_text('(defsymphony "O" {}\n  (asset "SPY")\n')
    missing = tmp_path / "missing.clj"
    assert main(["validate", str(unbalanced), str(missing)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{unbalanced}: 1 problem(s)"
    assert lines[1].startswith(f"  {unbalanced}:")
    assert lines[2] == f"{missing}: 1 problem(s)"
    assert lines[3].startswith(f"  {missing}: cannot read")


def test_validate_a_directory_checks_each_symphony_in_it_in_name_order(
    tmp_path: Path, prices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "symphonies"
    folder.mkdir()
    (folder / "b-tiny.clj").write_text(TINY)
    (folder / "a-bad.clj").write_text(BAD)
    (folder / "c-broken.json").write_text("{not json")
    (folder / "notes.txt").write_text("not a symphony")
    (folder / "nested").mkdir()
    (folder / "nested" / "d.clj").write_text(TINY)
    assert main(["validate", str(folder), "--prices", str(prices)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(
        f"{folder / 'a-bad.clj'}: 3 problems, the first: "
        f"{folder / 'a-bad.clj'}:4:6: unknown operator 'frobnicate'"
    )
    assert lines[1] == f"{folder / 'b-tiny.clj'}: ok (5 nodes, 3 tickers)"
    assert lines[2].startswith(f"{folder / 'c-broken.json'}: 1 problem: {folder / 'c-broken.json'}")
    assert lines[3] == f"{folder}: 3 files, 1 ok, 2 failed"


def test_validate_a_directory_of_good_symphonies_exits_0(
    tmp_path: Path, prices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "good"
    folder.mkdir()
    (folder / "one.clj").write_text(TINY)
    (folder / "two.clj").write_text('(defsymphony "Two" {} [(asset "SPY")])\n')
    assert main(["validate", str(folder), "--prices", str(prices)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{folder / 'one.clj'}: ok (5 nodes, 3 tickers)",
        f"{folder / 'two.clj'}: ok (1 node, 1 ticker)",
        f"{folder}: 2 files, 2 ok, 0 failed",
    ]


def test_validate_a_directory_without_symphonies_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path)]) == 1
    assert capsys.readouterr().out.splitlines() == [f"{tmp_path}: no .clj or .json file in it"]


def test_validate_the_builtins(capsys: pytest.CaptureFixture[str]) -> None:
    names = ["builtin:nuclear", "builtin:tecl", "builtin:kmlm-switcher"]
    assert main(["validate", *names]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{name}: ok" for name in names]
    assert main(["validate", "builtin:nope"]) == 1
    assert "builtin:nope: no such built-in" in capsys.readouterr().out


def test_validate_does_not_blame_tickers_that_have_prices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    no_spy = write_prices(
        tmp_path / "no-spy",
        {"AAA": dict.fromkeys(SESSIONS, 10.0), "BBB": dict.fromkeys(SESSIONS, 5.0)},
    )
    path = tmp_path / "z.clj"
    path.write_text('(defsymphony "Z" {} [(asset "AAA") (asset "BBB")])\n')
    main(["validate", str(path), "--prices", str(no_spy)])
    out = capsys.readouterr().out
    assert "AAA: no price data" not in out
    assert "BBB: no price data" not in out


def test_evaluate_names_an_unknown_ticker_with_its_location(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "zz.clj"
    path.write_text(
        '(defsymphony "x" {}\n  (if (> (rsi "ZZZ" {:window 10}) 50) [(asset "SPY")] []))\n'
    )
    assert main(["evaluate", str(path), "--as-of", "2026-07-31"]) == 1
    assert f"STRATEGY_INVALID: {path}:2:10: ZZZ: no price file" in capsys.readouterr().err


def test_evaluate_names_the_first_place_a_ticker_without_prices_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Assets come before indicators (ticker_locations): ZZZ's asset is named first,
    # though AZZ sorts first and its indicator comes first in the text.
    line = '  (if (> (rsi "AZZ" {:window 10}) 50) [(asset "SPY")] [(asset "ZZZ")]))'
    path = tmp_path / "zz.clj"
    path.write_text(f'(defsymphony "x" {{}}\n{line}\n')
    assert main(["evaluate", str(path), "--as-of", "2026-07-31"]) == 1
    column = line.index('(asset "ZZZ")') + 1
    err = capsys.readouterr().err
    assert f"STRATEGY_INVALID: {path}:2:{column}: ZZZ: no price file" in err
    assert "AZZ" not in err


# ------------------------------------------------------------------- rebalance rules

CORRIDOR = """(defsymphony "Corridor" {:rebalance-threshold 0.05}
  (weight-equal [(asset "AAA") (asset "BBB")]))
"""
# Bought 50/50 on July 1 (AAA 10, BBB 50). July 2: AAA 11, BBB 49, so AAA holds
# 0.55 / (0.55 + 0.49): 2.9 points off target, inside the corridor. July 3: AAA 12,
# BBB 48: 0.6 / 1.08 is 5.6 points off, and the symphony trades back to 50/50.
DRIFTED = 0.55 / (0.55 + 0.49)


@pytest.fixture
def corridor(tmp_path: Path) -> Path:
    path = tmp_path / "corridor.clj"
    path.write_text(CORRIDOR)
    return path


def test_evaluate_prints_held_weights_and_what_the_corridor_did(
    corridor: Path, prices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["evaluate", str(corridor), "--prices", str(prices)]
    assert main([*base, "--as-of", "2026-07-02"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "Corridor as of the close of 2026-07-02:",
        f"  AAA      {DRIFTED:8.2%}",
        f"  BBB      {1 - DRIFTED:8.2%}",
        "rebalance: within corridor: largest drift 2.9 points < 5; keeping drifted weights",
    ]
    assert main([*base, "--as-of", "2026-07-02", "--targets"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Corridor targets as of the close of 2026-07-02:"
    assert [line.split() for line in lines[1:3]] == [["AAA", "50.00%"], ["BBB", "50.00%"]]
    assert main([*base, "--as-of", "2026-07-03"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "rebalance: rebalanced: drift 5.6 points > 5"
    )
    assert main([*base, "--as-of", "2026-07-02", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "as_of": "2026-07-02",
        "weights": pytest.approx({"AAA": DRIFTED, "BBB": 1 - DRIFTED}),
        "targets": pytest.approx({"AAA": 0.5, "BBB": 0.5}),
        "rebalance": "within corridor: largest drift 2.9 points < 5; keeping drifted weights",
    }


def test_evaluate_with_an_anchor_starts_holdings_there(
    corridor: Path, prices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["evaluate", str(corridor), "--prices", str(prices), "--json"]
    assert main([*base, "--as-of", "2026-07-02", "--anchor", "2026-07-02"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["weights"] == pytest.approx({"AAA": 0.5, "BBB": 0.5})
    assert printed["rebalance"].startswith("rebalanced: the anchor session")
    assert main([*base, "--as-of", "2026-07-01", "--anchor", "2026-07-02"]) == 1
    # The history ends on --as-of: no session on or after the anchor.
    assert "no session on or after the strategy's anchor" in capsys.readouterr().err


def test_explain_says_which_rule_applied(
    corridor: Path, prices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["explain", str(corridor), "--as-of", "2026-07-02", "--prices", str(prices)]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Corridor on 2026-07-02"
    assert lines[-3] == "weights: AAA 50.00%, BBB 50.00%"
    assert lines[-2] == (
        "rebalance: within corridor: largest drift 2.9 points < 5; keeping drifted weights"
    )
    assert lines[-1] == f"held: AAA {DRIFTED:.2%}, BBB {1 - DRIFTED:.2%}"
    args[3] = "2026-07-03"
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "rebalance: rebalanced: drift 5.6 points > 5"


def test_a_daily_symphony_prints_no_rebalance_line(
    tiny: Path, prices: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", str(tiny), "--as-of", LAST, "--prices", str(prices)]) == 0
    assert not any(line.startswith("rebalance:") for line in capsys.readouterr().out.splitlines())
