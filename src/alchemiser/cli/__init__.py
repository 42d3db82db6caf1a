"""The ``alchemiser`` command line: ``main`` is the console script's entry point.

``main`` parses and dispatches (``main.py``); the commands beyond ``run`` and ``invoke``
live in ``research.py`` (evaluate, explain, validate, convert, backtest), ``ledger.py`` (report)
and ``ops.py`` (halt, resume). ``python -m alchemiser.cli`` runs the same command.
"""

from alchemiser.cli.main import main

__all__ = ["main"]
