"""Which accounts of a config a command is asked for: ``--account NAME``, ``--all``, or
the config's one account. Shared by ``run`` and ``check``."""

from __future__ import annotations

import argparse
import sys

from alchemiser.config import AppConfig


def accounts_asked(args: argparse.Namespace, config: AppConfig, command: str) -> list[str] | None:
    """The accounts ``alchemiser <command>`` was asked for; None (after saying why) when
    a config with ``[[accounts]]`` names none of them: running its top level would use
    settings none of its entries has."""
    names = config.account_names()
    if args.all:
        return names
    if args.account is not None:
        if args.account not in names:
            print(
                f"alchemiser {command}: no account {args.account!r} in this config; "
                f"its accounts: {', '.join(names)}",
                file=sys.stderr,
            )
            return None
        return [args.account]
    if config.accounts:
        print(
            f"alchemiser {command}: this config has several accounts ({', '.join(names)}): "
            f"name one with --account NAME, or {command} them all with --all",
            file=sys.stderr,
        )
        return None
    return names
