"""``alchemiser data fetch``: daily bars from Alpaca's Market Data API into a directory
of price files (``<TICKER>.csv``, see ``adapters.files.price_writer``), the kind
``--prices DIR`` and the config's ``[data] dir`` read.

The keys come from Secrets Manager only (the config's ``[alpaca] secret_id``, or
``--secret-id``); paper and live keys may both read market data. The fetch ends at
the last completed session by the broker's clock and calendar: never a session still
under way.

A file already there is brought up to date: its symbol is asked for from the last
session it holds (that one again, to compare) to the end. If that session's close has
changed (Alpaca re-adjusted the history for a split or dividend), new bars cannot be
appended to the old basis: the symbol's whole history is fetched again, from
``--start`` or the file's first session, whichever is earlier, and its file replaced.
A ``--start`` earlier than a file's first session does not back-fill it (a file is
only ever extended forward); delete the file to fetch it again from ``--start``.
Symbols asking from the same session share a request (up to ``BATCH`` of them). A
symbol with no bars at all is reported, and the command exits 1 once everything else
is written.

Every symbol is checked as a ticker (``BRK/B`` is spelt ``BRK.B``) before any file is
read or request sent: one that is not is a usage error (exit 2), as is a ``--start``
after the last completed session.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from pydantic import ValidationError

from alchemiser import bootstrap
from alchemiser.adapters.alpaca.policy import AlpacaConfig
from alchemiser.adapters.clock import SystemClock
from alchemiser.adapters.files.price_writer import Stored, appended, read_stored, write_rows
from alchemiser.cli.progress import Progress
from alchemiser.config import AppConfig, load_config
from alchemiser.domain.prices import DailyBar
from alchemiser.domain.values import normalise_symbol
from alchemiser.errors import ConfigError

DEFAULT_START = date(2016, 1, 4)
CALENDAR_SYMBOL = "SPY"
"""The price reader's calendar: always fetched."""
BATCH = 100
"""Symbols per bars request: they travel comma-joined in the query string (see
``QUOTES_BATCH`` in the market-data adapter for the URL-length reasoning)."""
TOLERANCE = 1e-6
"""Relative difference of the overlap session's close that means a re-adjustment."""
EXIT_FAILED = 1
EXIT_USAGE = 2
LABEL = "data fetch"


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    date_type: Callable[[str], date],
) -> None:
    data = commands.add_parser("data", help="local price files (fetch daily bars from Alpaca)")
    sub = data.add_subparsers(dest="data_command", required=True)
    fetch = sub.add_parser(
        "fetch",
        help="fetch or update daily bars from Alpaca into a price directory",
        description="Write <DIR>/<TICKER>.csv (date,open,high,low,close,volume) up to the "
        "last completed session, adjusted for splits and dividends; files already there "
        "are brought up to date (re-fetched whole when Alpaca re-adjusted their history). "
        f"{CALENDAR_SYMBOL}, the calendar the price files are read by, is always fetched. "
        "Keys come from Secrets Manager only.",
    )
    fetch.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="every ticker the config's strategies need (indicator-only ones included), "
        "its [data] dir, its [alpaca] secret_id, data_url and feed",
    )
    fetch.add_argument(
        "--symbols", metavar="SYM,SYM", help="tickers, comma-separated (with or without --config)"
    )
    fetch.add_argument(
        "--start",
        type=date_type,
        default=DEFAULT_START,
        metavar="DATE",
        help=f"first session of a new file (default: {DEFAULT_START.isoformat()}); an "
        "earlier one does not back-fill a file already there",
    )
    fetch.add_argument(
        "--dir", type=Path, metavar="DIR", help="the price directory (default: [data] dir)"
    )
    fetch.add_argument(
        "--feed", choices=("iex", "sip"), help="default: the config's [alpaca] feed, else iex"
    )
    fetch.add_argument("--secret-id", metavar="ID", help="Secrets Manager id of the Alpaca keys")
    fetch.add_argument(
        "--data-url", metavar="URL", help="Market Data API base URL (https; http on loopback)"
    )
    fetch.add_argument(
        "--trading-url",
        metavar="URL",
        help="Trading API base URL, for the clock and calendar (default: the config's, "
        "else Alpaca's for the secret's endpoint)",
    )


def _usage(message: str) -> int:
    print(f"alchemiser data fetch: {message}", file=sys.stderr)
    return EXIT_USAGE


def config_symbols(config: AppConfig) -> set[str]:
    """Every symbol any account's strategies may read or hold."""
    return {
        symbol
        for name in config.account_names()
        for allocated in bootstrap.strategies(config.for_account(name))
        for symbol in allocated.strategy.symbols()
    }


def _settings(config: AppConfig | None, args: argparse.Namespace) -> AlpacaConfig | None:
    base = config.alpaca if config is not None else None
    if base is None and args.secret_id is None:
        return None
    changes = {
        key: value
        for key, value in (
            ("secret_id", args.secret_id),
            ("data_url", args.data_url),
            ("trading_url", args.trading_url),
            ("feed", args.feed),
        )
        if value is not None
    }
    document = {**(base.model_dump() if base is not None else {}), **changes}
    try:
        return AlpacaConfig.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"alpaca settings: {problems}", field="alpaca") from error


def tickers(names: Iterable[str]) -> tuple[set[str], list[str]]:
    """``names`` spelt as tickers, and those that are not tickers (as given)."""
    good: set[str] = set()
    bad: list[str] = []
    for name in names:
        try:
            good.add(normalise_symbol(name))
        except ValueError:
            bad.append(name)
    return good, bad


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config is not None else None
    given = set(config_symbols(config)) if config is not None else set()
    if args.symbols:
        given |= {s.strip() for s in args.symbols.split(",") if s.strip()}
    symbols, bad = tickers(given)
    if bad:
        return _usage(f"not a ticker symbol: {', '.join(repr(b) for b in sorted(bad))}")
    if not symbols:
        return _usage("give --config C and/or --symbols A,B,...")
    directory = args.dir if args.dir is not None else (config.data.dir if config else None)
    if directory is None:
        return _usage("no price directory: give --dir DIR (or a config with a [data] dir)")
    settings = _settings(config, args)
    if settings is None:
        return _usage("no keys: give --secret-id ID, or a --config with an [alpaca] table")
    wiring = bootstrap.alpaca_market_data(settings, SystemClock())
    end = wiring.market.completed_session()
    if args.start > end:
        return _usage(
            f"--start {args.start.isoformat()} is after the last completed session, "
            f"{end.isoformat()}"
        )
    fetch = Fetch(wiring.market.daily_bars, directory, args.start)
    fetch.run(sorted(symbols | {CALENDAR_SYMBOL}), end)
    print(fetch.summary(wiring.transport.requests_sent))
    if fetch.missing:
        print(f"{LABEL}: no bars at all for {', '.join(fetch.missing)}", file=sys.stderr)
        return EXIT_FAILED
    return 0


Bars = Callable[[list[str], date, date], dict[str, list[DailyBar]]]


@dataclass
class Fetch:
    """One fetch into ``directory``: what it asks for, writes and counts."""

    bars: Bars
    directory: Path
    start: date
    updated: list[str] = field(default_factory=list)
    readjusted: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    symbols: int = 0

    def summary(self, requests: int) -> str:
        return (
            f"{LABEL}: {self.symbols} symbols, {len(self.updated)} updated, "
            f"{len(self.readjusted)} re-adjusted, {len(self.current)} up to date, "
            f"{requests} requests"
        )

    def run(self, symbols: list[str], end: date) -> None:
        """Bring every symbol's file up to ``end`` (a completed session)."""
        self.symbols = len(symbols)
        stored = {symbol: read_stored(self.directory, symbol) for symbol in symbols}
        groups: dict[date, list[str]] = defaultdict(list)
        for symbol in symbols:
            found = stored[symbol]
            if found is not None and found.last.day >= end:
                self.current.append(symbol)
            else:
                groups[found.last.day if found is not None else self.start].append(symbol)
        batches = list(_batches(groups))
        again: dict[date, list[str]] = defaultdict(list)
        with Progress(len(batches), LABEL, sys.stderr) as progress:
            for first, batch in batches:
                got = self.bars(batch, first, end)
                progress.advance(f"{len(batch)} symbols from {first.isoformat()}")
                for symbol in batch:
                    if not self._merge(symbol, stored[symbol], got.get(symbol, []), progress):
                        again[self._from(stored[symbol])].append(symbol)
            refetch = list(_batches(again))
            progress.grow(len(refetch))
            for first, batch in refetch:
                got = self.bars(batch, first, end)
                progress.advance(f"{len(batch)} symbols again from {first.isoformat()}")
                for symbol in batch:
                    self._replace(symbol, got.get(symbol, []), self.readjusted)

    def _from(self, stored: Stored | None) -> date:
        """Where a whole history is fetched from: ``start``, or the stored file's first
        session when that is earlier (a re-fetch never drops stored history)."""
        return min(self.start, stored.rows[0].day) if stored is not None else self.start

    def _merge(
        self, symbol: str, stored: Stored | None, bars: list[DailyBar], progress: Progress
    ) -> bool:
        """Write what ``bars`` adds to ``stored``; False when the history must be
        fetched again (the overlap session's close moved, or is not there)."""
        if stored is None:
            self._replace(symbol, bars, self.updated)
            return True
        last = stored.last
        if not any(bar.day > last.day for bar in bars):
            self.current.append(symbol)
            return True
        overlap = next((bar for bar in bars if bar.day == last.day), None)
        if overlap is None:
            progress.write(
                f"{LABEL}: {symbol}: no bar for {last.day.isoformat()}, the last session "
                f"stored: fetching its history again from {self._from(stored).isoformat()}"
            )
            return False
        if not _same(float(last.close), overlap.close):
            progress.write(
                f"{LABEL}: {symbol}: the close of {last.day.isoformat()} is now "
                f"{overlap.close!r}, stored {last.close} (history re-adjusted): fetching "
                f"it again from {self._from(stored).isoformat()}"
            )
            return False
        write_rows(self.directory, symbol, appended(stored.rows, bars))
        self.updated.append(symbol)
        return True

    def _replace(self, symbol: str, bars: list[DailyBar], counted: list[str]) -> None:
        if not bars:
            self.missing.append(symbol)
            return
        write_rows(self.directory, symbol, appended([], bars))
        counted.append(symbol)


def _same(stored: float, fetched: float) -> bool:
    return math.isclose(stored, fetched, rel_tol=TOLERANCE, abs_tol=0.0)


def _batches(groups: dict[date, list[str]]) -> Iterable[tuple[date, list[str]]]:
    for first in sorted(groups):
        members = sorted(groups[first])
        for offset in range(0, len(members), BATCH):
            yield first, members[offset : offset + BATCH]
