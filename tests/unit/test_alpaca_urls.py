"""Alpaca base URLs: parsed, normalised and checked against the mode when the config is
validated, so a bad one is refused before any secret is read or request sent."""

from __future__ import annotations

import pytest

from alchemiser import bootstrap
from alchemiser.adapters.alpaca.policy import AlpacaConfig
from alchemiser.config import AppConfig, parse_config
from alchemiser.errors import ConfigError, LiveTradingRefused

MINIMAL = {
    "strategies": [{"name": "a", "kind": "fixed", "allocation": 1.0, "weights": {"SPY": 1.0}}]
}

# (mode, field, url, normalised URL when accepted or None when refused)
ACCEPTED = [
    ("paper", "trading_url", "https://paper-api.alpaca.markets", None),
    ("paper", "trading_url", "HTTPS://PAPER-API.ALPACA.MARKETS/", None),
    ("paper", "trading_url", "https://paper-api.alpaca.markets:443", None),
    ("paper", "trading_url", "http://127.0.0.1:8765", "http://127.0.0.1:8765"),
    ("paper", "trading_url", "http://127.0.0.1:8765/", "http://127.0.0.1:8765"),
    ("paper", "trading_url", "https://127.0.0.1:8443", "https://127.0.0.1:8443"),
    ("paper", "trading_url", "http://localhost:8765", "http://localhost:8765"),
    ("paper", "trading_url", "HTTP://LocalHost:8765", "http://localhost:8765"),
    ("paper", "trading_url", "http://[::1]:8765", "http://[::1]:8765"),
    ("paper", "trading_url", "http://127.0.0.1:80", "http://127.0.0.1"),
    ("live", "trading_url", "https://api.alpaca.markets", None),
    ("live", "trading_url", "https://API.ALPACA.MARKETS", None),
    ("live", "trading_url", "https://api.alpaca.markets:443/", None),
    ("paper", "data_url", "https://data.alpaca.markets", None),
    ("paper", "data_url", "HTTPS://DATA.ALPACA.MARKETS:443/", None),
    ("paper", "data_url", "http://127.0.0.1:8765", "http://127.0.0.1:8765"),
    ("paper", "data_url", "http://[::1]:8765/", "http://[::1]:8765"),
    ("live", "data_url", "https://data.alpaca.markets", None),
    ("live", "data_url", "https://Data.Alpaca.Markets:443", None),
]
CANONICAL = {
    ("paper", "trading_url"): "https://paper-api.alpaca.markets",
    ("live", "trading_url"): "https://api.alpaca.markets",
    ("paper", "data_url"): "https://data.alpaca.markets",
    ("live", "data_url"): "https://data.alpaca.markets",
}

REFUSED = [
    # plain http to a remote host, user-info, hosts that only start like Alpaca's
    ("paper", "trading_url", "http://paper-api.alpaca.markets"),
    ("paper", "trading_url", "http://example.com"),
    ("paper", "trading_url", "https://user:pw@paper-api.alpaca.markets"),
    ("paper", "trading_url", "https://user@paper-api.alpaca.markets"),
    ("paper", "trading_url", "http://user:pw@127.0.0.1:8765"),
    ("paper", "trading_url", "https://paper-api.alpaca.markets.evil.example"),
    ("paper", "trading_url", "https://paper-api.alpaca.markets."),
    ("paper", "trading_url", "https://evil.example/paper-api.alpaca.markets"),
    # ports other than https's own, bad ports
    ("paper", "trading_url", "https://paper-api.alpaca.markets:8443"),
    ("paper", "trading_url", "https://paper-api.alpaca.markets:0"),
    ("paper", "trading_url", "https://paper-api.alpaca.markets:99999"),
    ("paper", "trading_url", "https://paper-api.alpaca.markets:abc"),
    # paths, queries, fragments (alpaca-py appends /v2 itself)
    ("paper", "trading_url", "https://paper-api.alpaca.markets/v2"),
    ("paper", "trading_url", "https://paper-api.alpaca.markets?x=1"),
    ("paper", "trading_url", "https://paper-api.alpaca.markets/?"),
    ("paper", "trading_url", "https://paper-api.alpaca.markets#top"),
    # not URLs of ours at all
    ("paper", "trading_url", "ftp://x"),
    ("paper", "trading_url", "paper-api.alpaca.markets"),
    ("paper", "trading_url", "https://"),
    ("paper", "trading_url", " https://paper-api.alpaca.markets"),
    ("paper", "trading_url", "https://paper-api.alpaca.markets\n"),
    ("paper", "trading_url", "http://127.0.0.2:8765"),
    ("paper", "trading_url", "http://0.0.0.0:8765"),
    ("paper", "trading_url", "https://data.alpaca.markets"),
    # the other mode's host
    ("paper", "trading_url", "https://api.alpaca.markets"),
    ("paper", "trading_url", "https://API.ALPACA.MARKETS"),
    ("paper", "trading_url", "https://api.alpaca.markets:443/"),
    ("live", "trading_url", "https://paper-api.alpaca.markets"),
    ("live", "trading_url", "HTTPS://PAPER-API.ALPACA.MARKETS/"),
    # loopback only in paper mode
    ("live", "trading_url", "http://127.0.0.1:8765"),
    ("live", "trading_url", "https://127.0.0.1:8443"),
    ("live", "trading_url", "http://localhost:8765"),
    ("live", "trading_url", "http://[::1]:8765"),
    ("live", "trading_url", "http://api.alpaca.markets"),
    ("live", "trading_url", "https://api.alpaca.markets:8443"),
    ("live", "trading_url", "https://user:pw@api.alpaca.markets"),
    ("live", "trading_url", "https://api.alpaca.markets.evil.example"),
    # data
    ("paper", "data_url", "http://data.alpaca.markets"),
    ("paper", "data_url", "https://data.alpaca.markets:8443"),
    ("paper", "data_url", "https://data.alpaca.markets.evil.example"),
    ("paper", "data_url", "https://u:pw@data.alpaca.markets"),
    ("paper", "data_url", "https://data.alpaca.markets/v2"),
    ("paper", "data_url", "https://paper-api.alpaca.markets"),
    ("paper", "data_url", "https://api.alpaca.markets"),
    ("live", "data_url", "http://127.0.0.1:8765"),
    ("live", "data_url", "http://localhost:8765"),
    ("live", "data_url", "http://[::1]:8765"),
    ("live", "data_url", "http://data.alpaca.markets"),
    ("live", "data_url", "https://api.alpaca.markets"),
]


def _document(mode: str, field: str, url: str) -> dict[str, object]:
    return {**MINIMAL, "broker": "alpaca", "mode": mode, "alpaca": {"secret_id": "s", field: url}}


def _url(config: AppConfig, field: str) -> str:
    assert config.alpaca is not None
    return config.trading_url if field == "trading_url" else config.alpaca.data_url


@pytest.mark.parametrize(("mode", "field", "url", "normalised"), ACCEPTED)
def test_accepted_urls_are_normalised(
    mode: str, field: str, url: str, normalised: str | None
) -> None:
    config = parse_config(_document(mode, field, url), "t")
    assert _url(config, field) == (normalised or CANONICAL[mode, field])


@pytest.mark.parametrize(("mode", "field", "url"), REFUSED)
def test_refused_urls_name_the_field(mode: str, field: str, url: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(_document(mode, field, url), "t")
    assert error.value.field == f"alpaca.{field}"
    assert "pw" not in str(error.value)  # user-info never echoed


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_default_urls_are_the_modes_own(mode: str) -> None:
    config = parse_config(
        {**MINIMAL, "broker": "alpaca", "mode": mode, "alpaca": {"secret_id": "s"}}, "t"
    )
    assert config.alpaca is not None
    assert config.trading_url == CANONICAL[mode, "trading_url"]
    assert config.alpaca.data_url == "https://data.alpaca.markets"


def test_an_account_gone_live_may_not_keep_a_loopback_url() -> None:
    document = {
        **_document("paper", "trading_url", "http://127.0.0.1:8765"),
        "accounts": [
            {"account": "p", "alpaca": {"secret_id": "a/p"}},
            {"account": "l", "mode": "live", "alpaca": {"secret_id": "a/l"}},
        ],
    }
    with pytest.raises(ConfigError) as error:
        parse_config(document, "t")
    assert error.value.field == "alpaca.trading_url"
    assert "account 'l'" in str(error.value)


def test_an_accounts_own_bad_url_names_the_field() -> None:
    document = {
        **_document("paper", "trading_url", "http://127.0.0.1:8765"),
        "accounts": [
            {"account": "p", "alpaca": {"secret_id": "a/p"}},
            {"account": "x", "alpaca": {"secret_id": "a/x", "data_url": "http://evil.example"}},
        ],
    }
    with pytest.raises(ConfigError) as error:
        parse_config(document, "t")
    assert error.value.field == "alpaca.data_url"
    assert "account 'x'" in str(error.value)


def test_settings_built_directly_never_echo_user_info() -> None:
    with pytest.raises(ValueError, match="user") as error:
        AlpacaConfig(secret_id="s", trading_url="https://user:hunter2@api.alpaca.markets")
    assert "hunter2" not in str(error.value)


@pytest.mark.parametrize(
    ("mode", "url"),
    [
        ("paper", "https://API.ALPACA.MARKETS"),
        ("paper", "https://api.alpaca.markets:443/"),
        ("live", "HTTPS://PAPER-API.ALPACA.MARKETS:443"),
        ("live", "http://127.0.0.1:8765"),
    ],
)
def test_check_live_compares_normalised_urls(mode: str, url: str) -> None:
    """A config copied with an unvalidated URL (model_copy skips validation) still meets
    check_live's own URL refusal."""
    config = parse_config(
        {**MINIMAL, "broker": "alpaca", "mode": mode, "alpaca": {"secret_id": "s"}}, "t"
    )
    assert config.alpaca is not None
    copied = config.model_copy(
        update={"alpaca": config.alpaca.model_copy(update={"trading_url": url})}
    )
    with pytest.raises(LiveTradingRefused) as error:
        bootstrap.check_live(copied, mode, mode == "live")
    assert error.value.field == "alpaca.trading_url"
