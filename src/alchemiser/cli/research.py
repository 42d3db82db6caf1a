"""The research commands: evaluate | explain | validate | convert | backtest.

Each reads symphonies and prices only (no broker, no account), except ``backtest``,
which runs the live code path against the simulated broker day by day.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.files.symphonies import (
    BUILTINS,
    MAX_SYMPHONY_BYTES,
    builtin_symphony,
    builtin_text,
    parse_document,
    read_symphony_file,
)
from alchemiser.adapters.files.text import read_capped_text
from alchemiser.domain.scalars import normalise_symbol
from alchemiser.errors import (
    AlchemiserError,
    BenchmarkError,
    ConfigError,
    DataError,
    StrategyError,
)
from alchemiser.strategy.base import ALL_HISTORY
from alchemiser.strategy.symphony.ast import Symphony
from alchemiser.strategy.symphony.explain import explain
from alchemiser.strategy.symphony.jsondata import encode
from alchemiser.strategy.symphony.parser import (
    check_symphony,
    iter_nodes,
    parse_symphony,
    symbols,
)
from alchemiser.strategy.symphony.score import looks_like_score, parse_score
from alchemiser.strategy.symphony.strategy import (
    SymphonyStrategy,
    SymphonyTable,
    ticker_locations,
)
from alchemiser.strategy.symphony.writer import to_score, to_text

if TYPE_CHECKING:
    from alchemiser.backtest import BacktestResult
    from alchemiser.cli.progress import Progress
    from alchemiser.ports import MarketData

BUILTIN_PREFIX = "builtin:"
SYMPHONY_SUFFIXES = (".clj", ".json")
"""What ``validate DIR`` checks: the files directly in DIR with these suffixes."""
EXIT_FAILED = 1
EXIT_USAGE = 2
OUTPUT_WRITE_FAILED = "OUTPUT_WRITE_FAILED"


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    date_type: Callable[[str], date],
) -> None:
    for name, help_text in (
        ("evaluate", "the weights a symphony holds after its decision at the close of a date"),
        ("explain", "the decision path a symphony took on a date"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("file", help=f"a symphony file, or {BUILTIN_PREFIX}NAME")
        command.add_argument(
            "--as-of",
            type=date_type,
            required=True,
            metavar="DATE",
            help="the session whose close the decision is made on (YYYY-MM-DD)",
        )
        command.add_argument(
            "--prices",
            type=Path,
            metavar="DIR",
            help="a directory of <TICKER>.csv[.gz] files (default: the bundled prices)",
        )
        command.add_argument(
            "--anchor",
            type=date_type,
            metavar="DATE",
            help="holdings start at the first decidable session on or after this date "
            "(symphonies with a rebalance frequency or threshold; default: the first one)",
        )
        if name == "evaluate":
            command.add_argument(
                "--json", action="store_true", help="print the weights and notes as JSON"
            )
            command.add_argument(
                "--targets",
                action="store_true",
                help="print the raw targets instead of the weights held after the decision",
            )
    validate = commands.add_parser("validate", help="every problem in each symphony file")
    validate.add_argument(
        "files",
        nargs="+",
        help=f"symphony files, directories of .clj and .json files, or {BUILTIN_PREFIX}NAME",
    )
    validate.add_argument(
        "--prices",
        type=Path,
        metavar="DIR",
        help="check tickers against this price directory (default: the bundled prices)",
    )
    convert = commands.add_parser(
        "convert", help="a symphony from defsymphony text to Composer's JSON score or back"
    )
    convert.add_argument(
        "file", help=f"a symphony file (.clj text or .json score), or {BUILTIN_PREFIX}NAME"
    )
    convert.add_argument(
        "--to", choices=("json", "text"), help="the form to write (default: the other one)"
    )
    convert.add_argument(
        "--out", type=Path, metavar="PATH", help="write here instead of to standard output"
    )
    backtest = commands.add_parser("backtest", help="rebalance daily over a date range (simulated)")
    backtest.add_argument(
        "--config", type=Path, metavar="PATH", help="TOML config (default: the embedded default)"
    )
    backtest.add_argument(
        "--start", type=date_type, required=True, metavar="DATE", help="the first session"
    )
    backtest.add_argument(
        "--end", type=date_type, required=True, metavar="DATE", help="the last session"
    )
    backtest.add_argument(
        "--prices",
        type=Path,
        metavar="DIR",
        help="a directory of <TICKER>.csv[.gz] files (default: the config's [data] dir, "
        "else the bundled prices)",
    )
    backtest.add_argument(
        "--out",
        type=Path,
        default=Path("backtest-output"),
        metavar="DIR",
        help="where the report, CSV files and chart go (default: backtest-output)",
    )
    backtest.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    backtest.add_argument(
        "--no-strategies",
        action="store_true",
        help="skip running each strategy alone (the equity_<strategy> columns)",
    )
    backtest.add_argument(
        "--benchmark",
        default="SPY",
        metavar="TICKER",
        help="compare with this ticker bought and held, from the same price data "
        "(default: SPY; 'none' for no benchmark)",
    )
    backtest.add_argument(
        "--risk-free",
        type=_rate,
        default=0.0,
        metavar="RATE",
        help="the annual risk-free rate for Sharpe, Sortino and alpha, e.g. 0.04 (default: 0)",
    )


def _rate(text: str) -> float:
    """An annual rate as a fraction: finite, above -1 and below 1 (0.04 is 4%)."""
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not -1 < rate < 1:
        raise argparse.ArgumentTypeError(f"{text}: give a fraction above -1 and below 1 (0.04)")
    return rate


def _store(prices: Path | None) -> FilePriceStore:
    """``--prices DIR``, else the bundled prices: ``bootstrap.market_data`` without a
    config (not imported here: it brings the broker's client and the run's service)."""
    return FilePriceStore(prices) if prices is not None else FilePriceStore.bundled()


def _load(reference: str) -> Symphony:
    if reference.startswith(BUILTIN_PREFIX):
        return builtin_symphony(reference.removeprefix(BUILTIN_PREFIX))
    return read_symphony_file(Path(reference))


def _evaluation(args: argparse.Namespace, *, trace: bool = False) -> tuple[SymphonyTable, int]:
    symphony = _load(args.file)
    store = _store(args.prices)
    strategy = SymphonyStrategy(symphony.name, symphony, args.anchor)
    tickers = sorted(strategy.symbols())
    _check_prices(store, symphony, tickers)
    market: MarketData = store
    history = market.history(tickers, args.as_of, ALL_HISTORY)
    table = strategy.evaluate_all(history, trace=trace)
    return table, table.evaluation.row(args.as_of)


def _check_prices(store: FilePriceStore, symphony: Symphony, tickers: list[str]) -> None:
    """Each ticker's price file, checked once; a problem is raised at the first place
    the symphony names a ticker with one (``ticker_locations`` order), found only then."""
    problems: dict[str, DataError] = {}
    for ticker in tickers:
        try:
            store.check(ticker)
        except DataError as error:
            problems[ticker] = error
    if problems:
        for ticker, location in ticker_locations(symphony):
            problem = problems.get(ticker)
            if problem is not None:
                raise StrategyError(str(problem), location=str(location)) from problem


def evaluate_command(args: argparse.Namespace) -> int:
    """The weights the symphony holds after the decision at the close of ``--as-of`` (its
    targets, for a symphony that rebalances every session), and what its rule did."""
    table, _ = _evaluation(args)
    held = table.weights_at(args.as_of)
    note = table.rebalance_note(args.as_of)
    weights = table.targets_at(args.as_of) if args.targets else held
    if args.json:
        printed: dict[str, object] = {"as_of": args.as_of.isoformat(), "weights": held}
        if note is not None or args.targets:
            printed |= {"targets": table.targets_at(args.as_of), "rebalance": note}
        print(json.dumps(printed))
        return 0
    what = " targets" if args.targets else ""
    print(f"{table.evaluation.symphony.name}{what} as of the close of {args.as_of.isoformat()}:")
    for symbol, weight in weights.items():
        print(f"  {symbol:<8} {weight:8.2%}")
    cash = 1 - sum(weights.values())
    if cash > 1e-12:
        print(f"  {'(cash)':<8} {cash:8.2%}")
    if note is not None:
        print(f"rebalance: {note}")
    return 0


def explain_command(args: argparse.Namespace) -> int:
    """The decision path; then, for a symphony with a rebalance rule, what the rule did
    and (when it kept drifted weights) what it holds."""
    table, index = _evaluation(args, trace=True)
    lines = explain(table.evaluation, index)
    note = table.rebalance_note(args.as_of)
    if note is not None:
        lines.append(f"rebalance: {note}")
        held = table.weights_at(args.as_of)
        if held != table.targets_at(args.as_of):
            lines.append("held: " + ", ".join(f"{s} {w:.2%}" for s, w in held.items()))
    print("\n".join(lines))
    return 0


def _problems(reference: str, store: FilePriceStore) -> list[str]:
    if reference.startswith(BUILTIN_PREFIX):
        name = reference.removeprefix(BUILTIN_PREFIX)
        if name not in BUILTINS:
            return [f"{reference}: no such built-in (have {', '.join(sorted(BUILTINS))})"]
        text, source = builtin_text(name)
    else:
        try:
            text = read_capped_text(Path(reference), MAX_SYMPHONY_BYTES, StrategyError)
        except StrategyError as error:
            return [f"{reference}: cannot read: {error}"]
        source = reference
    if looks_like_score(text, source):
        try:  # a score reports its first problem only
            symphony = parse_score(text, source)
        except StrategyError as error:
            return [str(error)]
    else:
        problems = [str(error) for error in check_symphony(text, source)]
        if problems:
            return problems
        symphony = parse_symphony(text, source)  # the text checked, not the file read again
    problems = []
    for ticker, location in ticker_locations(symphony):
        try:
            store.check(ticker)
        except AlchemiserError as error:
            problems.append(f"{location}: {error}")
    return problems


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _validate_directory(directory: Path, store: FilePriceStore) -> bool:
    """Each ``.clj`` and ``.json`` file directly in ``directory``, in name order, on one
    line (its first problem, if any), then a summary line: True when all are fine."""
    files = sorted(
        entry
        for entry in directory.iterdir()
        if entry.suffix in SYMPHONY_SUFFIXES and entry.is_file()
    )
    if not files:
        print(f"{directory}: no .clj or .json file in it")
        return False
    failed = 0
    for path in files:
        problems = _problems(str(path), store)
        if not problems:
            try:
                symphony = _load(str(path))
            except AlchemiserError as error:  # changed since it was checked
                problems = [f"{path}: {error}"]
        if problems:
            failed += 1
            first = "" if len(problems) == 1 else ", the first"
            print(f"{path}: {_count(len(problems), 'problem')}{first}: {problems[0]}")
            continue
        nodes = sum(1 for _ in iter_nodes(symphony))
        tickers = len(symbols(symphony))
        print(f"{path}: ok ({_count(nodes, 'node')}, {_count(tickers, 'ticker')})")
    ok = len(files) - failed
    print(f"{directory}: {_count(len(files), 'file')}, {ok} ok, {failed} failed")
    return failed == 0


def validate_command(args: argparse.Namespace) -> int:
    store = _store(args.prices)
    failed = 0
    for reference in args.files:
        if not reference.startswith(BUILTIN_PREFIX) and Path(reference).is_dir():
            if not _validate_directory(Path(reference), store):
                failed += 1
            continue
        problems = _problems(reference, store)
        if problems:
            failed += 1
            print(f"{reference}: {len(problems)} problem(s)")
            for problem in problems:
                print(f"  {problem}")
        else:
            print(f"{reference}: ok")
    return EXIT_FAILED if failed else 0


def convert_command(args: argparse.Namespace) -> int:
    """The symphony in the other form (or ``--to``'s), to standard output or ``--out``."""
    reference: str = args.file
    if reference.startswith(BUILTIN_PREFIX):
        text, source = builtin_text(reference.removeprefix(BUILTIN_PREFIX))
    else:
        source = reference
        text = read_capped_text(Path(reference), MAX_SYMPHONY_BYTES, StrategyError)
    symphony = parse_document(text, source)
    target = args.to or ("text" if looks_like_score(text, source) else "json")
    written = to_text(symphony) if target == "text" else encode(to_score(symphony)) + "\n"
    if args.out is None:
        sys.stdout.write(written)
    else:
        args.out.write_text(written, encoding="utf-8")
        print(f"{reference}: written as {target} to {args.out}", file=sys.stderr)
    return 0


class _BacktestProgress:
    """The backtest's sessions over all its runs (the account, then each strategy alone)
    as one bar: ``runs`` names them, each the same number of sessions."""

    def __init__(self, runs: list[str]) -> None:
        self._runs = runs
        self._bar: Progress | None = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            from alchemiser.cli.progress import Progress  # noqa: PLC0415 - backtests only

            self._bar = Progress(total, "backtest", sys.stderr, unit="session", every=total // 10)
        per_run = max(total // len(self._runs), 1)
        self._bar.advance(self._runs[min((done - 1) // per_run, len(self._runs) - 1)])

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def backtest_command(args: argparse.Namespace) -> int:
    # Lazy: the run's service, the config and the simulated broker are for backtests only.
    from alchemiser import bootstrap  # noqa: PLC0415
    from alchemiser.backtest import run_backtest, summary, write_chart  # noqa: PLC0415
    from alchemiser.config import load_config  # noqa: PLC0415

    config = load_config(args.config)
    if args.start > args.end:
        raise StrategyError(f"--start {args.start} is after --end {args.end}")
    market = bootstrap.market_data(config, args.prices)
    benchmark = None if args.benchmark.lower() == "none" else args.benchmark
    try:
        if benchmark is not None:  # a ticker with a price file: said before anything runs
            benchmark = normalise_symbol(benchmark)
            market.check(benchmark)
    except (ValueError, DataError) as error:
        code = error.code if isinstance(error, DataError) else "DATA_MISSING"
        print(f"alchemiser: {code}: --benchmark: {error}", file=sys.stderr)
        return EXIT_USAGE
    _output_dir(args.out)
    alone = len(config.strategies) > 1 and not args.no_strategies
    names = [s.name for s in config.strategies] if alone else []
    progress = _BacktestProgress(["account", *(f"{name} alone" for name in names)])
    try:
        result = run_backtest(
            config,
            market,
            args.start,
            args.end,
            progress,
            strategies=alone,
            benchmark=benchmark,
            risk_free=args.risk_free,
        )
    except BenchmarkError as error:
        print(f"alchemiser: {error.code}: --benchmark: {error}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        progress.close()
    written = _write_outputs(result, args.out, f"Backtest: {config.account}")
    print("\n".join(summary(result)))
    print("\n".join(written))
    if not args.no_chart:
        chart = args.out / "equity.png"
        metrics = result.metrics
        write_chart(result, chart, f"{config.account}: {metrics.start} to {metrics.end}")
        print(f"chart         {chart}")
    return 0


def _write_outputs(result: BacktestResult, out: Path, title: str) -> list[str]:
    """Every file the backtest writes into ``out`` but the chart; a line naming each."""
    from alchemiser.backtest import write_csv, write_monthly_returns  # noqa: PLC0415
    from alchemiser.cli.backtest_page import backtest_page  # noqa: PLC0415
    from alchemiser.reporting.html import write_backtest_html  # noqa: PLC0415
    from alchemiser.reporting.outputs import write_allocations, write_trades  # noqa: PLC0415

    try:
        write_csv(result, out / "equity.csv")
        count = write_trades(result.days, out / "trades.csv")
        write_allocations(result.days, out / "allocations.csv")
        write_monthly_returns(result, out / "monthly_returns.csv")
    except OSError as error:
        raise AlchemiserError(
            f"cannot write the backtest's files in {out}: {error.strerror or error}",
            code=OUTPUT_WRITE_FAILED,
        ) from error
    write_backtest_html(backtest_page(result, title), out / "report.html")
    return [
        f"equity curve  {out / 'equity.csv'}",
        f"trades        {out / 'trades.csv'} ({count} rows)",
        f"allocations   {out / 'allocations.csv'}",
        f"monthly       {out / 'monthly_returns.csv'}",
        f"report        {out / 'report.html'}",
    ]


def _output_dir(out: Path) -> None:
    """``--out`` made (or found) a writable directory before the backtest runs, so a
    long run is not lost to a path that cannot take its files."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"--out {out}: {error.strerror or error}") from error
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {out}: not a directory this process may write")


HANDLERS = {
    "evaluate": evaluate_command,
    "explain": explain_command,
    "validate": validate_command,
    "convert": convert_command,
    "backtest": backtest_command,
}
