"""The composition root: settings in, concrete adapters out. The only place that
chooses implementations; read it to see the whole dependency graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from alchemiser.adapters.alpaca.policy import (
    DATA_URL,
    LIVE_TRADING_URL,
    PAPER_TRADING_URL,
    AlpacaConfig,
    mode_url_refusal,
)
from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.files.symphonies import builtin_symphony, read_symphony_file
from alchemiser.adapters.ledger import FileLedger, InMemoryLedger
from alchemiser.adapters.readonly import ReadOnlyBroker
from alchemiser.adapters.sim.broker import SimBroker
from alchemiser.config import AppConfig, FixedStrategyConfig, StrategyConfig
from alchemiser.domain.market import NEW_YORK, TradingWindow
from alchemiser.domain.report import Mode
from alchemiser.errors import ConfigError, LiveTradingRefused
from alchemiser.ports import Broker, Clock, Ledger, MarketClock, MarketData, Quotes
from alchemiser.service import AllocatedStrategy, Dependencies, RunRequest, make_run_id
from alchemiser.strategy.base import FixedStrategy, Strategy
from alchemiser.strategy.symphony.strategy import SymphonyStrategy

if TYPE_CHECKING:
    from alchemiser.adapters.alpaca.broker import AlpacaBroker
    from alchemiser.adapters.alpaca.market_data import AlpacaMarketData
    from alchemiser.adapters.alpaca.transport import Transport

LEDGER_FILE = "ledger.jsonl"


def prices_dir(config: AppConfig | None, prices: Path | None = None) -> Path | None:
    """The one rule for where local prices come from: ``prices`` (``--prices DIR``),
    else the config's ``[data] dir`` (already relative to the config file), else None:
    the bundled prices."""
    if prices is not None:
        return prices
    if config is not None:
        return config.data.dir
    return None


def market_data(config: AppConfig | None, prices: Path | None = None) -> FilePriceStore:
    """Local prices, found by ``prices_dir``'s rule."""
    directory = prices_dir(config, prices)
    return FilePriceStore(directory) if directory is not None else FilePriceStore.bundled()


def strategy(config: StrategyConfig) -> Strategy:
    """The strategy a config entry names: fixed weights, or a symphony read and parsed."""
    if isinstance(config, FixedStrategyConfig):
        return FixedStrategy(config.name, config.weights, config.rule, config.anchor)
    if config.builtin is not None:
        return SymphonyStrategy(config.name, builtin_symphony(config.builtin), config.anchor)
    assert config.file is not None  # guaranteed by SymphonyStrategyConfig
    return SymphonyStrategy(config.name, read_symphony_file(config.file), config.anchor)


def strategies(config: AppConfig) -> list[AllocatedStrategy]:
    return [AllocatedStrategy(strategy(s), s.allocation) for s in config.strategies]


def sim_state_path(config: AppConfig, state_dir: Path) -> Path:
    return state_dir / f"sim-{config.account}.json"


def scheduled_request(
    config: AppConfig,
    market: MarketData,
    scheduled_time: datetime,
    deadline: float | None = None,
    trigger_window: TradingWindow | None = None,
) -> RunRequest:
    """A scheduled run trades on the New York date of its trigger: at the open with the
    data of the session before it, at the close with today's latest prices too."""
    return _request_for(config, market, scheduled_time, scheduled_time, deadline, trigger_window)


def decision_session(config: AppConfig, market: MarketData, trading_date: date) -> date:
    """The session whose close the strategies decide on for a trade on ``trading_date``:
    the session before it at the open, the day itself at the close."""
    if config.trading_window is TradingWindow.CLOSE:
        return trading_date
    return market.latest_session(before=trading_date)


def _request_for(
    config: AppConfig,
    market: MarketData,
    trigger: datetime,
    scheduled_time: datetime | None,
    deadline: float | None,
    trigger_window: TradingWindow | None = None,
) -> RunRequest:
    """Trade on the New York date of ``trigger``, deciding as the account's window says."""
    trading_date = trigger.astimezone(NEW_YORK).date()
    return RunRequest(
        run_id=make_run_id(
            config.account,
            trading_date,
            trigger,
            exact=scheduled_time is None,
            dry_run=config.dry_run,
        ),
        as_of=decision_session(config, market, trading_date),
        trading_date=trading_date,
        scheduled_time=scheduled_time,
        mode=config.mode,
        deadline=deadline,
        account=config.account,
        window=config.trading_window,
        trigger_window=trigger_window,
        dry_run=config.dry_run,
    )


def manual_request(
    config: AppConfig, market: MarketData, now: datetime, trading_date: date | None = None
) -> RunRequest:
    """A run asked for by hand against the simulator, trading on ``trading_date`` (the
    latest session in the data when not given) as the account's window says: at the
    open, deciding on the session before; at the close, on the day itself."""
    session = trading_date or market.latest_session()
    in_data = market.is_session(session) and session <= market.latest_session()
    return RunRequest(
        run_id=make_run_id(config.account, session, now, exact=True, dry_run=config.dry_run),
        # A day the data does not trade cannot be simulated: deciding "on" it makes the
        # run fail for want of its prices, saying which day.
        as_of=decision_session(config, market, session) if in_data else session,
        trading_date=session,
        scheduled_time=None,
        mode=Mode.SIM,
        account=config.account,
        window=config.trading_window,
        dry_run=config.dry_run,
    )


def fill_session(config: AppConfig, market: MarketData, request: RunRequest) -> date:
    """The session whose prices the simulated broker fills at: the trading date, or,
    when the data does not reach it yet (a scheduled run on today's date), the session
    the strategies decided on."""
    if market.is_session(request.trading_date) and (
        request.trading_date <= market.latest_session()
    ):
        return request.trading_date
    return request.as_of


def build_run(
    config: AppConfig,
    market: MarketData,
    request: RunRequest,
    *,
    clock: Clock,
    state_dir: Path | None,
    ledger: Ledger | None = None,
) -> Dependencies:
    """The simulated run's adapters for ``request``: the broker fills at the trading
    date's open (window ``open``, when the data has opens) or close; when the data does
    not reach the trading date yet, at the close the strategies decided on, never at
    that session's open, a price from before the decision."""
    session = fill_session(config, market, request)
    return build(
        config,
        market=market,
        session=session,
        clock=clock,
        state_dir=state_dir,
        ledger=ledger,
        at_open=config.trading_window is TradingWindow.OPEN and session == request.trading_date,
    )


def build(
    config: AppConfig,
    *,
    market: MarketData,
    session: date,
    clock: Clock,
    state_dir: Path | None,
    ledger: Ledger | None = None,
    at_open: bool | None = None,
) -> Dependencies:
    """Wire the adapters for one run, the simulated broker filling at ``session``
    (``build_run`` chooses it and ``at_open`` for a request; ``at_open`` None: as the
    window says): at its open when the window is ``open`` and the
    data has opens, else at its close. ``state_dir`` None keeps everything in memory;
    ``ledger`` replaces the file ledger in ``state_dir``."""
    broker = SimBroker(
        market=market,
        session=session,
        fill_at_open=config.trading_window is TradingWindow.OPEN if at_open is None else at_open,
        clock=clock,
        starting_cash=config.sim.starting_cash,
        slippage_bps=config.sim.slippage_bps,
        fee_bps=config.sim.fee_bps,
        whole_share_symbols=config.sim.whole_share_symbols,
        state_path=None if state_dir is None else sim_state_path(config, state_dir),
    )
    return _dependencies(config, broker, market, clock, state_dir, None, ledger, quotes=broker)


def _dependencies(
    config: AppConfig,
    broker: Broker,
    market: MarketData,
    clock: Clock,
    state_dir: Path | None,
    market_clock: MarketClock | None,
    ledger: Ledger | None = None,
    *,
    quotes: Quotes | None,
) -> Dependencies:
    """The service's dependencies; without ``ledger``, a file in ``state_dir`` (or, with
    no ``state_dir``, memory). A dry run's broker refuses to submit or cancel."""
    if config.dry_run:
        broker = ReadOnlyBroker(broker)
    if ledger is None:
        ledger = InMemoryLedger() if state_dir is None else FileLedger(state_dir / LEDGER_FILE)
    return Dependencies(
        broker=broker,
        market_data=market,
        ledger=ledger,
        clock=clock,
        strategies=strategies(config),
        policy=config.rebalance,
        limits=config.risk,
        trading_state=config.trading_state,
        execution=config.execution,
        max_staleness_days=config.data.max_staleness_days,
        market_clock=market_clock,
        quotes=quotes,
    )


# -- Alpaca ------------------------------------------------------------------------


def check_live(config: AppConfig, endpoint: str, live_flag: bool) -> None:
    """Live trading needs the config's mode, the secret's endpoint and ``--live`` to all
    say live; paper needs all three to say paper. Anything else refuses, before any
    request reaches the broker."""
    mode = config.mode
    if mode is Mode.LIVE:
        if endpoint != "live":
            raise LiveTradingRefused(
                "the config's mode is 'live' but the secret's endpoint is "
                f"{endpoint!r}: refusing to trade",
                field="mode",
            )
        if not live_flag:
            raise LiveTradingRefused(
                "the config's mode is 'live': confirm with --live to trade real money",
                field="mode",
            )
        _check_urls(config)
        return
    if endpoint != "paper":
        raise LiveTradingRefused(
            f"the secret holds {endpoint!r} keys but the config's mode is {mode.value!r}: "
            "refusing to trade",
            field="mode",
        )
    if live_flag:
        raise LiveTradingRefused(
            f"--live given but the config's mode is {mode.value!r}: refusing", field="mode"
        )
    _check_urls(config)


def _check_urls(config: AppConfig) -> None:
    """The URL rule config validation applies, again: a config copied without
    validation (``model_copy``) meets it here, before any request."""
    data_url = config.alpaca.data_url if config.alpaca is not None else DATA_URL
    refusal = mode_url_refusal(config.mode is Mode.LIVE, config.trading_url, data_url)
    if refusal is not None:
        field, message = refusal
        raise LiveTradingRefused(message, field=field)


@dataclass
class AlpacaWiring:
    """What a real-broker run is made of; the transport counts requests and retries."""

    broker: AlpacaBroker
    market: AlpacaMarketData
    transport: Transport


def alpaca(
    config: AppConfig,
    *,
    clock: Clock,
    live: bool,
    deadline: float | None = None,
    force_fetch: bool = False,
) -> AlpacaWiring:
    """Read the secret, check that live/paper agree everywhere, build the adapters."""
    # Deferred: only an account that trades on Alpaca pays for alpaca-py's REST client
    # (requests, its pydantic models) and for boto3's Secrets Manager client.
    from alchemiser.adapters.aws.secrets import read_alpaca_credentials  # noqa: PLC0415

    settings = config.alpaca
    if settings is None:
        raise ConfigError("broker 'alpaca' needs an [alpaca] table", field="alpaca")
    credentials = read_alpaca_credentials(
        settings.secret_id, max_age=settings.secret_max_age_seconds, force_fetch=force_fetch
    )
    check_live(config, credentials.endpoint, live)
    from alchemiser.adapters.alpaca.broker import AlpacaBroker  # noqa: PLC0415
    from alchemiser.adapters.alpaca.clients import alpaca_clients  # noqa: PLC0415
    from alchemiser.adapters.alpaca.market_data import AlpacaMarketData  # noqa: PLC0415
    from alchemiser.adapters.alpaca.transport import Transport  # noqa: PLC0415

    transport = Transport(clock, settings.retry, deadline=deadline)
    trading, data = alpaca_clients(
        credentials.api_key_id.get_secret_value(),
        credentials.api_secret_key.get_secret_value(),
        trading_url=config.trading_url,
        data_url=settings.data_url,
    )
    broker = AlpacaBroker(trading, transport, account_number=settings.account_number)
    market = AlpacaMarketData(
        trading,
        data,
        transport,
        feed=settings.feed,
        max_sessions=settings.history_sessions,
        max_gap_sessions=settings.max_gap_sessions,
        max_price_age_seconds=settings.max_latest_price_age_seconds,
    )
    return AlpacaWiring(broker=broker, market=market, transport=transport)


def alpaca_request(
    config: AppConfig,
    market: MarketData,
    market_clock: MarketClock,
    scheduled_time: datetime | None,
    deadline: float | None,
    trigger_window: TradingWindow | None = None,
) -> RunRequest:
    """A real-broker run trades on the broker's today (or the trigger's day, which the
    service checks against the broker's clock), deciding as the account's window says."""
    if scheduled_time is not None:
        return scheduled_request(config, market, scheduled_time, deadline, trigger_window)
    now = market_clock.market_status().at
    return _request_for(config, market, now, None, deadline)


def build_alpaca(
    config: AppConfig,
    wiring: AlpacaWiring,
    *,
    clock: Clock,
    state_dir: Path | None,
    ledger: Ledger | None = None,
) -> Dependencies:
    return _dependencies(
        config,
        wiring.broker,
        wiring.market,
        clock,
        state_dir,
        wiring.broker,
        ledger,
        quotes=wiring.market,
    )


@dataclass
class MarketDataWiring:
    """Market data alone (no broker): what ``alchemiser data fetch`` reads bars with."""

    market: AlpacaMarketData
    transport: Transport


def alpaca_market_data(settings: AlpacaConfig, clock: Clock) -> MarketDataWiring:
    """The secret's keys (paper or live: both may read market data), sent only where
    the config's URL rules allow keys of that endpoint: live keys to Alpaca's own
    hosts, paper keys there or to a loopback host. The trading URL (the clock and the
    calendar) is the settings', else Alpaca's for the secret's endpoint."""
    from alchemiser.adapters.aws.secrets import read_alpaca_credentials  # noqa: PLC0415

    credentials = read_alpaca_credentials(
        settings.secret_id, max_age=settings.secret_max_age_seconds
    )
    live = credentials.endpoint == "live"
    trading_url = settings.trading_url or (LIVE_TRADING_URL if live else PAPER_TRADING_URL)
    refusal = mode_url_refusal(live, trading_url, settings.data_url)
    if refusal is not None:
        field, message = refusal
        raise ConfigError(f"the secret holds {credentials.endpoint} keys: {message}", field=field)
    from alchemiser.adapters.alpaca.clients import alpaca_clients  # noqa: PLC0415
    from alchemiser.adapters.alpaca.market_data import AlpacaMarketData  # noqa: PLC0415
    from alchemiser.adapters.alpaca.transport import Transport  # noqa: PLC0415

    transport = Transport(clock, settings.retry)
    trading, data = alpaca_clients(
        credentials.api_key_id.get_secret_value(),
        credentials.api_secret_key.get_secret_value(),
        trading_url=trading_url,
        data_url=settings.data_url,
    )
    market = AlpacaMarketData(trading, data, transport, feed=settings.feed)
    return MarketDataWiring(market=market, transport=transport)
