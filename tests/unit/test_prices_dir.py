"""One rule for where local prices come from: --prices, else [data] dir (relative to the
config file), else the bundled prices; the old keys are refused with the new one named."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from alchemiser import bootstrap
from alchemiser.adapters.files.prices import bundled_prices_dir
from alchemiser.cli.main import main
from alchemiser.config import load_config
from alchemiser.errors import ConfigError

CONFIG = """
[[strategies]]
name = "all-spy"
allocation = 1.0
weights = {SPY = 1.0}
"""


def _prices(folder: Path, last: str) -> Path:
    """SPY's bundled closes up to ``last`` in ``folder``."""
    folder.mkdir(parents=True)
    text = gzip.decompress(bundled_prices_dir().joinpath("SPY.csv.gz").read_bytes()).decode()
    lines = text.splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if line[:10] <= last]
    (folder / "SPY.csv").write_text("\n".join(kept) + "\n")
    return folder


def test_data_dir_is_relative_to_the_config_file(tmp_path: Path) -> None:
    _prices(tmp_path / "cfg" / "prices", "2020-06-30")
    config_file = tmp_path / "cfg" / "c.toml"
    config_file.write_text(CONFIG + '[data]\ndir = "prices"\n')
    config = load_config(config_file)
    assert config.data.dir == tmp_path / "cfg" / "prices"
    assert bootstrap.market_data(config).latest_session().isoformat() == "2020-06-30"


def test_the_command_line_wins_over_the_config_and_the_config_over_the_bundle(
    tmp_path: Path,
) -> None:
    _prices(tmp_path / "cfg" / "prices", "2020-06-30")
    flag = _prices(tmp_path / "flag", "2019-12-31")
    config_file = tmp_path / "cfg" / "c.toml"
    config_file.write_text(CONFIG + '[data]\ndir = "prices"\n')
    config = load_config(config_file)
    assert bootstrap.prices_dir(config, flag) == flag
    assert bootstrap.market_data(config, flag).latest_session().isoformat() == "2019-12-31"
    bare = tmp_path / "bare.toml"
    bare.write_text(CONFIG)
    assert bootstrap.prices_dir(load_config(bare)) is None
    assert bootstrap.market_data(None).latest_session().isoformat() == "2026-07-31"


def test_the_old_keys_are_refused_naming_dir(tmp_path: Path) -> None:
    config_file = tmp_path / "c.toml"
    config_file.write_text(CONFIG + '[data]\nsource = "directory"\npath = "p"\n')
    with pytest.raises(ConfigError, match=r'dir = "prices"'):
        load_config(config_file)


@pytest.mark.parametrize("command", ["run", "backtest"])
def test_run_and_backtest_read_prices_from_the_flag(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flag = _prices(tmp_path / "flag", "2019-12-31")
    config_file = tmp_path / "c.toml"
    config_file.write_text(CONFIG)
    if command == "run":
        argv = ["run", "--config", str(config_file), "--prices", str(flag), "--json"]
        argv += ["--state-dir", str(tmp_path / "state")]
    else:
        argv = ["backtest", "--config", str(config_file), "--prices", str(flag)]
        argv += ["--start", "2019-12-02", "--end", "2020-03-02", "--no-chart"]
        argv += ["--out", str(tmp_path / "out")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    if command == "run":
        assert '"trading_date": "2019-12-31"' in out
    else:
        # The data ends 2019-12-31: the backtest stops there, whatever --end says.
        assert "2019-12-31" in out


def test_a_missing_price_directory_fails_closed_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    config_file = tmp_path / "c.toml"
    config_file.write_text(CONFIG)
    code = main(["run", "--config", str(config_file), "--prices", str(missing)])
    assert code == 1
    assert str(missing) in capsys.readouterr().err
    assert not missing.exists()
