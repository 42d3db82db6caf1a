"""Shared fixtures: small price directories, a manual clock, in-memory dependencies."""

from __future__ import annotations

import gzip
import logging
import traceback
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser import bootstrap
from alchemiser.adapters.clock import ManualClock
from alchemiser.adapters.files.prices import FilePriceStore
from alchemiser.adapters.ledger import InMemoryLedger
from alchemiser.adapters.sim.broker import SimBroker
from alchemiser.config import AppConfig
from alchemiser.domain.decisions import TradingState
from alchemiser.domain.report import Mode, RunReport
from alchemiser.execution.procedure import ExecutionPolicy
from alchemiser.portfolio.diff import DiffPolicy
from alchemiser.portfolio.risk import RiskLimits
from alchemiser.ports import Broker, MarketData
from alchemiser.service import AllocatedStrategy, Dependencies, RunRequest, rebalance
from alchemiser.strategy.base import FixedStrategy

SESSIONS = ["2026-07-27", "2026-07-28", "2026-07-29", "2026-07-30", "2026-07-31"]
LAST = date(2026, 7, 31)


def write_prices(
    directory: Path, closes: Mapping[str, Mapping[str, float]], gz: bool = True
) -> Path:
    """Write ``{symbol: {date: close}}`` as per-ticker files in the product's format."""
    directory.mkdir(parents=True, exist_ok=True)
    for symbol, rows in closes.items():
        text = "date,close\n" + "".join(f"{d},{c}\n" for d, c in sorted(rows.items()))
        if gz:
            (directory / f"{symbol}.csv.gz").write_bytes(gzip.compress(text.encode()))
        else:
            (directory / f"{symbol}.csv").write_text(text)
    return directory


@pytest.fixture
def price_dir(tmp_path: Path) -> Path:
    """SPY, TLT, GLD over five sessions; AAA misses the last one (stale)."""
    base = {"SPY": 500.0, "TLT": 90.0, "GLD": 200.0, "AAA": 10.0}
    closes = {
        symbol: {d: price * (1 + 0.01 * i) for i, d in enumerate(SESSIONS)}
        for symbol, price in base.items()
    }
    del closes["AAA"][SESSIONS[-1]]
    return write_prices(tmp_path / "prices", closes)


@pytest.fixture
def store(price_dir: Path) -> FilePriceStore:
    return FilePriceStore(price_dir)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 7, 31, 20, 0, tzinfo=UTC))


@pytest.fixture
def make_deps(store: FilePriceStore, clock: ManualClock) -> Callable[..., Dependencies]:
    def build(
        weights: Mapping[str, float] | None = None,
        *,
        broker: Broker | None = None,
        cash: Decimal = Decimal(100_000),
        state: TradingState = TradingState.ACTIVE,
        limits: RiskLimits | None = None,
        policy: DiffPolicy | None = None,
    ) -> Dependencies:
        strategy = FixedStrategy(
            "fixed", weights if weights is not None else {"SPY": 0.6, "TLT": 0.4}
        )
        return Dependencies(
            broker=broker or SimBroker(market=store, session=LAST, clock=clock, starting_cash=cash),
            market_data=store,
            ledger=InMemoryLedger(),
            clock=clock,
            strategies=[AllocatedStrategy(strategy, 1.0)],
            policy=policy or DiffPolicy(),
            limits=limits
            or RiskLimits(max_order_notional=Decimal(10**9), max_position_weight=Decimal(1)),
            trading_state=state,
            execution=ExecutionPolicy(),
            max_staleness_days=5,
        )

    return build


def run_request(
    run_id: str = "20260731-test", as_of: date = LAST, trading_date: date = LAST
) -> RunRequest:
    return RunRequest(
        run_id=run_id, as_of=as_of, trading_date=trading_date, scheduled_time=None, mode=Mode.SIM
    )


def simulated_run(config: AppConfig, market: MarketData, day: date) -> RunReport:
    """A run asked for by hand on ``day``, built as the CLI builds it."""
    clock = ManualClock(datetime(2026, 8, 1, tzinfo=UTC))
    request = bootstrap.manual_request(config, market, clock.now(), day)
    deps = bootstrap.build_run(config, market, request, clock=clock, state_dir=None)
    return rebalance(request, deps)


# -- every log record of the session (checked by tests/test_no_secret_in_logs.py) ---------

_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


class SessionLogCapture(logging.Handler):
    """Keeps the text of every log record it sees: the message, the extra fields (the
    Powertools logger puts reports there) and any traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is still captured
            message = f"{record.msg!r} % {record.args!r}"
        parts = [record.name, message]
        extra = {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES}
        if extra:
            parts.append(repr(extra))
        if record.exc_info and record.exc_info[1] is not None:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
        if record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(record.stack_info)
        self.texts.append("\n".join(parts))


SESSION_LOGS = SessionLogCapture()
CAPTURED_LOGGERS = ("", "alchemiser")
"""The root logger, and the Powertools logger (service "alchemiser"), which does not
propagate: it writes JSON to stdout through its own handler."""
LAST_MODULE = "test_no_secret_in_logs.py"


@pytest.fixture(scope="session", autouse=True)
def session_log_capture() -> Iterator[SessionLogCapture]:
    """Every log record emitted while the session's tests run."""
    loggers = [logging.getLogger(name) for name in CAPTURED_LOGGERS]
    for each in loggers:
        each.addHandler(SESSION_LOGS)
    try:
        yield SESSION_LOGS
    finally:
        for each in loggers:
            each.removeHandler(SESSION_LOGS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The secret check runs last, so it sees the logs of the whole session."""
    last = [item for item in items if item.path.name == LAST_MODULE]
    if last:
        items[:] = [item for item in items if item.path.name != LAST_MODULE] + last


@pytest.fixture(scope="session")
def host_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``make build-host`` once per test session: the layer (``layer/python``) and the
    functions (``functions/<LogicalId>/``) for this interpreter and platform (slow: the
    locked wheels from uv's cache, or the registry)."""
    from alchemiser.devstack import artifact  # noqa: PLC0415 - only the slow tests build

    root = Path(__file__).resolve().parents[1]
    uv = root / ".tools" / "bin" / "uv"
    if not uv.exists():
        pytest.skip("the pinned uv is not installed")
    return artifact.build_host(root, uv, tmp_path_factory.mktemp("host-build") / "out")
