"""Accounts that cannot collide: two ``[[accounts]]`` entries never share one Alpaca
account (by secret, or by a pinned account number), and the pinned number never shows
in an error or a repr."""

from __future__ import annotations

from typing import Any

import pytest

from alchemiser.config import parse_config
from alchemiser.errors import ConfigError

PINNED = "ZZTEST0001"
"""An account number pinned in a config: it must never be echoed back."""

BASE: dict[str, Any] = {
    "broker": "alpaca",
    "mode": "paper",
    "alpaca": {"secret_id": "stack/main"},
    "strategies": [{"name": "core", "allocation": 1.0, "weights": {"SPY": 1.0}}],
}


def _config(accounts: list[dict[str, Any]], **top: Any) -> Any:
    return parse_config({**BASE, **top, "accounts": accounts}, "t")


def test_accounts_inheriting_one_secret_are_refused_by_name() -> None:
    with pytest.raises(ConfigError) as caught:
        _config([{"account": "main"}, {"account": "ira"}])
    message = str(caught.value)
    assert "'main'" in message
    assert "'ira'" in message
    assert "alpaca.secret_id" in message


def test_accounts_naming_one_secret_are_refused() -> None:
    with pytest.raises(ConfigError, match="'a' and 'c'"):
        _config(
            [
                {"account": "a", "alpaca": {"secret_id": "stack/x"}},
                {"account": "b", "alpaca": {"secret_id": "stack/y"}},
                {"account": "c", "alpaca": {"secret_id": "stack/x"}},
            ]
        )


def test_accounts_with_their_own_secrets_are_fine() -> None:
    config = _config([{"account": "main"}, {"account": "ira", "alpaca": {"secret_id": "s/ira"}}])
    assert config.account_names() == ["main", "ira"]


def test_simulated_accounts_share_no_broker_account() -> None:
    document = {k: v for k, v in BASE.items() if k not in ("broker", "mode", "alpaca")}
    config = parse_config({**document, "accounts": [{"account": "a"}, {"account": "b"}]}, "t")
    assert config.account_names() == ["a", "b"]


def test_account_number_is_optional_and_inherited() -> None:
    config = _config(
        [{"account": "main", "alpaca": {"account_number": PINNED}}],
    )
    main = config.for_account("main")
    assert main.alpaca is not None
    assert main.alpaca.account_number == PINNED
    assert config.alpaca is not None
    assert config.alpaca.account_number is None


@pytest.mark.parametrize("second", [PINNED, PINNED.lower()], ids=["same", "other-case"])
def test_two_accounts_pinning_one_number_are_refused(second: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(
            [
                {"account": "main", "alpaca": {"account_number": PINNED}},
                {"account": "ira", "alpaca": {"secret_id": "s/ira", "account_number": second}},
            ]
        )
    message = str(caught.value)
    assert "'main' and 'ira'" in message
    assert "account_number" in message
    assert PINNED.lower() not in message.lower()


def test_a_number_pinned_at_the_top_level_collides_in_every_account() -> None:
    with pytest.raises(ConfigError, match=r"'main' and 'ira'.*account_number"):
        _config(
            [{"account": "main"}, {"account": "ira", "alpaca": {"secret_id": "s/ira"}}],
            alpaca={"secret_id": "stack/main", "account_number": PINNED},
        )


def test_distinct_numbers_are_fine() -> None:
    config = _config(
        [
            {"account": "main", "alpaca": {"account_number": PINNED}},
            {"account": "ira", "alpaca": {"secret_id": "s/ira", "account_number": "ZZTEST0002"}},
        ]
    )
    assert config.account_names() == ["main", "ira"]


@pytest.mark.parametrize("number", ["", "has space", "x" * 65, 12345])
def test_a_malformed_number_is_refused_without_echoing_it(number: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({**BASE, "alpaca": {"secret_id": "s", "account_number": number}}, "t")
    assert caught.value.field == "alpaca.account_number"
    if number:
        chained = caught.value.__cause__
        assert str(number) not in str(caught.value)
        assert chained is None or str(number) not in str(chained)


def test_the_number_stays_out_of_reprs() -> None:
    config = parse_config({**BASE, "alpaca": {"secret_id": "s", "account_number": PINNED}}, "t")
    assert config.alpaca is not None
    assert config.alpaca.account_number == PINNED
    assert PINNED not in repr(config)
    assert PINNED not in str(config)
    assert PINNED not in repr(config.alpaca)


def test_many_accounts_are_checked() -> None:
    accounts = [{"account": f"a{i}", "alpaca": {"secret_id": f"s/{i}"}} for i in range(500)]
    assert len(_config(accounts).account_names()) == 500
    accounts.append({"account": "late", "alpaca": {"secret_id": "s/7"}})
    with pytest.raises(ConfigError, match="'a7' and 'late'"):
        _config(accounts)
    accounts[-1] = {"account": "a3", "alpaca": {"secret_id": "s/new"}}
    with pytest.raises(ConfigError, match="account names must be unique: a3"):
        _config(accounts)


def test_a_malformed_number_in_an_entry_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        _config([{"account": "x", "alpaca": {"secret_id": "s/x", "account_number": "ZZ 0001"}}])
    assert "account 'x': alpaca.account_number" in str(caught.value)
    assert "ZZ 0001" not in str(caught.value)
    assert "ZZ 0001" not in str(caught.value.__cause__)
