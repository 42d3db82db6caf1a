"""The preflight checks (alchemiser.preflight) with stand-ins for AWS and the broker:
each check's verdict, the skips that follow a failure, and the cold-start gate."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alchemiser import preflight, preflight_online
from alchemiser.cli import check
from alchemiser.config import AppConfig, parse_config
from alchemiser.domain.decisions import TradingState
from alchemiser.domain.market import MarketStatus
from alchemiser.domain.prices import PriceHistory
from alchemiser.errors import AccountMismatch, ConfigError, SecretError
from alchemiser.preflight import CheckResult, Status
from alchemiser.preflight_online import Readers
from tests.conftest import LAST

NUCLEAR_LINE = '(defsymphony "bad" {} (weight-equal [(asset "SPY") (bogus)]))\n'


def sim_config(tmp_path: Path, price_dir: Path, **extra: Any) -> AppConfig:
    strategies = extra.pop(
        "strategies", [{"name": "core", "allocation": 1.0, "weights": {"SPY": 0.6, "TLT": 0.4}}]
    )
    document = {"account": "demo", "strategies": strategies, "data": {"dir": str(price_dir)}}
    return parse_config(document | extra, "test.toml")


def alpaca_config(**alpaca: Any) -> AppConfig:
    mode = alpaca.pop("mode", "paper")
    table = {"secret_id": "alchemiser/paper"} | alpaca
    if mode == "paper":
        table |= {"trading_url": "http://127.0.0.1:1", "data_url": "http://127.0.0.1:1"}
    return parse_config(
        {
            "account": "paper",
            "broker": "alpaca",
            "mode": mode,
            "alpaca": table,
            "strategies": [
                {"name": "core", "allocation": 1.0, "weights": {"SPY": 0.5, "GLD": 0.5}}
            ],
        },
        "alpaca.toml",
    )


def by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    """The first result of each name (a failing symphony check may give several)."""
    named: dict[str, CheckResult] = {}
    for result in results:
        named.setdefault(result.name, result)
    return named


def statuses(results: list[CheckResult]) -> dict[str, Status]:
    return {name: result.status for name, result in by_name(results).items()}


class FakeAccount:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def buying_power(self) -> object:
        if self.error is not None:
            raise self.error
        return 1

    def market_status(self) -> MarketStatus:
        at = datetime(2026, 8, 3, 14, 0, tzinfo=UTC)
        return MarketStatus(at=at, is_open=True, next_open=at, next_close=at)


class FakeMarket:
    """Five sessions of bars; ``without`` have none."""

    def __init__(self, without: frozenset[str] = frozenset()) -> None:
        self.without = without
        self.asked: list[tuple[list[str], date]] = []

    def latest_session(self, before: date | None = None) -> date:
        return LAST

    def is_session(self, day: date) -> bool:
        return True

    def history(self, symbols: Any, end: date, sessions: int) -> PriceHistory:
        names = tuple(symbols)
        self.asked.append((list(names), end))
        closes = np.ones((sessions, len(names)))
        for column, name in enumerate(names):
            if name in self.without:
                closes[:, column] = np.nan
        days = np.datetime64("2026-07-27") + np.arange(sessions)
        return PriceHistory(dates=days, symbols=names, closes=closes)

    def latest_prices(self, symbols: Any, session: date, now: Any = None) -> dict[str, float]:
        raise AssertionError("not used")


def readers(
    *,
    region: str | None = "us-east-1 (AWS_REGION)",
    endpoint: str | Exception = "paper",
    state: TradingState | Exception = TradingState.ACTIVE,
    account: FakeAccount | None = None,
    market: FakeMarket | None = None,
    environ: Mapping[str, str] | None = None,
) -> Readers:
    def secret(config: AppConfig) -> str:
        if isinstance(endpoint, Exception):
            raise endpoint
        return endpoint

    def switch(name: str) -> TradingState:
        if isinstance(state, Exception):
            raise state
        return state

    return Readers(
        region=lambda env: region,
        secret_endpoint=secret,
        trading_state=switch,
        broker=lambda config, live: (account or FakeAccount(), market or FakeMarket()),
        environ=dict(environ or {}),
    )


def test_a_good_simulated_config_is_all_ok_or_skipped(tmp_path: Path, price_dir: Path) -> None:
    results = preflight_online.check_account(
        sim_config(tmp_path, price_dir), trading_date=LAST, readers=readers()
    )
    assert [r.name for r in results] == [
        "symphony", "data", "freshness", "region", "secret", "endpoint", "kill-switch", "account"
    ]  # fmt: skip
    assert not any(r.failed for r in results)
    named = by_name(results)
    assert named["data"].message == f"2 tickers have local data in {price_dir}"
    assert named["freshness"].status is Status.OK
    assert named["secret"] == CheckResult("secret", Status.SKIP, "broker is sim")


def test_a_missing_symphony_file_fails_with_its_path(tmp_path: Path, price_dir: Path) -> None:
    strategies = [{"name": "n", "kind": "symphony", "allocation": 1.0, "file": "nope.clj"}]
    config = sim_config(tmp_path, price_dir, strategies=strategies)
    results = preflight_online.check_account(config, trading_date=LAST, readers=readers())
    named = by_name(results)
    assert named["symphony"].status is Status.FAIL
    assert (
        named["symphony"].message
        == f"strategies[0] (nope.clj): file not found: {Path('nope.clj').absolute()}"
    )
    assert named["data"].status is Status.SKIP
    assert named["freshness"].status is Status.SKIP


def test_a_symphony_problem_is_reported_at_its_location(tmp_path: Path, price_dir: Path) -> None:
    bad = tmp_path / "bad.clj"
    bad.write_text(NUCLEAR_LINE)
    good = {"name": "t", "kind": "symphony", "allocation": 0.5, "builtin": "tecl"}
    mine = {"name": "m", "kind": "symphony", "allocation": 0.5, "file": str(bad)}
    config = sim_config(tmp_path, price_dir, strategies=[good, mine])
    failed = [r for r in preflight.check_symphonies(config).results if r.failed]
    assert len(failed) == 1
    assert failed[0].message.startswith(f"strategies[1] (bad.clj): {bad}:1:")


def test_a_ticker_without_local_data_is_named(tmp_path: Path, price_dir: Path) -> None:
    strategies = [{"name": "core", "allocation": 1.0, "weights": {"SPY": 0.5, "ZZZZ": 0.5}}]
    config = sim_config(tmp_path, price_dir, strategies=strategies)
    named = by_name(preflight_online.check_account(config, trading_date=LAST, readers=readers()))
    assert named["data"] == CheckResult(
        "data", Status.FAIL, f"no price file for ZZZZ in {price_dir}"
    )
    assert named["freshness"].status is Status.SKIP


def test_stale_local_data_fails_for_a_later_trading_date(tmp_path: Path, price_dir: Path) -> None:
    config = sim_config(tmp_path, price_dir)
    named = by_name(
        preflight_online.check_account(config, trading_date=date(2026, 9, 1), readers=readers())
    )
    assert named["freshness"].status is Status.FAIL
    assert "2026-07-31 is 32 days before the trading date 2026-09-01 (limit 5)" in (
        named["freshness"].message
    )


def test_a_good_alpaca_config_at_the_broker() -> None:
    market = FakeMarket()
    results = preflight_online.check_account(
        alpaca_config(account_number="PA123"), use_broker=True, readers=readers(market=market)
    )
    assert not any(r.failed for r in results), results
    named = by_name(results)
    assert named["data"].message == "2 tickers have bars at Alpaca up to 2026-07-31"
    assert (
        named["account"].message == "keys accepted, account active, matches the account_number pin"
    )
    assert market.asked == [(["GLD", "SPY"], LAST)]
    assert named["freshness"].status is Status.SKIP


def test_no_region_fails_and_skips_what_needs_it() -> None:
    got = statuses(
        preflight_online.check_account(
            alpaca_config(), use_broker=True, readers=readers(region=None)
        )
    )
    assert got["region"] is Status.FAIL
    assert got["secret"] is got["endpoint"] is got["account"] is got["data"] is Status.SKIP


@pytest.mark.parametrize(
    "problem",
    [
        "cannot read secret 'alchemiser/paper' from Secrets Manager: ResourceNotFoundException",
        "secret 'alchemiser/paper': missing or invalid field(s): endpoint",
    ],
)
def test_a_missing_or_misshapen_secret_fails(problem: str) -> None:
    results = preflight_online.check_account(
        alpaca_config(), use_broker=True, readers=readers(endpoint=SecretError(problem))
    )
    named = by_name(results)
    assert named["secret"] == CheckResult("secret", Status.FAIL, problem)
    assert named["endpoint"].status is Status.SKIP
    assert named["account"].status is Status.SKIP


def test_a_paper_secret_with_a_live_config_fails() -> None:
    named = by_name(
        preflight_online.check_account(
            alpaca_config(mode="live"), live=True, use_broker=True, readers=readers()
        )
    )
    assert named["endpoint"].status is Status.FAIL
    assert "the config's mode is 'live' but the secret's endpoint is 'paper'" in (
        named["endpoint"].message
    )
    assert named["account"].status is Status.SKIP


def test_a_live_config_without_live_fails() -> None:
    named = by_name(
        preflight_online.check_account(alpaca_config(mode="live"), readers=readers(endpoint="live"))
    )
    assert named["endpoint"].status is Status.FAIL
    assert "confirm with --live" in named["endpoint"].message
    confirmed = by_name(
        preflight_online.check_account(
            alpaca_config(mode="live"), live=True, readers=readers(endpoint="live")
        )
    )
    assert confirmed["endpoint"].status is Status.OK


def test_the_kill_switch_is_the_stacks_or_the_configs() -> None:
    from alchemiser.adapters.aws.trading_state import TradingStateUnavailable  # noqa: PLC0415

    none = by_name(preflight_online.check_account(alpaca_config(), readers=readers()))
    assert none["kill-switch"].status is Status.SKIP
    env = {preflight_online.STACK_PARAMETER: "/stack/state"}
    held = by_name(
        preflight_online.check_account(
            alpaca_config(), readers=readers(environ=env, state=TradingState.HALTED)
        )
    )
    assert held["kill-switch"].status is Status.OK
    assert held["kill-switch"].message.startswith("/stack/state holds HALTED")
    missing = TradingStateUnavailable("cannot read the trading state: ParameterNotFound")
    gone = by_name(
        preflight_online.check_account(alpaca_config(), readers=readers(environ=env, state=missing))
    )
    assert gone["kill-switch"] == CheckResult("kill-switch", Status.FAIL, str(missing))


def test_an_account_pin_mismatch_fails_without_naming_a_number() -> None:
    account = FakeAccount(AccountMismatch("the keys reach a different account"))
    named = by_name(
        preflight_online.check_account(
            alpaca_config(account_number="PA123"),
            use_broker=True,
            readers=readers(account=account),
        )
    )
    assert named["account"].status is Status.FAIL
    assert "PA123" not in named["account"].message
    assert named["data"].status is Status.OK


def test_a_ticker_without_bars_at_the_broker_is_named() -> None:
    market = FakeMarket(without=frozenset({"GLD"}))
    named = by_name(
        preflight_online.check_account(
            alpaca_config(), use_broker=True, readers=readers(market=market)
        )
    )
    assert named["data"] == CheckResult(
        "data", Status.FAIL, "no bar at Alpaca in the 5 sessions to 2026-07-31: GLD"
    )


def test_cold_start_checks_once_per_config_and_fails_closed(
    tmp_path: Path, price_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preflight, "_COLD", {})
    calls: list[AppConfig] = []
    real = preflight.offline

    def counted(config: AppConfig, prices: Path | None = None) -> list[CheckResult]:
        calls.append(config)
        return real(config, prices)

    monkeypatch.setattr(preflight, "offline", counted)
    good = sim_config(tmp_path, price_dir)
    preflight.cold_start(good)
    preflight.cold_start(good)
    assert len(calls) == 1
    strategies = [
        {"name": "n", "kind": "symphony", "allocation": 0.5, "file": "nope.clj"},
        {"name": "f", "allocation": 0.5, "weights": {"SPY": 1.0}},
    ]
    bad = sim_config(tmp_path, price_dir, strategies=strategies)
    for _ in range(2):
        with pytest.raises(ConfigError) as raised:
            preflight.cold_start(bad)
        assert str(raised.value) == (
            "account 'demo': 1 preflight check failed:\n"
            f"  symphony: strategies[0] (nope.clj): file not found: {Path('nope.clj').absolute()}"
        )
    assert len(calls) == 2


def test_cold_start_checks_local_data_for_a_simulated_account_only(
    tmp_path: Path, price_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(preflight, "_COLD", {})
    strategies = [{"name": "core", "allocation": 1.0, "weights": {"ZZZZ": 1.0}}]
    with pytest.raises(ConfigError, match="data: no price file for ZZZZ"):
        preflight.cold_start(sim_config(tmp_path, price_dir, strategies=strategies))
    assert [r.name for r in preflight.offline(alpaca_config())] == ["symphony"]


def test_check_without_broker_skips_local_data_for_an_alpaca_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An Alpaca account's runs read Alpaca's bars, never the bundled demo prices:
    without --broker (and with no local prices named) its data check is skipped, not
    failed for a ticker the demo prices lack."""
    path = tmp_path / "paper.toml"
    path.write_text(
        'broker = "alpaca"\nmode = "paper"\n[alpaca]\nsecret_id = "alchemiser/paper"\n'
        '[[strategies]]\nname = "core"\nallocation = 1.0\nweights = { AAPL = 0.99 }\n'
    )
    args = argparse.Namespace(
        config=path, account=None, all=False, prices=None, broker=False, live=False, as_of=None
    )
    code = check.run(args, readers(environ={}))
    out = capsys.readouterr().out
    assert "skip data         not asked: --broker checks the tickers at Alpaca" in out
    assert "FAIL data" not in out
    assert code == 0
