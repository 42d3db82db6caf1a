"""Configuration: the embedded default, and every bad input naming its field."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser import bootstrap
from alchemiser.config import load_config, parse_config
from alchemiser.domain.decisions import TradingState
from alchemiser.errors import ConfigError
from alchemiser.strategy.base import FixedStrategy
from alchemiser.strategy.symphony.ast import RebalanceFrequency, RebalanceRule
from alchemiser.strategy.symphony.strategy import SymphonyStrategy

MINIMAL = {
    "strategies": [{"name": "a", "kind": "fixed", "allocation": 1.0, "weights": {"SPY": 1.0}}]
}


def test_embedded_default_loads() -> None:
    config = load_config()
    assert config.broker == "sim"
    assert [(s.name, s.allocation) for s in config.strategies] == [
        ("nuclear", 0.3),
        ("tecl", 0.5),
        ("kmlm-switcher", 0.2),
    ]
    assert sum(s.allocation for s in config.strategies) == pytest.approx(1.0)
    assert config.rebalance.cash_buffer == Decimal("0.01")
    assert config.sim.starting_cash == Decimal(100_000)


def test_minimal_config_gets_defaults() -> None:
    config = parse_config(MINIMAL, "test")
    assert config.trading_state is TradingState.ACTIVE
    assert config.risk.max_orders == 50


def test_class_shares_are_normalised() -> None:
    document = {"strategies": [{"name": "a", "allocation": 1, "weights": {"brk/b": 0.5}}]}
    assert parse_config(document, "test").strategies[0].weights == {"BRK.B": 0.5}


def _strategies(**overrides: object) -> dict[str, object]:
    strategy = {"name": "a", "kind": "fixed", "allocation": 1.0, "weights": {"SPY": 1.0}}
    strategy.update(overrides)
    return {"strategies": [strategy]}


@pytest.mark.parametrize(
    ("document", "field", "fragment"),
    [
        (_strategies(weights={"SPY": 0.7, "TLT": 0.6}), "strategies[0].weights", "sum to 1.3"),
        (_strategies(weights={"SPY": -0.1}), "strategies[0].weights.SPY", "greater than or equal"),
        (_strategies(weights={"SPY": float("nan")}), "strategies[0].weights.SPY", "finite"),
        (_strategies(weights={}), "strategies[0].weights", "at least one"),
        (
            _strategies(weights={"not a ticker": 0.5}),
            "strategies[0].weights.not a ticker",
            "ticker",
        ),
        (_strategies(allocation=1.5), "strategies[0].allocation", "less than or equal"),
        (_strategies(kind="bogus"), "strategies[0]", "'fixed' or 'symphony'"),
        (_strategies(kind="symphony"), "strategies[0].weights", "not a known key"),
        (
            {"strategies": [{"name": "s", "kind": "symphony", "allocation": 1.0}]},
            "strategies[0]",
            "exactly one of 'builtin' or 'file'",
        ),
        ({"strategies": []}, "strategies", "at least 1"),
        ({**MINIMAL, "risk": {"max_orders": -1}}, "risk.max_orders", "greater than or equal"),
        ({**MINIMAL, "rebalance": {"cash_buffer": "1.5"}}, "rebalance.cash_buffer", "less than"),
        ({**MINIMAL, "trading_state": "PAUSED"}, "trading_state", "ACTIVE"),
        ({**MINIMAL, "broker": "ibkr"}, "broker", "'sim' or 'alpaca'"),
        ({**MINIMAL, "broker": "alpaca"}, "config", "needs mode = 'paper' or 'live'"),
        ({**MINIMAL, "broker": "alpaca", "mode": "paper"}, "config", "[alpaca] table"),
        ({**MINIMAL, "mode": "live"}, "config", "needs broker = 'alpaca'"),
        ({**MINIMAL, "mode": "backtest"}, "mode", "'sim', 'paper' or 'live'"),
        (
            {**MINIMAL, "broker": "alpaca", "mode": "paper", "alpaca": {}},
            "alpaca.secret_id",
            "Field required",
        ),
        (
            {
                **MINIMAL,
                "broker": "alpaca",
                "mode": "paper",
                "alpaca": {"secret_id": "s", "feed": "x"},
            },
            "alpaca.feed",
            "'iex' or 'sip'",
        ),
        (
            {
                **MINIMAL,
                "broker": "alpaca",
                "mode": "paper",
                "alpaca": {"secret_id": "s", "trading_url": "ftp://x"},
            },
            "alpaca.trading_url",
            "must start with https://",
        ),
        (
            {**MINIMAL, "risk": {"max_order_notionl": 5}},
            "risk.max_order_notionl",
            "not a known key (did you mean `max_order_notional`?)",
        ),
        ({**MINIMAL, "data": {"source": "directory"}}, "data", "replaced by one key: dir"),
        (_strategies(weights={"SPY": 0.5, "spy": 0.4}), "strategies[0].weights", "same symbol SPY"),
        (_strategies(weights={"BRK/B": 0.5, "BRK.B": 0.4}), "strategies[0].weights", "BRK.B"),
        ({**MINIMAL, "rebalance": {"qty_step": "1E-30"}}, "rebalance.qty_step", "greater than"),
        ({**MINIMAL, "sim": {"starting_cash": "1e30"}}, "sim.starting_cash", "less than"),
    ],
)
def test_invalid_config_names_the_field(
    document: dict[str, object], field: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(document, "test")
    assert error.value.field == field
    assert fragment in str(error.value)


def test_a_misspelt_key_is_named_first_with_the_key_it_likely_means() -> None:
    entry = {"name": "a", "kind": "fixed", "alocation": 1.0, "weights": {"SPY": 1.0}}
    with pytest.raises(ConfigError) as error:
        parse_config({"strategies": [entry]}, "test")
    assert error.value.field == "strategies[0].alocation"
    assert error.value.fields == ("strategies[0].alocation", "strategies[0].allocation")
    assert str(error.value).splitlines() == [
        "2 problems [in test]:",
        "  strategies[0].alocation: not a known key (did you mean `allocation`?)",
        "  strategies[0].allocation: Field required",
    ]


def test_every_problem_is_listed_unknown_keys_first() -> None:
    document = {
        **MINIMAL,
        "risk": {"max_orders": -1},
        "brokr": "sim",
        "sim": {"slipage_bps": 5, "fee_bps": -1},
        "zzz": 1,
    }
    with pytest.raises(ConfigError) as error:
        parse_config(document, "test")
    lines = str(error.value).splitlines()
    assert lines[0] == "5 problems [in test]:"
    assert sorted(lines[1:4]) == [
        "  brokr: not a known key (did you mean `broker`?)",
        "  sim.slipage_bps: not a known key (did you mean `slippage_bps`?)",
        "  zzz: not a known key",
    ]
    assert lines[4].startswith("  risk.max_orders: Input should be greater than or equal to 0")
    assert lines[5].startswith("  sim.fee_bps: Input should be greater than or equal to 0")
    assert set(error.value.fields[:3]) == {"brokr", "sim.slipage_bps", "zzz"}
    assert error.value.field == error.value.fields[0]


def test_one_problem_reads_on_one_line() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({**MINIMAL, "brokr": "sim"}, "test")
    assert str(error.value) == "brokr: not a known key (did you mean `broker`?) [in test]"
    assert error.value.fields == ("brokr",)


def test_an_accounts_problems_are_all_named() -> None:
    document = {
        **MINIMAL,
        "broker": "alpaca",
        "mode": "paper",
        "alpaca": {"secret_id": "s"},
        "accounts": [{"account": "ira", "risk": {"max_ordrs": 1, "max_orders": -1}}],
    }
    with pytest.raises(ConfigError) as error:
        parse_config(document, "test")
    message = str(error.value)
    assert "account 'ira': risk.max_ordrs: not a known key (did you mean `max_orders`?)" in message
    assert "risk.max_orders: Input should be greater than or equal to 0" in message


def test_allocations_above_one_and_duplicate_names() -> None:
    two = {"name": "a", "allocation": 0.6, "weights": {"SPY": 1.0}}
    with pytest.raises(ConfigError, match=r"allocations sum to 1\.2"):
        parse_config({"strategies": [two, {**two, "name": "b"}]}, "test")
    with pytest.raises(ConfigError, match="unique"):
        parse_config(
            {"strategies": [{**two, "allocation": 0.1}, {**two, "allocation": 0.1}]}, "test"
        )


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("strategies = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)


def test_symphony_files_are_relative_to_the_config(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "c.toml"
    config.parent.mkdir()
    config.write_text(
        '[[strategies]]\nname = "mine"\nkind = "symphony"\nallocation = 0.5\n'
        'file = "strategies/mine.clj"\n'
        '[[strategies]]\nname = "nuclear"\nkind = "symphony"\nallocation = 0.5\n'
        'builtin = "nuclear"\n'
    )
    loaded = load_config(config)
    mine, nuclear = loaded.strategies
    assert mine.file == tmp_path / "conf" / "strategies" / "mine.clj"  # type: ignore[union-attr]
    assert nuclear.builtin == "nuclear"  # type: ignore[union-attr]


def test_alpaca_urls_default_by_mode() -> None:
    alpaca = {"secret_id": "alchemiser/paper"}
    paper = parse_config({**MINIMAL, "broker": "alpaca", "mode": "paper", "alpaca": alpaca}, "t")
    live = parse_config({**MINIMAL, "broker": "alpaca", "mode": "live", "alpaca": alpaca}, "t")
    assert paper.trading_url == "https://paper-api.alpaca.markets"
    assert live.trading_url == "https://api.alpaca.markets"
    local = parse_config(
        {
            **MINIMAL,
            "broker": "alpaca",
            "mode": "paper",
            "alpaca": {**alpaca, "trading_url": "http://127.0.0.1:8765/"},
        },
        "t",
    )
    assert local.trading_url == "http://127.0.0.1:8765"


def test_trading_state_parameter_is_optional_top_level_and_per_account() -> None:
    assert parse_config(MINIMAL, "t").trading_state_parameter is None
    config = parse_config(
        {
            **MINIMAL,
            "trading_state_parameter": "/alchemiser/trading-state",
            "accounts": [
                {"account": "main"},
                {"account": "ira", "trading_state_parameter": "/alchemiser/ira-state"},
            ],
        },
        "t",
    )
    assert config.trading_state_parameter == "/alchemiser/trading-state"
    assert config.for_account("main").trading_state_parameter == "/alchemiser/trading-state"
    assert config.for_account("ira").trading_state_parameter == "/alchemiser/ira-state"


@pytest.mark.parametrize("name", ["", "has space", "/x" * 1100])
def test_a_malformed_trading_state_parameter_is_refused(name: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config({**MINIMAL, "trading_state_parameter": name}, "t")
    assert error.value.field == "trading_state_parameter"


def test_an_ssm_arn_names_the_parameter_too() -> None:
    arn = "arn:aws:ssm:us-east-1:000000000000:parameter/alchemiser/trading-state"
    assert parse_config({**MINIMAL, "trading_state_parameter": arn}, "t").trading_state_parameter


# ------------------------------------------------------------------ rebalance rules


def test_a_symphony_anchor_is_a_date_passed_to_the_strategy() -> None:
    entry = {"name": "s", "kind": "symphony", "allocation": 1.0, "builtin": "nuclear"}
    config = parse_config({"strategies": [{**entry, "anchor": "2020-01-02"}]}, "test")
    assert config.strategies[0].anchor == date(2020, 1, 2)
    strategy = bootstrap.strategy(config.strategies[0])
    assert isinstance(strategy, SymphonyStrategy)
    assert strategy.anchor == date(2020, 1, 2)
    assert parse_config({"strategies": [entry]}, "test").strategies[0].anchor is None
    with pytest.raises(ConfigError) as caught:
        parse_config({"strategies": [{**entry, "anchor": "2020-13-45"}]}, "test")
    assert caught.value.field == "strategies[0].anchor"


def test_a_fixed_strategy_takes_a_rebalance_rule() -> None:
    corridor = parse_config(_strategies(rebalance_threshold=0.05), "test").strategies[0]
    assert corridor.rule == RebalanceRule(RebalanceFrequency.NONE, 0.05)
    monthly = parse_config(_strategies(rebalance_frequency="monthly"), "test").strategies[0]
    strategy = bootstrap.strategy(monthly)
    assert isinstance(strategy, FixedStrategy)
    assert strategy.rule == RebalanceRule(RebalanceFrequency.MONTHLY, None)
    assert parse_config(_strategies(), "test").strategies[0].rule.every_session


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"rebalance_threshold": 5}, "strategies[0].rebalance_threshold", "write 0.05"),
        ({"rebalance_threshold": 0}, "strategies[0].rebalance_threshold", "above 0"),
        ({"rebalance_frequency": "hourly"}, "strategies[0].rebalance_frequency", "'daily'"),
        (
            {"rebalance_frequency": "daily", "rebalance_threshold": 0.05},
            "strategies[0]",
            "has no effect: every session rebalances",
        ),
    ],
)
def test_bad_fixed_rebalance_rules_name_their_field(
    overrides: dict[str, object], field: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(_strategies(**overrides), "test")
    assert caught.value.field == field
    assert fragment in str(caught.value)
