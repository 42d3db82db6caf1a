"""Hostile config and symphony files: every one a typed error, read within a size cap,
and configs with thousands of accounts or strategies validated in one pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from alchemiser import bootstrap
from alchemiser.adapters.files.symphonies import MAX_SYMPHONY_BYTES, read_symphony_file
from alchemiser.cli import main
from alchemiser.config import MAX_CONFIG_BYTES, load_config, parse_config
from alchemiser.errors import ConfigError, StrategyError

GOOD = '[[strategies]]\nname = "a"\nallocation = 1.0\nweights = { SPY = 1.0 }\n'
SYMPHONY = '(defsymphony "S" {} (asset "SPY"))\n'
DEV_ZERO = Path("/dev/zero")
needs_dev_zero = pytest.mark.skipif(not DEV_ZERO.exists(), reason="no /dev/zero")


def write(tmp_path: Path, content: str | bytes, name: str = "config.toml") -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_a_config_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(write(tmp_path, b"\xba"))


def test_arrays_nested_thousands_deep_are_a_config_error(tmp_path: Path) -> None:
    text = GOOD + "[data]\npath = " + "[" * 2000 + "]" * 2000 + "\n"
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(write(tmp_path, text))


def test_an_integer_too_long_to_read_is_a_config_error(tmp_path: Path) -> None:
    text = GOOD + "[data]\nmax_staleness_days = " + "9" * 4301 + "\n"
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, text))


@needs_dev_zero
def test_a_config_path_that_is_not_a_regular_file_is_refused_unread() -> None:
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(DEV_ZERO)


def test_a_config_directory_or_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")


def test_a_config_is_read_up_to_its_cap_and_refused_beyond(tmp_path: Path) -> None:
    padding = "#" * (MAX_CONFIG_BYTES - len(GOOD) - 1) + "\n"
    assert load_config(write(tmp_path, GOOD + padding)).strategies[0].name == "a"
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        load_config(write(tmp_path, GOOD + padding + "\n"))


@needs_dev_zero
def test_a_symphony_file_that_is_not_a_regular_file_is_refused_unread(tmp_path: Path) -> None:
    text = GOOD.replace("weights = { SPY = 1.0 }\n", 'kind = "symphony"\nfile = "/dev/zero"\n')
    config = load_config(write(tmp_path, text))
    with pytest.raises(StrategyError, match="not a regular file"):
        bootstrap.strategies(config)
    with pytest.raises(StrategyError, match="not a regular file"):
        read_symphony_file(DEV_ZERO)


def test_a_symphony_file_is_read_up_to_its_cap_and_refused_beyond(tmp_path: Path) -> None:
    padding = ";" * (MAX_SYMPHONY_BYTES - len(SYMPHONY) - 1) + "\n"
    at_cap = write(tmp_path, SYMPHONY + padding, "at.clj")
    assert read_symphony_file(at_cap).name == "S"
    over = write(tmp_path, SYMPHONY + padding + "\n", "over.clj")
    with pytest.raises(StrategyError, match="larger than 8 MiB"):
        read_symphony_file(over)


def test_a_symphony_file_that_is_not_utf8_is_a_strategy_error(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="not UTF-8"):
        read_symphony_file(write(tmp_path, b"\xba", "bad.clj"))


@needs_dev_zero
def test_the_research_commands_refuse_a_symphony_that_is_not_a_regular_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", str(DEV_ZERO)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{DEV_ZERO}: 1 problem(s)", f"  {DEV_ZERO}: cannot read: not a regular file"]
    assert main(["evaluate", str(DEV_ZERO), "--as-of", "2024-01-02"]) == 1
    assert "not a regular file" in capsys.readouterr().err


@needs_dev_zero
def test_the_cli_refuses_a_config_that_is_not_a_regular_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--config", str(DEV_ZERO)]) == 2
    assert "not a regular file" in capsys.readouterr().err


def fixed(name: str, allocation: float) -> dict[str, object]:
    return {"name": name, "allocation": allocation, "weights": {"SPY": 1.0}}


def test_ten_thousand_accounts_validate() -> None:
    document = {
        "broker": "alpaca",
        "mode": "paper",
        "alpaca": {"secret_id": "top"},
        "strategies": [fixed(f"s{i}", 0.01) for i in range(100)],
        "accounts": [{"account": f"a{i}", "alpaca": {"secret_id": f"s{i}"}} for i in range(10_000)],
    }
    config = parse_config(document, "test")
    assert len(config.account_names()) == 10_000
    assert config.for_account("a9999").alpaca is not None


def test_ten_thousand_strategies_validate_and_a_duplicate_among_them_is_named() -> None:
    strategies = [fixed(f"s{i}", 1e-4) for i in range(10_000)]
    assert len(parse_config({"strategies": strategies}, "test").strategies) == 10_000
    with pytest.raises(ConfigError, match=r"must be unique: s7 \[in test\]"):
        parse_config({"strategies": [*strategies[:-1], fixed("s7", 1e-4)]}, "test")


def test_ten_thousand_weights_validate() -> None:
    weights = {f"S{i}": 1e-4 for i in range(10_000)}
    config = parse_config({"strategies": [{**fixed("a", 1.0), "weights": weights}]}, "t")
    assert len(config.strategies[0].weights) == 10_000  # type: ignore[union-attr]
