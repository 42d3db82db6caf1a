"""What the fuzz suites share: seeded cases that only typed errors may end, and
mutations of values and texts."""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from typing import Any

from alchemiser.errors import AlchemiserError

HANDLER_ENVIRONMENT = (
    "ALCHEMISER_CONFIG",
    "ALCHEMISER_LIVE",
    "ALCHEMISER_LEDGER_TABLE",
    "ALCHEMISER_IDEMPOTENCY_TABLE",
    "ALCHEMISER_REPORTS_TOPIC_ARN",
    "ALCHEMISER_TRADING_STATE_PARAMETER",
    "ALCHEMISER_ACCOUNTS_QUEUE_URL",
    "ALCHEMISER_TRADING_WINDOWS",
)
"""The handlers' settings from the environment: a test clears them all."""


def each_case(seed: int, cases: int, check: Callable[[random.Random], None]) -> None:
    """Run ``check`` on ``cases`` seeded generators; only typed errors may escape
    (``AlchemiserError``); a hang is pytest-timeout's to catch."""
    for case in range(cases):
        rng = random.Random(f"{seed}:{case}")
        try:
            check(rng)
        except AlchemiserError:
            pass
        except Exception as error:
            error.add_note(f"fuzz case {seed}:{case}")
            raise


JUNK: list[Any] = [
    None,
    True,
    0,
    -1,
    2**64,
    1.5,
    float("nan"),
    float("inf"),
    "",
    " ",
    "\x00",
    "null",
    "2026-07-31",
    [],
    [1, 2],
    {},
    {"a": 1},
    "é" * 300,
    "9" * 5000,
]


def junk(rng: random.Random) -> Any:
    if rng.random() < 0.3:
        alphabet = string.printable + "éß\u2028\x85\ud7ff"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 60)))
    return rng.choice(JUNK)


def mutate_text(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randrange(1, 5)):
        roll = rng.random()
        at = rng.randrange(0, len(chars) + 1)
        if roll < 0.3 and chars:
            chars[min(at, len(chars) - 1)] = rng.choice(string.printable + "\x00\u2028é")
        elif roll < 0.5:
            chars.insert(at, rng.choice(["{", "}", '"', ",", "\\", "\\u0000", "\ud800", "9" * 50]))
        elif roll < 0.7:
            del chars[at : at + rng.randrange(1, 20)]
        else:
            chars = chars[: rng.randrange(0, len(chars) + 1)]
    return "".join(chars)
