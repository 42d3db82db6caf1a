"""Clocks: the real one, and a manual one whose waits take no time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from time import monotonic


class SystemClock:
    """Wall-clock time. Waits block on an Event, so a shutdown can interrupt them."""

    def __init__(self) -> None:
        self._interrupt = threading.Event()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._interrupt.wait(seconds)


class ManualClock:
    """A clock that moves only when told to (or when something waits on it)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start
        self._elapsed = 0.0
        self.waits: list[float] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._elapsed

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            self._elapsed += seconds
            self._now += timedelta(seconds=seconds)
