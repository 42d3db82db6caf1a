"""The local exchange's clock and market calendar: sessions, hours and settlement.

The calendar is the price data's sessions (the reference ticker's dates); after the
data ends, every weekday is a session. Regular hours are 09:30-16:00 New York, with
13:00 closes on July 3, the day after US Thanksgiving and December 24. The clock starts
at a chosen instant and then runs on in real time.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from time import monotonic
from zoneinfo import ZoneInfo

import numpy as np

from alchemiser.exchange.params import one
from alchemiser.exchange.shapes import JSON, ApiError

NEW_YORK = ZoneInfo("America/New_York")

REGULAR_OPEN = time(9, 30)
REGULAR_CLOSE = time(16, 0)
EARLY_CLOSE = time(13, 0)
T_PLUS_ONE_FROM = date(2024, 5, 28)
SATURDAY = 5
THURSDAY = 3

_FRACTION = re.compile(r"\.(\d+)")


def parse_instant(text: str, date_zone: tzinfo = NEW_YORK) -> datetime:
    """RFC 3339 (nanoseconds and ``Z`` allowed) or ``YYYY-MM-DD`` (midnight in
    ``date_zone``); a naive date-time is taken as UTC."""
    value = text.strip()
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime.combine(day, time(0), tzinfo=date_zone)
    value = value.replace("z", "Z").replace("Z", "+00:00").replace(" ", "+", 1)
    value = value.replace("t", "T")
    value = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], value, count=1)
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def to_date(value: np.datetime64) -> date:
    return date.fromisoformat(str(value.astype("datetime64[D]")))


def _thanksgiving(year: int) -> date:
    first = date(year, 11, 1)
    offset = (THURSDAY - first.weekday()) % 7
    return first + timedelta(days=offset + 21)


class Clock:
    """The exchange's ``now``: an anchor instant that runs on in real time."""

    def __init__(self, start: datetime) -> None:
        self.anchor = start
        self.anchor_mono = monotonic()

    def move_to(self, instant: datetime) -> None:
        self.anchor = instant
        self.anchor_mono = monotonic()

    def advance(self, seconds: float) -> None:
        self.anchor += timedelta(seconds=seconds)

    def now(self) -> datetime:
        return self.anchor + timedelta(seconds=monotonic() - self.anchor_mono)

    def today(self) -> date:
        """The New York date of now."""
        return self.now().astimezone(NEW_YORK).date()


class MarketCalendar:
    """Sessions from the price data, every weekday after it ends; hours per session."""

    def __init__(self, sessions: Sequence[date]) -> None:
        if not sessions:
            raise ValueError("the price data has no sessions")
        self._sessions = list(sessions)
        self._set = set(sessions)
        self.first = self._sessions[0]
        self.last_data = self._sessions[-1]

    def is_session(self, day: date) -> bool:
        if day <= self.last_data:
            return day in self._set
        return day.weekday() < SATURDAY

    def next_session(self, day: date) -> date:
        """The first session strictly after ``day``."""
        index = bisect_right(self._sessions, day)
        if index < len(self._sessions):
            return self._sessions[index]
        candidate = max(day, self.last_data) + timedelta(days=1)
        while candidate.weekday() >= SATURDAY:
            candidate += timedelta(days=1)
        return candidate

    def previous_session(self, day: date) -> date | None:
        """The last session strictly before ``day``."""
        candidate = day - timedelta(days=1)
        while candidate > self.last_data:
            if candidate.weekday() < SATURDAY:
                return candidate
            candidate -= timedelta(days=1)
        index = bisect_right(self._sessions, candidate)
        return self._sessions[index - 1] if index > 0 else None

    def sessions_between(self, start: date, end: date) -> list[date]:
        low = bisect_left(self._sessions, start)
        high = bisect_right(self._sessions, end)
        days = self._sessions[low:high]
        day = max(start, self.last_data + timedelta(days=1))
        while day <= end:
            if day.weekday() < SATURDAY:
                days.append(day)
            day += timedelta(days=1)
        return days

    def data_sessions_before(self, day: date) -> list[date]:
        return self._sessions[: bisect_left(self._sessions, day)]

    @staticmethod
    def close_time(day: date) -> time:
        early = (
            (day.month == 7 and day.day == 3)
            or (day.month == 12 and day.day == 24)
            or day == _thanksgiving(day.year) + timedelta(days=1)
        )
        return EARLY_CLOSE if early else REGULAR_CLOSE

    def hours(self, day: date) -> tuple[datetime, datetime]:
        opens = datetime.combine(day, REGULAR_OPEN, tzinfo=NEW_YORK)
        closes = datetime.combine(day, self.close_time(day), tzinfo=NEW_YORK)
        return opens, closes

    def is_open(self, instant: datetime) -> bool:
        today = instant.astimezone(NEW_YORK).date()
        if not self.is_session(today):
            return False
        opens, closes = self.hours(today)
        return opens <= instant < closes

    def trade_session(self, at: datetime) -> date:
        """The session an order placed at ``at`` trades in."""
        today = at.astimezone(NEW_YORK).date()
        if self.is_session(today) and at < self.hours(today)[1]:
            return today
        return self.next_session(today)

    def settlement(self, day: date) -> date:
        settles = self.next_session(day)
        if day < T_PLUS_ONE_FROM:
            settles = self.next_session(settles)
        return settles

    def day_json(self, day: date) -> JSON:
        closes = self.close_time(day)
        return {
            "date": day.isoformat(),
            "open": REGULAR_OPEN.strftime("%H:%M"),
            "close": closes.strftime("%H:%M"),
            "session_open": "0400",
            "session_close": "1700" if closes == EARLY_CLOSE else "2000",
            "settlement_date": self.settlement(day).isoformat(),
        }

    def clock_json(self, instant: datetime) -> JSON:
        """GET /v2/clock at ``instant``."""
        now = instant.astimezone(NEW_YORK)
        today = now.date()
        is_open = False
        if self.is_session(today):
            opens, closes = self.hours(today)
            if now < opens:
                next_open, next_close = opens, closes
            elif now < closes:
                is_open = True
                next_open = self.hours(self.next_session(today))[0]
                next_close = closes
            else:
                next_open, next_close = self.hours(self.next_session(today))
        else:
            next_open, next_close = self.hours(self.next_session(today))
        return {
            "timestamp": now.isoformat(timespec="microseconds"),
            "is_open": is_open,
            "next_open": next_open.isoformat(timespec="seconds"),
            "next_close": next_close.isoformat(timespec="seconds"),
        }

    def calendar_json(self, query: Mapping[str, Sequence[str]]) -> list[JSON]:
        """GET /v2/calendar: the sessions from ``start`` to ``end``."""

        def day(name: str, default: date) -> date:
            text = one(query, name)
            if not text:
                return default
            try:
                return date.fromisoformat(text.strip()[:10])
            except ValueError as error:
                raise ApiError(400, 40010001, f"invalid {name}: {text!r}") from error

        start = day("start", self.first)
        end = day("end", max(date(2029, 12, 31), self.last_data))
        return [self.day_json(d) for d in self.sessions_between(start, end)]
