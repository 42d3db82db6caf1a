"""Preflight at AWS and the broker, for ``alchemiser check``: the AWS region, the
secret, its endpoint against the config's mode and ``--live``, the kill switch, and with
``--broker`` the account (its pin) and recent daily bars for every ticker at Alpaca;
``check_account`` runs these after the offline checks (alchemiser.preflight).

What reaches AWS or the broker goes through ``Readers``, so tests can stand in for it;
the defaults import boto3 and alpaca-py only when called. Nothing here ever writes at
the broker, and no message carries a key or an account number.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from alchemiser import bootstrap
from alchemiser.config import AppConfig
from alchemiser.domain.decisions import TradingState
from alchemiser.domain.market import NEW_YORK, MarketStatus
from alchemiser.errors import AccountMismatch, AlchemiserError, BrokerAuthError, ConfigError
from alchemiser.preflight import (
    ORDER,
    CheckResult,
    Status,
    check_freshness,
    check_local_data,
    check_symphonies,
    fail,
    has,
    named,
    ok,
    skip,
    where,
)

if TYPE_CHECKING:
    from alchemiser.ports import MarketData

RECENT_SESSIONS = 5
"""At Alpaca, every ticker needs a bar in this many sessions up to the last one."""
STACK_PARAMETER = "ALCHEMISER_TRADING_STATE_PARAMETER"
"""The stack's kill switch (the functions' environment); else the config's."""


class AccountProbe(Protocol):
    def buying_power(self) -> object: ...

    def market_status(self) -> MarketStatus: ...


def default_region(environ: Mapping[str, str]) -> str | None:
    """The AWS region and where it came from, or None when none is set."""
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        if environ.get(name, "").strip():
            return f"{environ[name].strip()} ({name})"
    import boto3  # noqa: PLC0415 - the CLI's check only

    region = boto3.session.Session().region_name
    return f"{region} (AWS config profile)" if region else None


def default_secret_endpoint(config: AppConfig) -> str:
    from alchemiser.adapters.aws.secrets import read_alpaca_credentials  # noqa: PLC0415

    assert config.alpaca is not None  # guaranteed by AppConfig for broker = alpaca
    return read_alpaca_credentials(config.alpaca.secret_id, force_fetch=True).endpoint


def default_trading_state(name: str) -> TradingState:
    from alchemiser.adapters.aws.trading_state import read_trading_state  # noqa: PLC0415

    return read_trading_state(name, max_age=0)


def default_broker(config: AppConfig, live: bool) -> tuple[AccountProbe, MarketData]:
    from alchemiser.adapters.clock import SystemClock  # noqa: PLC0415

    clock = SystemClock()
    assert config.alpaca is not None
    deadline = clock.monotonic() + config.alpaca.time_budget_seconds
    wiring = bootstrap.alpaca(config, clock=clock, live=live, deadline=deadline)
    return wiring.broker, wiring.market


@dataclass
class Readers:
    """How the checks reach AWS and the broker; the defaults are the product's own."""

    region: Callable[[Mapping[str, str]], str | None] = default_region
    secret_endpoint: Callable[[AppConfig], str] = default_secret_endpoint
    trading_state: Callable[[str], TradingState] = default_trading_state
    broker: Callable[[AppConfig, bool], tuple[AccountProbe, MarketData]] = default_broker
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def _switch_name(config: AppConfig, environ: Mapping[str, str]) -> str | None:
    return environ.get(STACK_PARAMETER, "").strip() or config.trading_state_parameter


def check_aws(config: AppConfig, *, live: bool, readers: Readers) -> tuple[list[CheckResult], bool]:
    """Region, secret, endpoint and kill switch; and whether the broker may be asked
    (the secret read and its endpoint agreed)."""
    alpaca = config.broker == "alpaca"
    switch = _switch_name(config, readers.environ)
    results: list[CheckResult] = []
    region = readers.region(readers.environ) if alpaca or switch else None
    if not alpaca and not switch:
        results.append(skip("region", "broker is sim and no kill switch is named"))
    elif region is None:
        results.append(
            fail("region", "no AWS region: set AWS_REGION or AWS_DEFAULT_REGION (or a profile's)")
        )
    else:
        results.append(ok("region", region))
    reachable = False
    if not alpaca:
        results.append(skip("secret", "broker is sim"))
        if live:
            results.append(fail("endpoint", "--live needs broker = 'alpaca' and mode = 'live'"))
        else:
            results.append(skip("endpoint", "broker is sim"))
    elif region is None:
        results.append(skip("secret", "no AWS region"))
        results.append(skip("endpoint", "no AWS region"))
    else:
        assert config.alpaca is not None  # guaranteed by AppConfig
        try:
            endpoint = readers.secret_endpoint(config)
        except AlchemiserError as error:
            results.append(fail("secret", str(error)))
            results.append(skip("endpoint", "the secret could not be read"))
        else:
            results.append(
                ok("secret", f"{config.alpaca.secret_id}: keys present, endpoint {endpoint}")
            )
            try:
                bootstrap.check_live(config, endpoint, live)
            except ConfigError as error:
                results.append(fail("endpoint", str(error)))
            else:
                confirmed = ", confirmed with --live" if live else ""
                results.append(
                    ok("endpoint", f"{endpoint}: the secret and the config's mode agree{confirmed}")
                )
                reachable = True
    if switch is None:
        results.append(skip("kill-switch", "no trading_state_parameter (config or stack)"))
    elif region is None:
        results.append(skip("kill-switch", "no AWS region"))
    else:
        try:
            state = readers.trading_state(switch)
        except AlchemiserError as error:
            results.append(fail("kill-switch", str(error)))
        else:
            note = "" if state is TradingState.ACTIVE else ": runs will trade less or not at all"
            results.append(ok("kill-switch", f"{switch} holds {state.value}{note}"))
    return results, reachable


def check_broker(
    config: AppConfig, tickers: frozenset[str] | None, *, live: bool, readers: Readers
) -> list[CheckResult]:
    """At Alpaca, reading only: the account (and its pin), then recent daily bars for
    every ticker. Never an order, a cancel or any other write."""
    try:
        account, market = readers.broker(config, live)
    except AlchemiserError as error:
        return [fail("account", str(error)), skip("data", "the broker could not be reached")]
    pinned = config.alpaca is not None and config.alpaca.account_number is not None
    results: list[CheckResult] = []
    try:
        account.buying_power()
    except AccountMismatch:
        results.append(
            fail("account", "the keys reach a different account than [alpaca] account_number")
        )
    except BrokerAuthError as error:
        return [
            fail("account", f"the broker refused the keys: {error}"),
            skip("data", "keys refused"),
        ]
    except AlchemiserError as error:
        results.append(fail("account", f"{error.code}: {error}"))
    else:
        pin = "matches the account_number pin" if pinned else "no account_number pin set"
        results.append(ok("account", f"keys accepted, account active, {pin}"))
    results.append(_broker_bars(tickers, account, market))
    return results


def _broker_bars(
    tickers: frozenset[str] | None, account: AccountProbe, market: MarketData
) -> CheckResult:
    if tickers is None:
        return skip("data", "a symphony did not validate: its tickers are unknown")
    try:
        today = account.market_status().at.astimezone(NEW_YORK).date()
        last = market.latest_session(before=today)
        history = market.history(sorted(tickers), last, RECENT_SESSIONS)
    except AlchemiserError as error:
        return fail("data", f"at Alpaca: {error}")
    without = [
        symbol
        for column, symbol in enumerate(history.symbols)
        if bool(np.isnan(history.closes[:, column]).all())
    ]
    if without:
        return fail(
            "data",
            f"no bar at Alpaca in the {RECENT_SESSIONS} sessions to {last}: {named(without)}",
        )
    return ok("data", f"{has(len(tickers))} bars at Alpaca up to {last}")


def check_account(
    config: AppConfig,
    *,
    prices: Path | None = None,
    use_broker: bool = False,
    live: bool = False,
    trading_date: date | None = None,
    readers: Readers | None = None,
) -> list[CheckResult]:
    """Every check for one account's settings (the config loaded already), in ``ORDER``.
    ``use_broker``: an account on Alpaca has its tickers checked at Alpaca, not in
    local files (without it, in local files only when ``prices`` or its ``[data] dir``
    names some: the bundled demo prices say nothing of its tickers); ``trading_date``
    (None: skip) is what local data must be fresh for."""
    readers = readers or Readers()
    strategies = check_symphonies(config)
    results = list(strategies.results)
    at_broker = use_broker and config.broker == "alpaca"
    local_asked = prices is not None or config.data.dir is not None
    if config.broker == "alpaca" and not at_broker and not local_asked:
        # Its runs read Alpaca's bars, never the bundled demo prices.
        results.append(skip("data", "not asked: --broker checks the tickers at Alpaca"))
        results.append(skip("freshness", "broker is alpaca: a run reads Alpaca's bars"))
    elif not at_broker:
        store = bootstrap.market_data(config, prices)
        results.append(check_local_data(config, strategies.tickers, store, where(config, prices)))
        if config.broker == "alpaca":
            results.append(skip("freshness", "broker is alpaca: a run reads Alpaca's bars"))
        elif trading_date is None:
            results.append(skip("freshness", "no trading date given"))
        elif results[-1].status is not Status.OK:
            results.append(skip("freshness", "the local data check did not pass"))
        else:
            results.append(check_freshness(config, store, trading_date))
    else:
        results.append(skip("freshness", "the data check at Alpaca asks for recent bars"))
    aws, reachable = check_aws(config, live=live, readers=readers)
    results += aws
    if at_broker and reachable:
        results += check_broker(config, strategies.tickers, live=live, readers=readers)
    elif at_broker:
        results.append(skip("account", "the secret or its endpoint check failed"))
        results.append(skip("data", "the secret or its endpoint check failed"))
    elif config.broker == "alpaca":
        results.append(skip("account", "not asked (--broker checks it at Alpaca)"))
    else:
        results.append(skip("account", "broker is sim"))
    return sorted(results, key=lambda r: ORDER.index(r.name))
