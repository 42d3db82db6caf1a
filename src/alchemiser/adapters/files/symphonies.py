"""Symphony text from files: a user's own, or the built-ins shipped as package data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alchemiser.errors import StrategyError
from alchemiser.strategy.symphony.ast import Symphony
from alchemiser.strategy.symphony.parser import parse_symphony

BUILTINS = {
    "nuclear": "nuclear.clj",
    "tecl": "tecl.clj",
    "kmlm-switcher": "kmlm_switcher.clj",
}


def read_symphony_file(path: Path) -> Symphony:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise StrategyError(f"cannot read {path}: {error}") from error
    return parse_symphony(text, str(path))


def builtin_text(name: str) -> tuple[str, str]:
    """The text of a built-in strategy and the source name its locations use."""
    if name not in BUILTINS:
        raise StrategyError(f"no built-in strategy {name!r} (have {', '.join(sorted(BUILTINS))})")
    package = resources.files("alchemiser.strategy.builtin")
    return package.joinpath(BUILTINS[name]).read_text("utf-8"), f"builtin:{BUILTINS[name]}"


def builtin_symphony(name: str) -> Symphony:
    """One of the strategies shipped with the package (``BUILTINS``)."""
    return parse_symphony(*builtin_text(name))
