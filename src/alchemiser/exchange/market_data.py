"""The local exchange's Market Data API answers: daily bars, latest quotes and trades.

Bars are served only for sessions strictly before the current session (its bar is not
complete), less ``stale_bars_sessions``, never at a price a test set; with
``partial_bars``, the current session's bar too once the market has opened, as Alpaca
serves a bar still under way. A bar opens at the price files' open where they have
one (its high and low then span the open and the close), else o=h=l=c. Quotes straddle
the current price by ``quote_half_spread_bps``; latest trades are at the current price,
stamped ``stale_trades_seconds`` before now.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR

from alchemiser.exchange.params import Query, one, page_token
from alchemiser.exchange.prices import Pricing
from alchemiser.exchange.sessions import NEW_YORK, Clock, MarketCalendar, parse_instant
from alchemiser.exchange.settings import ExchangeSettings
from alchemiser.exchange.shapes import (
    BPS,
    CENT,
    JSON,
    PRICE_STEP,
    bad_data_request,
    bar_json,
    quote_json,
    trade_json,
    utc_text,
)


class MarketData:
    """Bars, quotes and trades. Not locked itself: the engine calls it under its lock."""

    def __init__(
        self,
        pricing: Pricing,
        calendar: MarketCalendar,
        clock: Clock,
        settings: Callable[[], ExchangeSettings],
    ) -> None:
        self._pricing = pricing
        self._calendar = calendar
        self._clock = clock
        self._settings = settings
        self._bar_times: dict[date, str] = {}
        self._trade_ids = 0
        """The last latest-trade id handed out."""

    def _bar_time(self, day: date) -> str:
        text = self._bar_times.get(day)
        if text is None:
            midnight = datetime.combine(day, time(0), tzinfo=NEW_YORK)
            text = midnight.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self._bar_times[day] = text
        return text

    def _visible_last_session(self) -> date | None:
        """The last session whose bar is served: before today, less the stale ones
        (today, still under way, with ``partial_bars`` once the market has opened)."""
        settings, today = self._settings(), self._clock.today()
        if (
            settings.partial_bars
            and self._calendar.is_session(today)
            and self._clock.now() >= self._calendar.hours(today)[0]
        ):
            return today
        before = self._calendar.data_sessions_before(today)
        hidden = self._settings().stale_bars_sessions
        if len(before) <= hidden:
            return None
        return before[len(before) - 1 - hidden]

    def bars(
        self,
        query: Query,
        symbols: list[str],
        limit: int,
        sort: str,
        after: tuple[str, date] | None,
    ) -> JSON:
        """GET /v2/stocks/bars, its parameters read (``params.bars_params``)."""
        now = self._clock.now()
        bounds: list[datetime] = []
        for name, default in (
            ("start", datetime.combine(self._clock.today(), time(0), tzinfo=NEW_YORK)),
            ("end", now),
        ):
            text = one(query, name)
            try:
                bounds.append(parse_instant(text) if text else default)
            except ValueError as error:
                raise bad_data_request(f"invalid {name}: {text!r}") from error
        start, end = bounds
        first = start.astimezone(NEW_YORK).date()
        if datetime.combine(first, time(0), tzinfo=NEW_YORK) < start:
            first += timedelta(days=1)
        last = end.astimezone(NEW_YORK).date()
        visible = self._visible_last_session()
        if visible is None:
            return {"bars": {}, "next_page_token": None}
        last = min(last, visible)
        page_size = min(limit, self._settings().max_bars_per_page)
        bars: dict[str, list[JSON]] = {}
        count = 0
        next_token: str | None = None
        for symbol in symbols:
            if after is not None and symbol < after[0]:
                continue
            dates, closes, opens = self._pricing.book.series(symbol, first, last)
            rows = range(len(dates) - 1, -1, -1) if sort == "desc" else range(len(dates))
            for row in rows:
                day = dates[row]
                if (
                    after is not None
                    and symbol == after[0]
                    and (day <= after[1] if sort == "asc" else day >= after[1])
                ):
                    continue
                if count == page_size:
                    last_symbol = next(reversed(bars))
                    next_token = page_token(last_symbol, _last_day(bars[last_symbol]))
                    break
                bar = bar_json(self._bar_time(day), closes[row], opens[row])
                bars.setdefault(symbol, []).append(bar)
                count += 1
            if next_token is not None:
                break
        return {"bars": bars, "next_page_token": next_token}

    def latest_quotes(self, symbols: list[str]) -> JSON:
        stamp = utc_text(self._clock.now())
        half = self._settings().quote_half_spread_bps / BPS
        quotes: dict[str, JSON] = {}
        for symbol in symbols:
            # Stock quotes only: a crypto or option price given by a test is not one.
            reference = (
                self._pricing.reference_price(symbol) if symbol in self._pricing.book else None
            )
            if reference is None:
                continue
            step = CENT if reference >= 1 else PRICE_STEP
            ask = (reference * (1 + half)).quantize(step, ROUND_CEILING)
            bid = (reference * (1 - half)).quantize(step, ROUND_FLOOR)
            quotes[symbol] = quote_json(stamp, ask, bid)
        return {"quotes": quotes}

    def latest_trades(self, symbols: list[str]) -> JSON:
        """Each symbol's latest trade: at its current price (as quotes are), stamped
        ``stale_trades_seconds`` before now; a symbol without a price is left out."""
        at = self._clock.now() - timedelta(seconds=self._settings().stale_trades_seconds)
        stamp = utc_text(at)
        trades: dict[str, JSON] = {}
        for symbol in symbols:
            # Stock trades only, as for quotes.
            price = self._pricing.reference_price(symbol) if symbol in self._pricing.book else None
            if price is None:
                continue
            self._trade_ids += 1
            trades[symbol] = trade_json(stamp, price, self._trade_ids)
        return {"trades": trades}


def _last_day(bars: list[JSON]) -> date:
    stamp = parse_instant(bars[-1]["t"])
    return stamp.astimezone(NEW_YORK).date()
