"""Symphony files: a user's own (``defsymphony`` text, or Composer's JSON score: a
``.json`` file or one starting with ``{``), or the built-ins shipped as package data."""

from __future__ import annotations

from functools import lru_cache
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


PARSED_KEPT = 8
"""Parsed symphonies kept by text: a warm Lambda container (and the cold-start check
before its first run) parses each file once, not on every run."""


@lru_cache(maxsize=PARSED_KEPT)
def parse_document(text: str, source: str) -> Symphony:
    """The symphony of a file's text, in either form (``looks_like_score`` decides).
    Kept for the same text and source: a Symphony is immutable (frozen nodes), so one
    parse serves every run that reads the same file unchanged."""
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
    return parse_document(*builtin_text(name))
