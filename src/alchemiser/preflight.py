"""Preflight: the checks ``alchemiser check`` runs before a deployment (the ones that
need no network here; ``preflight_online`` adds AWS and the broker), and the Lambda
runtime's offline gate at cold start (``cold_start``).

Each check gives a ``CheckResult`` (a name, ok / fail / skip, one line); nothing here
prints. Every symphony file exists and validates, every ticker the strategies need has
local data, and that data is recent enough for the trading date. A check that cannot
run because an earlier one failed is a skip saying why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path

from alchemiser import bootstrap
from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.files.symphonies import BUILTINS, builtin_text, read_symphony_text
from alchemiser.config import AppConfig, SymphonyStrategyConfig
from alchemiser.domain.market import TradingWindow
from alchemiser.domain.prices import check_fresh
from alchemiser.errors import AlchemiserError, ConfigError, DataError, StrategyError
from alchemiser.strategy.symphony.parser import check_symphony, parse_symphony, symbols
from alchemiser.strategy.symphony.score import looks_like_score, parse_score

NAMED = 10
"""Tickers named in one line; the rest are counted."""
ORDER: tuple[str, ...] = ("config", "symphony", "data", "freshness", "region", "secret")
ORDER += ("endpoint", "kill-switch", "account")
"""The order checks are reported in."""


class Status(StrEnum):
    OK = "ok"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    message: str

    @property
    def failed(self) -> bool:
        return self.status is Status.FAIL


def ok(name: str, message: str) -> CheckResult:
    return CheckResult(name, Status.OK, message)


def fail(name: str, message: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, message)


def skip(name: str, message: str) -> CheckResult:
    return CheckResult(name, Status.SKIP, message)


def named(tickers: Iterable[str]) -> str:
    ordered = sorted(tickers)
    more = len(ordered) - NAMED
    return ", ".join(ordered[:NAMED]) + (f" and {more} more" if more > 0 else "")


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"


def has(count: int) -> str:
    """``1 ticker has`` / ``3 tickers have``."""
    return "1 ticker has" if count == 1 else f"{count} tickers have"


# -- config and symphonies ------------------------------------------------------------


def config_loaded(config: AppConfig, source: str) -> CheckResult:
    names = config.account_names()
    accounts = plural(len(names), "account") + (f" ({', '.join(names)})" if len(names) > 1 else "")
    return ok(
        "config",
        f"loaded {source}: {accounts}, {plural(len(config.strategies), 'strategy', 'strategies')}",
    )


@dataclass(frozen=True)
class Strategies:
    """The symphony check's lines, and every ticker the strategies need (None when a
    symphony did not validate: its tickers are unknown)."""

    results: list[CheckResult]
    tickers: frozenset[str] | None


def _symphony_tickers(entry: SymphonyStrategyConfig) -> frozenset[str]:
    """The tickers of a symphony that validates; StrategyError naming the location of
    its first problem otherwise."""
    if entry.builtin is not None:
        if entry.builtin not in BUILTINS:
            raise StrategyError(
                f"no built-in {entry.builtin!r} (have {', '.join(sorted(BUILTINS))})"
            )
        text, source = builtin_text(entry.builtin)
    else:
        assert entry.file is not None  # guaranteed by SymphonyStrategyConfig
        path = entry.file.absolute()
        if not path.exists():
            raise StrategyError(f"file not found: {path}")
        text, source = read_symphony_text(path), str(path)
    if looks_like_score(text, source):
        return symbols(parse_score(text, source))
    problems = check_symphony(text, source)
    if problems:
        raise problems[0]
    return symbols(parse_symphony(text, source))


def check_symphonies(config: AppConfig) -> Strategies:
    """One line per symphony that does not validate (its first problem), or one ``ok``."""
    tickers: set[str] = set()
    failed: list[CheckResult] = []
    count = 0
    for index, entry in enumerate(config.strategies):
        if not isinstance(entry, SymphonyStrategyConfig):
            tickers.update(entry.weights)
            continue
        count += 1
        label = entry.builtin or (entry.file.name if entry.file is not None else "?")
        try:
            tickers.update(_symphony_tickers(entry))
        except AlchemiserError as error:
            failed.append(fail("symphony", f"strategies[{index}] ({label}): {error}"))
    if failed:
        return Strategies(failed, None)
    if not count:
        return Strategies([skip("symphony", "no symphony strategies")], frozenset(tickers))
    line = ok("symphony", f"{plural(count, 'symphony', 'symphonies')} valid")
    return Strategies([line], frozenset(tickers))


# -- data -------------------------------------------------------------------------------


def where(config: AppConfig, prices: Path | None) -> str:
    directory = bootstrap.prices_dir(config, prices)
    return "the bundled prices" if directory is None else str(directory)


def check_local_data(
    config: AppConfig, tickers: frozenset[str] | None, store: FilePriceStore, where: str
) -> CheckResult:
    """Every ticker has a readable, valid price file in ``store``."""
    if tickers is None:
        return skip("data", "a symphony did not validate: its tickers are unknown")
    missing: list[str] = []
    broken: list[str] = []
    for ticker in sorted(tickers):
        try:
            store.check(ticker)
        except DataError as error:
            if error.code == "DATA_MISSING":
                missing.append(ticker)
            else:
                broken.append(str(error))
    problems = []
    if missing:
        problems.append(f"no price file for {named(missing)} in {where}")
    if broken:
        problems.append(broken[0] + (f" (and {len(broken) - 1} more)" if len(broken) > 1 else ""))
    if problems:
        return fail("data", "; ".join(problems))
    return ok("data", f"{has(len(tickers))} local data in {where}")


def check_freshness(config: AppConfig, store: FilePriceStore, trading_date: date) -> CheckResult:
    """A scheduled run on ``trading_date`` would decide on data recent enough
    (``[data] max_staleness_days``); a run by hand picks its own date and does not care."""
    try:
        if config.trading_window is TradingWindow.OPEN:
            as_of = store.latest_session(before=trading_date)
        else:
            as_of = store.latest_session(before=trading_date + timedelta(days=1))
        check_fresh(as_of, trading_date, config.data.max_staleness_days)
    except DataError as error:
        return fail("freshness", f"{error} (a scheduled run would refuse it)")
    return ok(
        "freshness",
        f"latest session {as_of.isoformat()} for a run on {trading_date.isoformat()} "
        f"(limit {config.data.max_staleness_days} days)",
    )


def offline(config: AppConfig, prices: Path | None = None) -> list[CheckResult]:
    """What a cold start checks for one account: its symphonies, and for a simulated
    account its local data (not its freshness: the trigger's date decides that)."""
    strategies = check_symphonies(config)
    results = list(strategies.results)
    if config.broker == "sim":
        store = bootstrap.market_data(config, prices)
        results.append(check_local_data(config, strategies.tickers, store, where(config, prices)))
    return results


_COLD: dict[str, tuple[CheckResult, ...]] = {}
_COLD_LIMIT = 64


def cold_start(config: AppConfig) -> None:
    """The offline checks for one account's settings, once per process and config: a
    failure raises ConfigError listing the failed checks (the run fails closed before
    any secret is read or request sent), at every invocation that meets it."""
    key = config.model_dump_json()
    results = _COLD.get(key)
    if results is None:
        if len(_COLD) >= _COLD_LIMIT:
            _COLD.clear()
        results = _COLD[key] = tuple(offline(config))
    failed = [r for r in results if r.failed]
    if failed:
        listed = "".join(f"\n  {r.name}: {r.message}" for r in failed)
        raise ConfigError(
            f"account {config.account!r}: {plural(len(failed), 'preflight check')} failed:{listed}"
        )
