"""Each command's help reads as text for a person: no reST markup from docstrings, no
metavar that is only the option's name upper-cased, defaults said the same way."""

from __future__ import annotations

import re

import pytest

from alchemiser.cli.main import main

SAYS_WHAT_IT_IS = {"dir"}
"""Options whose upper-cased name is already the kind of value (``--dir DIR``)."""
COMMANDS = [
    ("run",),
    ("invoke",),
    ("report",),
    ("halt",),
    ("resume",),
    ("check",),
    ("wait-for",),
    ("data", "fetch"),
    ("evaluate",),
    ("explain",),
    ("validate",),
    ("convert",),
    ("backtest",),
    ("exchange", "serve"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_reads_cleanly(command: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: alchemiser {' '.join(command)} ")
    assert "``" not in text
    echoed = [
        name
        for name, metavar in re.findall(r"--([a-z][a-z-]*) ([A-Z][A-Z_]*)\b", text)
        if metavar == name.upper().replace("-", "_") and name not in SAYS_WHAT_IT_IS
    ]
    assert echoed == []
    assert "(default " not in text  # "(default: X)" everywhere


def test_the_command_list_reads_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: alchemiser [-h] COMMAND ...")
    assert "``" not in text
    assert "{run," not in text  # the commands are listed once, each with its help
    for command in ("run", "backtest", "report", "check", "data", "wait-for"):
        assert re.search(rf"^    {command} +\S", text, re.MULTILINE), command
