"""Symphony files: a user's own (``defsymphony`` text, or Composer's JSON score: a
``.json`` file or one starting with ``{``), or the built-ins shipped as package data."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alchemiser.adapters.files.text import read_capped_text
from alchemiser.errors import StrategyError
from alchemiser.strategy.symphony.ast import Symphony
from alchemiser.strategy.symphony.parser import parse_symphony
from alchemiser.strategy.symphony.score import looks_like_score, parse_score

MAX_SYMPHONY_BYTES = 8 << 20
"""A symphony file larger than this (8 MiB) is refused unread: Composer's own exports
reach a few MB."""

BUILTINS = {
    "nuclear": "nuclear.clj",
    "tecl": "tecl.clj",
    "kmlm-switcher": "kmlm_switcher.clj",
}


def read_symphony_text(path: Path) -> str:
    """The text of a symphony file: a regular file, UTF-8, at most ``MAX_SYMPHONY_BYTES``."""
    return read_capped_text(
        path, MAX_SYMPHONY_BYTES, lambda reason: StrategyError(f"cannot read {path}: {reason}")
    )


def read_symphony_file(path: Path) -> Symphony:
    return parse_document(read_symphony_text(path), str(path))


def parse_document(text: str, source: str) -> Symphony:
    """The symphony of a file's text, in either form (``looks_like_score`` decides)."""
    if looks_like_score(text, source):
        return parse_score(text, source)
    return parse_symphony(text, source)


def builtin_text(name: str) -> tuple[str, str]:
    """The text of a built-in strategy and the source name its locations use."""
    if name not in BUILTINS:
        raise StrategyError(f"no built-in strategy {name!r} (have {', '.join(sorted(BUILTINS))})")
    package = resources.files("alchemiser.strategy.builtin")
    return package.joinpath(BUILTINS[name]).read_text("utf-8"), f"builtin:{BUILTINS[name]}"


def builtin_symphony(name: str) -> Symphony:
    """One of the strategies shipped with the package (``BUILTINS``)."""
    return parse_symphony(*builtin_text(name))
