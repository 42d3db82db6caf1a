"""Multi-account configs: ``[[accounts]]`` entries over the file's top level."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alchemiser.config import parse_config
from alchemiser.errors import ConfigError

BASE = {
    "broker": "alpaca",
    "mode": "paper",
    "alpaca": {"secret_id": "stack/main", "feed": "sip"},
    "risk": {"max_order_notional": 20000, "max_orders": 30},
    "strategies": [{"name": "core", "allocation": 1.0, "weights": {"SPY": 1.0}}],
}


def test_a_file_without_accounts_is_one_account() -> None:
    config = parse_config(BASE, "t")
    assert config.account_names() == ["default"]
    assert config.for_account("default") is config
    with pytest.raises(ConfigError, match="no account 'other'"):
        config.for_account("other")


def test_entries_change_tables_key_by_key() -> None:
    config = parse_config(
        {
            **BASE,
            "accounts": [
                {"account": "main"},
                {"account": "ira", "alpaca": {"secret_id": "stack/ira"}, "risk": {"max_orders": 5}},
            ],
        },
        "t",
    )
    assert config.account_names() == ["main", "ira"]
    main, ira = config.for_account("main"), config.for_account("ira")
    assert (main.account, ira.account) == ("main", "ira")
    assert main.alpaca is not None
    assert ira.alpaca is not None
    assert (main.alpaca.secret_id, ira.alpaca.secret_id) == ("stack/main", "stack/ira")
    assert ira.alpaca.feed == "sip"  # inherited
    assert ira.risk.max_orders == 5
    assert ira.risk.max_order_notional == Decimal(20000)  # inherited
    assert main.risk == config.risk
    assert ira.accounts == ()


def test_an_entry_may_replace_mode_state_and_strategies() -> None:
    config = parse_config(
        {
            **BASE,
            "accounts": [
                {
                    "account": "live-one",
                    "mode": "live",
                    "trading_state": "REDUCING",
                    "strategies": [{"name": "bonds", "allocation": 1.0, "weights": {"TLT": 1.0}}],
                }
            ],
        },
        "t",
    )
    one = config.for_account("live-one")
    assert one.mode.value == "live"
    assert one.trading_state.value == "REDUCING"
    assert [s.name for s in one.strategies] == ["bonds"]


@pytest.mark.parametrize(
    ("accounts", "fragment"),
    [
        ([{"account": "a"}, {"account": "a"}], "account names must be unique: a"),
        ([{"account": "x", "risk": {"max_orders": -1}}], "account 'x': risk.max_orders"),
        ([{"account": "x", "alpaca": {"feed": "nope"}}], "account 'x': alpaca.feed"),
        ([{"account": "bad name"}], "should match pattern"),
        ([{"account": "x", "mode": "sim"}], "account 'x'"),
    ],
)
def test_every_account_is_validated(accounts: list[dict[str, object]], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_config({**BASE, "accounts": accounts}, "t")
