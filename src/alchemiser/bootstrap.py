"""The composition root: settings in, concrete adapters out. The only place that
chooses implementations; read it to see the whole dependency graph.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.files.symphonies import builtin_symphony, read_symphony_file
from alchemiser.adapters.ledger import FileLedger, InMemoryLedger
from alchemiser.adapters.sim.broker import SimBroker
from alchemiser.config import AppConfig, FixedStrategyConfig, StrategyConfig
from alchemiser.domain.report import Mode
from alchemiser.ports import Clock, Ledger, MarketData
from alchemiser.service import AllocatedStrategy, Dependencies, RunRequest, make_run_id
from alchemiser.strategy.base import FixedStrategy, Strategy
from alchemiser.strategy.symphony.strategy import SymphonyStrategy

NEW_YORK = ZoneInfo("America/New_York")
LEDGER_FILE = "ledger.jsonl"


def market_data(config: AppConfig) -> MarketData:
    if config.data.source == "directory" and config.data.path is not None:
        return FilePriceStore(config.data.path)
    return FilePriceStore.bundled()


def strategy(config: StrategyConfig) -> Strategy:
    """The strategy a config entry names: fixed weights, or a symphony read and parsed."""
    if isinstance(config, FixedStrategyConfig):
        return FixedStrategy(config.name, config.weights)
    if config.builtin is not None:
        return SymphonyStrategy(config.name, builtin_symphony(config.builtin))
    assert config.file is not None  # guaranteed by SymphonyStrategyConfig
    return SymphonyStrategy(config.name, read_symphony_file(config.file))


def strategies(config: AppConfig) -> list[AllocatedStrategy]:
    return [AllocatedStrategy(strategy(s), s.allocation) for s in config.strategies]


def sim_state_path(config: AppConfig, state_dir: Path) -> Path:
    return state_dir / f"sim-{config.account}.json"


def scheduled_request(
    config: AppConfig,
    market: MarketData,
    scheduled_time: datetime,
    time_budget_seconds: float | None = None,
) -> RunRequest:
    """A scheduled run trades on the New York date of its trigger, with the data of the
    session before it."""
    trading_date = scheduled_time.astimezone(NEW_YORK).date()
    return RunRequest(
        run_id=make_run_id(config.account, trading_date, scheduled_time),
        as_of=market.latest_session(before=trading_date),
        trading_date=trading_date,
        scheduled_time=scheduled_time,
        mode=config.mode,
        time_budget_seconds=time_budget_seconds,
    )


def manual_request(
    config: AppConfig, market: MarketData, now: datetime, as_of: date | None = None
) -> RunRequest:
    """A run asked for by hand against the simulator: trade at the close of ``as_of``
    (the latest session when not given)."""
    session = as_of or market.latest_session()
    return RunRequest(
        run_id=make_run_id(config.account, session, now),
        as_of=session,
        trading_date=session,
        scheduled_time=None,
        mode=Mode.SIM,
    )


def build(
    config: AppConfig,
    *,
    market: MarketData,
    as_of: date,
    clock: Clock,
    state_dir: Path | None,
) -> Dependencies:
    """Wire the adapters for one run. ``state_dir`` None keeps everything in memory."""
    ledger: Ledger = InMemoryLedger() if state_dir is None else FileLedger(state_dir / LEDGER_FILE)
    broker = SimBroker(
        market=market,
        session=as_of,
        clock=clock,
        starting_cash=config.sim.starting_cash,
        slippage_bps=config.sim.slippage_bps,
        fee_bps=config.sim.fee_bps,
        whole_share_symbols=config.sim.whole_share_symbols,
        state_path=None if state_dir is None else sim_state_path(config, state_dir),
    )
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
    )
