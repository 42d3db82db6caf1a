"""The command table: every command's ``--help`` works and lists its options, a command
parses the same with only its own module loaded as with every module, and the symphony
commands never load the broker's client, AWS, the local stack or pydantic."""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys

import pytest

from alchemiser.cli.main import COMMANDS, main

# The module, not the function of the same name that alchemiser.cli exports.
cli_main = importlib.import_module("alchemiser.cli.main")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


FULL = _subparsers(cli_main._parser())


def test_the_table_names_every_command_in_help_order() -> None:
    assert list(FULL) == list(COMMANDS)


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", list(COMMANDS))
def test_each_command_help_exits_0_and_lists_its_options(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    full = FULL[command]
    assert out == full.format_help()  # the same text as with every command defined
    assert out.startswith(f"usage: alchemiser {command} ")
    options = [s for a in full._actions for s in a.option_strings if s.startswith("--")]
    assert "--help" in options
    for option in options:
        assert option in out


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_command_alone_defines_what_the_full_parser_does(command: str) -> None:
    alone = _subparsers(cli_main._parser(command))
    assert command in alone
    assert alone[command].format_help() == FULL[command].format_help()
    assert set(alone) < set(FULL) or set(alone) == set(FULL) == {command}


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "builtin:nuclear", "--as-of", "2024-06-28", "--json"],
        ["explain", "x.clj", "--as-of", "2024-06-28", "--anchor", "2024-01-02"],
        ["validate", "a.clj", "b.json", "--prices", "p"],
        ["backtest", "--start", "2024-01-02", "--end", "2024-06-28", "--no-chart"],
        ["run", "--as-of", "2024-06-28", "--json", "--dry-run"],
        ["invoke", "event.json", "--repeat", "2", "--env", "A=1"],
        ["halt", "--reduce", "--parameter", "p"],
        ["report", "--last", "3"],
        ["wait-for", "http://127.0.0.1:1"],
    ],
)
def test_arguments_parse_the_same(argv: list[str]) -> None:
    assert cli_main._parser(argv[0]).parse_args(argv) == cli_main._parser().parse_args(argv)


HEAVY = (
    "alpaca",
    "boto3",
    "botocore",
    "requests",
    "yaml",
    "matplotlib",
    "pydantic",
    "alchemiser.devstack",
    "alchemiser.exchange",
    "alchemiser.bootstrap",
    "alchemiser.service",
    "alchemiser.config",
)
LOADED = """
import contextlib, io, json, sys
from alchemiser.cli.main import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main({argv!r})
heavy = sorted({{m.split(".")[0] if not m.startswith("alchemiser.") else m for m in sys.modules
    if any(m == h or m.startswith(h + ".") for h in {heavy!r})}})
print(json.dumps({{"code": code, "heavy": heavy}}))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["evaluate", "builtin:nuclear", "--as-of", "2024-06-28"],
        ["explain", "builtin:tecl", "--as-of", "2024-06-28"],
        ["validate", "builtin:kmlm-switcher"],
        ["convert", "builtin:nuclear"],
    ],
)
def test_symphony_commands_load_no_broker_aws_or_pydantic(argv: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOADED.format(argv=argv, heavy=HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "heavy": []}
