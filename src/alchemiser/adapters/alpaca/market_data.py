"""The MarketData and Quotes ports on Alpaca: the session calendar from the Trading
API, daily bars and latest quotes from the Market Data API.

Queries are built here as plain dicts and sent through alpaca-py's REST client (see
clients.py), exactly as alpaca-py's own request models would write them.

All symbols go in one multi-symbol bars request (its pages followed, 10,000 bars
each, as alpaca-py follows them), adjusted for splits and dividends. What comes back
is checked before any strategy sees it: every symbol that has bars must have one for
the last session asked for (the previous session, by the calendar), prices must be
finite and positive, and no symbol may miss more than ``max_gap_sessions`` sessions
in a row once it trades. Anything else is a DataError, and the run places no order.

Latest quotes are read in batches of symbols; a symbol without a usable quote is left
out for the caller to deny (fail closed), and a reply not shaped as documented is a
BrokerUnknown.

Latest prices (the close window's stand-in for today's close) are the latest trades,
read in the same batches and checked like the bars: every symbol asked for must have a
trade of the session asked about, finite and positive, no older than
``max_price_age_seconds`` and not ahead of our clock by more than
``PRICE_CLOCK_SKEW_SECONDS``. Anything else, a reply not shaped as documented
included, is a DataError naming the symbols.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import numpy as np
import requests

from alchemiser.adapters.alpaca.bars import symbol_bars
from alchemiser.adapters.alpaca.transport import Transport, as_list, as_mapping, harden, utc
from alchemiser.domain.market import Quote
from alchemiser.domain.prices import DailyBar, PriceHistory
from alchemiser.errors import BrokerUnknown, DataError, DataErrorKind

if TYPE_CHECKING:
    from alpaca.common.rest import RESTClient

NEW_YORK = ZoneInfo("America/New_York")
CALENDAR_MARGIN_DAYS = 14
FINAL_BAR_DELAY = timedelta(minutes=30)
"""How long after a session's close its daily bar counts as final: trades reported
late (and corrections) still change it for a while after the closing bell."""
"""Calendar days fetched beyond the day asked about (holidays right after it)."""
QUOTES_BATCH = 100
"""Symbols per latest-quotes request. The symbols travel in the query string: 100 of
them (at most ~1.2 KB) stay far below the URL lengths servers and proxies accept
(8 KB is a common limit), and one reply stays small enough to read well inside the
read timeout, while a 5,000-symbol book still needs only 50 requests of the budget."""
LATEST_QUOTES = "/stocks/quotes/latest"
"""Under the data client's versioned base URL (alpaca-py's own path for it)."""
QUOTES_PATH = "GET /v2/stocks/quotes/latest"
LATEST_TRADES = "/stocks/trades/latest"
TRADES_PATH = "GET /v2/stocks/trades/latest"
PRICE_CLOCK_SKEW_SECONDS = 60.0
"""How far ahead of our clock a latest trade may be stamped (clocks disagree a little);
further ahead, the stamp cannot be trusted to say how fresh the price is."""
NAMED_SYMBOLS = 10
"""Symbols named in one DataError; the rest are counted."""
FEEDS = ("iex", "sip", "delayed_sip", "otc", "boats", "overnight")
"""The Market Data API's stock feeds (alpaca-py's DataFeed)."""
BARS = "/stocks/bars"
BARS_PAGE = 10_000
"""Bars per page, the most the API sends (alpaca-py's page size)."""
DATA_KEYS = frozenset(
    {
        "bar",
        "bars",
        "corporate_actions",
        "news",
        "orderbook",
        "orderbooks",
        "quote",
        "quotes",
        "snapshot",
        "snapshots",
        "trade",
        "trades",
    }
)
"""The Market Data API's reply keys: a page of bars must carry exactly one of them."""


def _calendar_span(sessions: int) -> int:
    """Calendar days that surely hold ``sessions`` sessions (252 a year, with room)."""
    return int(sessions * 366 / 245) + 30


class AlpacaMarketData:
    """Implements ports.MarketData."""

    def __init__(
        self,
        trading: RESTClient,
        data: RESTClient,
        transport: Transport,
        *,
        feed: str = "iex",
        max_sessions: int = 2520,
        max_gap_sessions: int = 3,
        max_price_age_seconds: float = 900,
    ) -> None:
        harden(trading, transport.session())
        harden(data, transport.session())
        self._trading = trading
        self._data = data
        self._transport = transport
        if feed not in FEEDS:
            raise ValueError(f"{feed!r} is not a valid DataFeed")
        self._feed = feed
        self._max_sessions = max_sessions
        self._max_gap = max_gap_sessions
        self._max_price_age = timedelta(seconds=max_price_age_seconds)
        self._sessions: list[date] = []
        self._closes: dict[date, str] = {}
        self._covered: tuple[date, date] | None = None

    # -- calendar ----------------------------------------------------------------

    def _calendar(self, start: date, end: date) -> list[date]:
        """Sessions from ``start`` to ``end``, read once and widened only when needed."""
        if self._covered is not None and self._covered[0] <= start and end <= self._covered[1]:
            return self._sessions
        if self._covered is not None:
            start, end = min(start, self._covered[0]), max(end, self._covered[1])
        raw = self._transport.call(
            lambda: self._trading.get(
                "/calendar", {"start": start.isoformat(), "end": end.isoformat()}
            ),
            what="GET /v2/calendar",
        )
        try:
            closes = {
                date.fromisoformat(str(d["date"])): str(d.get("close", ""))
                for d in as_list(raw, "calendar")
            }
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise BrokerUnknown(
                f"GET /v2/calendar: malformed response ({error})", broker_code="malformed"
            ) from error
        self._sessions, self._closes, self._covered = sorted(closes), closes, (start, end)
        days = self._sessions
        return days

    def latest_session(self, before: date | None = None) -> date:
        anchor = before or self._transport.clock.now().astimezone(NEW_YORK).date()
        days = self._calendar(
            anchor - timedelta(days=_calendar_span(30)),
            anchor + timedelta(days=CALENDAR_MARGIN_DAYS),
        )
        index = bisect_left(days, anchor) if before is not None else bisect_right(days, anchor)
        if index == 0:
            raise DataError(
                f"the broker's calendar has no session before {anchor.isoformat()}",
                kind=DataErrorKind.MISSING,
            )
        return days[index - 1]

    def is_session(self, day: date) -> bool:
        days = self._calendar(
            day - timedelta(days=_calendar_span(30)), day + timedelta(days=CALENDAR_MARGIN_DAYS)
        )
        index = bisect_left(days, day)
        return index < len(days) and days[index] == day

    # -- quotes ------------------------------------------------------------------

    def latest_quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        """Implements ports.Quotes: one request per ``QUOTES_BATCH`` symbols."""
        wanted = sorted(set(symbols))
        quotes: dict[str, Quote] = {}
        replies = self._latest_replies(
            wanted,
            self._latest_query,
            self._latest,
            "quotes",
            QUOTES_PATH,
        )
        try:
            for batch, reply in replies:
                for symbol in batch:
                    if symbol in reply:
                        quote = _quote(symbol, reply[symbol])
                        if quote is not None:
                            quotes[symbol] = quote
        except (KeyError, TypeError, ValueError) as error:
            raise BrokerUnknown(
                f"{QUOTES_PATH}: malformed response ({error})", broker_code="malformed"
            ) from error
        return quotes

    def _latest_replies(
        self,
        wanted: list[str],
        request_for: Callable[[list[str]], dict[str, str]],
        fetch: Callable[[dict[str, str]], object],
        key: str,
        what: str,
    ) -> Iterator[tuple[list[str], Mapping[str, Any]]]:
        """Each batch of ``QUOTES_BATCH`` symbols and its reply's ``key`` object, one
        request per batch; KeyError, TypeError or ValueError when a reply is not shaped
        as documented (the caller says which error that is)."""
        for start in range(0, len(wanted), QUOTES_BATCH):
            batch = wanted[start : start + QUOTES_BATCH]
            raw = self._transport.call(partial(fetch, request_for(batch)), what=what)
            yield batch, as_mapping(as_mapping(raw, "reply")[key], key)

    # -- latest prices -----------------------------------------------------------

    def latest_prices(
        self, symbols: Sequence[str], session: date, now: datetime | None = None
    ) -> dict[str, float]:
        """Each symbol's latest trade price, one request per ``QUOTES_BATCH`` symbols;
        a DataError unless every symbol has a finite, positive trade stamped on
        ``session`` (a New York date), at most ``max_price_age_seconds`` before ``now``
        (the broker's time; our clock's when not given) and at most
        ``PRICE_CLOCK_SKEW_SECONDS`` after it."""
        wanted = sorted(set(symbols))
        trades: dict[str, tuple[float, datetime]] = {}
        replies = self._latest_replies(
            wanted,
            self._latest_query,
            self._latest_trades,
            "trades",
            TRADES_PATH,
        )
        try:
            for batch, reply in replies:
                for symbol in batch:
                    if symbol in reply:
                        trades[symbol] = _trade(symbol, reply[symbol])
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(
                f"{TRADES_PATH}: malformed response ({error})", kind=DataErrorKind.MALFORMED
            ) from error
        self._check_trades(wanted, trades, session, now or self._transport.clock.now())
        return {symbol: trades[symbol][0] for symbol in wanted}

    def _latest_query(self, batch: list[str]) -> dict[str, str]:
        """A latest-quotes or latest-trades query, as alpaca-py's requests write it."""
        return {"feed": self._feed, "symbols": ",".join(batch)}

    def _latest_trades(self, query: dict[str, str]) -> object:
        """One latest-trades request, its reply as sent (see ``_latest``); a body that
        is not JSON is malformed data, not a transient failure."""
        try:
            return self._data.get(LATEST_TRADES, query)
        except requests.JSONDecodeError as error:
            raise DataError(
                f"{TRADES_PATH}: malformed response (not JSON)", kind=DataErrorKind.MALFORMED
            ) from error

    def _check_trades(
        self,
        wanted: list[str],
        trades: Mapping[str, tuple[float, datetime]],
        session: date,
        now: datetime,
    ) -> None:
        ahead = timedelta(seconds=PRICE_CLOCK_SKEW_SECONDS)
        missing = [s for s in wanted if s not in trades]
        non_finite = [s for s, (price, _) in trades.items() if not math.isfinite(price)]
        non_positive = [s for s, (price, _) in trades.items() if price <= 0]
        stale: list[str] = []
        for symbol, (_, stamp) in sorted(trades.items()):
            day = stamp.astimezone(NEW_YORK).date()
            if day != session:
                stale.append(f"{symbol} (a trade of {day.isoformat()})")
            elif now - stamp > self._max_price_age:
                stale.append(f"{symbol} ({int((now - stamp).total_seconds())} s old)")
            elif stamp - now > ahead:
                stale.append(f"{symbol} ({int((stamp - now).total_seconds())} s ahead)")
        for found, kind, what in (
            (non_finite, DataErrorKind.NON_FINITE, "a latest trade price that is not finite"),
            (non_positive, DataErrorKind.NON_POSITIVE, "a latest trade price <= 0"),
            (missing, DataErrorKind.MISSING, "no latest trade"),
            (
                stale,
                DataErrorKind.STALE,
                f"no latest trade of {session.isoformat()} within "
                f"{int(self._max_price_age.total_seconds())} s",
            ),
        ):
            if found:
                raise DataError(f"{what}: {_named(sorted(found))}", kind=kind)

    def _latest(self, query: dict[str, str]) -> object:
        """One latest-quotes request, its reply as sent. Not through
        ``get_stock_latest_quote``: that unwraps any known data key (``bars`` as well
        as ``quotes``), so another endpoint's reply would read as "no quotes". A body
        that is not JSON is a reply not shaped as documented, not a transient failure
        (the same body would come back)."""
        try:
            return self._data.get(LATEST_QUOTES, query)
        except requests.JSONDecodeError as error:
            raise BrokerUnknown(
                f"{QUOTES_PATH}: malformed response (not JSON)", broker_code="malformed"
            ) from error

    # -- bars --------------------------------------------------------------------

    def history(self, symbols: Sequence[str], end: date, sessions: int) -> PriceHistory:
        sessions = max(1, min(sessions, self._max_sessions))
        days = self._calendar(end - timedelta(days=_calendar_span(sessions)), end)
        stop = bisect_right(days, end)
        if stop == 0 or days[stop - 1] != end:
            raise DataError(f"{end.isoformat()} is not a session", kind=DataErrorKind.MISSING)
        window = days[max(0, stop - sessions) : stop]
        wanted = sorted(set(symbols))
        closes = np.full((len(window), len(wanted)), np.nan)
        if wanted:
            bars = self._bars(wanted, window[0], end, sessions=len(window))
            row = {d: i for i, d in enumerate(window)}
            for column, symbol in enumerate(wanted):
                for bar in bars.get(symbol, ()):
                    index = row.get(bar[0])
                    if index is not None:
                        closes[index, column] = bar[1]
            self._check(wanted, window, closes)
        return PriceHistory(
            dates=np.array(window, dtype="datetime64[D]"),
            symbols=tuple(wanted),
            closes=closes,
        )

    def _bars(
        self, symbols: list[str], start: date, end: date, *, sessions: int
    ) -> dict[str, list[tuple[date, float]]]:
        query = self._bars_query(symbols, start, end)
        # At most one bar per symbol and session: a reply that pages past that (or offers
        # the same page token again) would otherwise be followed until the run times out.
        pages = len(symbols) * sessions // BARS_PAGE + 2
        raw = self._transport.call(
            lambda: self._bar_pages(query, max_pages=pages), what="GET /v2/stocks/bars"
        )
        try:
            return {
                str(symbol): [self._bar(b) for b in as_list(rows, str(symbol))]
                for symbol, rows in as_mapping(raw, "bars").items()
            }
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(
                f"GET /v2/stocks/bars: malformed bars ({error})", kind=DataErrorKind.MALFORMED
            ) from error

    def _bars_query(self, symbols: list[str], start: date, end: date) -> dict[str, Any]:
        """alpaca-py's StockBarsRequest query: times in UTC, symbols comma-joined, bars
        adjusted for splits and dividends."""
        return {
            "start": _utc_text(datetime.combine(start, time(0), NEW_YORK)),
            "end": _utc_text(datetime.combine(end, time(23, 59), NEW_YORK)),
            "timeframe": "1Day",
            "adjustment": "all",
            "feed": self._feed,
            "symbols": ",".join(symbols),
        }

    def daily_bars(
        self, symbols: Sequence[str], start: date, end: date
    ) -> dict[str, list[DailyBar]]:
        """Every symbol's daily bars (open, high, low, close, volume, adjusted as the
        strategies' history is) from ``start`` to ``end``, New York dates inclusive, in
        one request (its pages followed); a symbol without bars is left out. Each bar is
        checked (see ``bars.daily_bar``): a bad one is a DataError, and nothing of the
        reply is returned."""
        wanted = sorted(set(symbols))
        if not wanted or start > end:
            return {}
        query = self._bars_query(wanted, start, end)
        # Sessions are at most the calendar days: the page cap as in ``_bars``.
        pages = len(wanted) * ((end - start).days + 1) // BARS_PAGE + 2
        raw = self._transport.call(
            lambda: self._bar_pages(query, max_pages=pages), what="GET /v2/stocks/bars"
        )
        try:
            entries = as_mapping(raw, "bars")
        except (TypeError, ValueError) as error:
            raise DataError(
                f"GET /v2/stocks/bars: malformed bars ({error})", kind=DataErrorKind.MALFORMED
            ) from error
        found = {
            symbol: symbol_bars(symbol, entries.get(symbol, []), start, end) for symbol in wanted
        }
        return {symbol: bars for symbol, bars in found.items() if bars}

    def completed_session(self) -> date:
        """The last session whose daily bar is final, by the broker's clock and
        calendar: today from ``FINAL_BAR_DELAY`` after the day's close (by the
        calendar; a day whose close the calendar does not give is never final), else
        the session before today (never a session still under way, nor one not yet
        opened)."""
        raw = self._transport.call(lambda: self._trading.get("/clock"), what="GET /v2/clock")
        try:
            clock = as_mapping(raw, "clock")
            now, next_open = utc(str(clock["timestamp"])), utc(str(clock["next_open"]))
            is_open = clock["is_open"]
            if now is None or next_open is None or not isinstance(is_open, bool):
                raise ValueError("timestamp, next_open or is_open missing")
        except (KeyError, TypeError, ValueError) as error:
            raise BrokerUnknown(
                f"GET /v2/clock: malformed response ({error})", broker_code="malformed"
            ) from error
        today = now.astimezone(NEW_YORK).date()
        closed_for_the_day = not is_open and next_open.astimezone(NEW_YORK).date() > today
        if closed_for_the_day and self.is_session(today) and self._final(today, now):
            return today
        return self.latest_session(before=today)

    def _final(self, session: date, now: datetime) -> bool:
        """Whether ``now`` is ``FINAL_BAR_DELAY`` past ``session``'s close (the
        calendar's ``close``, ``HH:MM`` New York time)."""
        text = self._closes.get(session, "").replace(":", "")
        if len(text) != 4 or not text.isdigit() or int(text[:2]) > 23 or int(text[2:]) > 59:
            return False
        closes = datetime.combine(session, time(int(text[:2]), int(text[2:])), NEW_YORK)
        return now >= closes + FINAL_BAR_DELAY

    def _bar_pages(self, query: Mapping[str, Any], *, max_pages: int) -> dict[str, Any]:
        """Every page of a bars request, merged per symbol, read as alpaca-py's
        ``get_stock_bars`` reads them: ``limit`` and ``page_token`` added to the query,
        pages followed until one has no ``next_page_token``. ValueError (a malformed
        reply) for a page that is not an object with exactly one known data key mapping
        symbols to lists, a page token that is not a non-empty string or comes back
        again, or more than ``max_pages`` pages. The whole read is one attempt of the
        retry policy, starting again from the first page."""
        merged: dict[str, list[Any]] = defaultdict(list)
        params = {**query, "limit": BARS_PAGE}
        page_token: str | None = None
        seen: set[str] = set()
        for _ in range(max_pages):
            params["page_token"] = page_token
            response = as_mapping(self._data.get(BARS, dict(params)), "bars page")
            entries = as_mapping(_data_entries(response), "bars")
            for key, value in entries.items():
                merged[str(key)].extend(as_list(value, str(key)))
            page_token = response.get("next_page_token", None)
            if page_token is None:
                return dict(merged)
            if not isinstance(page_token, str) or not page_token or page_token in seen:
                raise ValueError(
                    f"bars: next_page_token {str(page_token)[:40]!r} is not a new token"
                )
            seen.add(page_token)
        raise ValueError(f"bars: more than {max_pages} pages for the bars asked for")

    @staticmethod
    def _bar(raw: Any) -> tuple[date, float]:
        bar: Mapping[str, Any] = as_mapping(raw, "bar")
        stamp = utc(str(bar["t"]))
        if stamp is None:
            raise ValueError("a bar without a time")
        close = bar["c"]
        if isinstance(close, bool) or not isinstance(close, (int, float)):
            raise ValueError(f"close is not a number: {close!r}")
        return stamp.astimezone(NEW_YORK).date(), float(close)

    def _check(self, symbols: list[str], window: list[date], closes: np.ndarray[Any, Any]) -> None:
        last = window[-1]
        stale, gaps = [], []
        for column, symbol in enumerate(symbols):
            series = closes[:, column]
            present = ~np.isnan(series)
            if not present.any():
                continue  # no bars at all: the strategy decides whether it needs them
            values = series[present]
            if not bool(np.all(np.isfinite(values))):
                raise DataError(f"{symbol}: non-finite close", kind=DataErrorKind.NON_FINITE)
            if bool(np.any(values <= 0)):
                raise DataError(f"{symbol}: close <= 0", kind=DataErrorKind.NON_POSITIVE)
            if not present[-1]:
                seen = int(np.flatnonzero(present)[-1])
                stale.append(f"{symbol} (last bar {window[seen].isoformat()})")
                continue
            first = int(np.flatnonzero(present)[0])
            longest = _longest_gap(present[first:])
            if longest > self._max_gap:
                gaps.append(f"{symbol} ({longest} sessions)")
        if stale:
            raise DataError(
                f"no bar for {last.isoformat()}, the last session: {', '.join(stale[:10])}"
                + (f" and {len(stale) - 10} more" if len(stale) > 10 else ""),
                kind=DataErrorKind.STALE,
            )
        if gaps:
            raise DataError(
                f"bars missing for more than {self._max_gap} sessions in a row: "
                + ", ".join(gaps[:10]),
                kind=DataErrorKind.MISSING,
            )


def _quote(symbol: str, raw: object) -> Quote | None:
    """One symbol's quote, or None when it cannot price an order (no bid or no ask, a
    price that is zero, negative or not finite, a crossed book). ValueError when the
    quote is not shaped as documented."""
    quote: Mapping[str, Any] = as_mapping(raw, f"{symbol} quote")
    bid, ask = _quote_price(quote, "bp"), _quote_price(quote, "ap")
    if not (bid.is_finite() and ask.is_finite()) or bid <= 0 or ask <= 0 or bid > ask:
        return None
    stamp = quote.get("t")
    return Quote(symbol=symbol, bid=bid, ask=ask, at=utc(str(stamp)) if stamp else None)


def _quote_price(quote: Mapping[str, Any], key: str) -> Decimal:
    value = quote[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} is not a number: {value!r}")
    # repr: the shortest text of the float, as sent (Decimal(float) would carry its
    # binary expansion, 0.1 -> 0.1000000000000000055...).
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _trade(symbol: str, raw: object) -> tuple[float, datetime]:
    """One symbol's latest trade: its price and when. ValueError when the trade is not
    shaped as documented (the price checks are the caller's)."""
    trade: Mapping[str, Any] = as_mapping(raw, f"{symbol} trade")
    price = trade["p"]
    if isinstance(price, bool) or not isinstance(price, (int, float)):
        raise ValueError(f"{symbol}: p is not a number: {price!r}")
    text = trade["t"]
    if not isinstance(text, str):
        raise ValueError(f"{symbol}: t is not a time: {text!r}")
    stamp = utc(text)
    if stamp is None:
        raise ValueError(f"{symbol}: a trade without a time")
    return float(price), stamp


def _utc_text(instant: datetime) -> str:
    """An aware time in UTC, RFC 3339 (as alpaca-py's data requests send it)."""
    return instant.astimezone(UTC).isoformat()


def _data_entries(response: Any) -> Any:
    """The one data key's value of a Market Data API page (alpaca-py's check)."""
    selected = DATA_KEYS.intersection(response)
    if len(selected) < 1:
        raise ValueError("The data in response does not match any known keys.")
    if len(selected) > 1:
        raise ValueError("The data in response matches multiple known keys.")
    return response[next(iter(selected))]


def _named(symbols: Sequence[str]) -> str:
    extra = len(symbols) - NAMED_SYMBOLS
    return ", ".join(symbols[:NAMED_SYMBOLS]) + (f" and {extra} more" if extra > 0 else "")


def _longest_gap(present: np.ndarray[Any, Any]) -> int:
    longest = run = 0
    for seen in present.tolist():
        run = 0 if seen else run + 1
        longest = max(longest, run)
    return longest
