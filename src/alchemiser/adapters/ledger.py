"""Ledgers that keep every record of every attempt of a run, appended in the order
recorded: a local JSON-lines file, and one in memory.

The file ledger (``<state dir>/ledger.jsonl``, what a local ``alchemiser run`` writes)
is also read back as the DynamoDB ledger is (``attempts``, ``last_runs``,
``runs_for_strategy``, ``superseded``): an attempt is the last record of its
``(run_id, attempt_id)``, and attempts sort by trading date, then attempt id (its start;
an empty one, a legacy attempt, first), then the order they were first recorded in. A
line that is not a run report is a ``LEDGER_MALFORMED`` error naming the file and line:
nothing reads past it (a run that cannot tell which attempts finished must not trade).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from alchemiser.domain.report import RunReport, failure_reason
from alchemiser.errors import AlchemiserError

if TYPE_CHECKING:
    from alchemiser.adapters.aws.ledger import StrategyRun

UNAVAILABLE = "LEDGER_UNAVAILABLE"
MALFORMED = "LEDGER_MALFORMED"
_PROBLEM_CHARS = 160


class FileLedger:
    """Appends one JSON line per record (an attempt's STARTED record, then its final one);
    each write is flushed and synced before returning."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._read: tuple[tuple[int, ...], list[RunReport]] | None = None

    @property
    def path(self) -> Path:
        return self._path

    def record(self, report: RunReport) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._path.open("a", encoding="utf-8") as stream:
            stream.write(report.model_dump_json() + "\n")
            stream.flush()
            os.fsync(stream.fileno())

    def reports(self) -> list[RunReport]:
        """Every record, in the order written; a missing file is an empty ledger. The
        parsed file is kept while its size, times and inode stay as they were when it
        was read (``report`` asks about each unfinished row)."""
        try:
            found = self._path.stat()
            stamp = (found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino)
            if self._read is not None and self._read[0] == stamp:
                return list(self._read[1])
            text = self._path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as error:
            raise AlchemiserError(
                f"ledger {self._path} cannot be read: {type(error).__name__}: {error}",
                code=UNAVAILABLE,
            ) from None
        parsed = [
            self._parse(number, line)
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()
        ]
        self._read = (stamp, parsed)
        return list(parsed)

    def _parse(self, number: int, line: str) -> RunReport:
        try:
            return RunReport.model_validate_json(line)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            problem = (f"{where}: {first['msg']}" if where else first["msg"])[:_PROBLEM_CHARS]
            raise AlchemiserError(
                f"ledger {self._path} line {number} is not a run report ({problem}); "
                "move the line out of the file or restore the file from a copy",
                code=MALFORMED,
            ) from None

    def finished(self, run_id: str) -> RunReport | None:
        return latest_finished(self.reports(), run_id)

    # -- reading, as the DynamoDB ledger reads --

    def attempts(self, run_id: str) -> list[RunReport]:
        """Every attempt of ``run_id`` (each its last record), oldest first."""
        return [r for r in self._attempts() if r.run_id == run_id]

    def superseded(self, run_id: str, attempt_id: str) -> bool:
        """Whether an attempt of ``run_id`` later than ``attempt_id`` is recorded."""
        return any(r.attempt_id > attempt_id for r in self.attempts(run_id))

    def last_runs(self, account: str, n: int) -> list[RunReport]:
        """The latest ``n`` attempts of ``account``'s runs, newest first."""
        mine = [r for r in self._attempts() if r.account == account]
        return mine[::-1][:n]

    def runs_for_strategy(self, name: str, n: int) -> list[StrategyRun]:
        """The latest ``n`` attempts of strategy ``name`` (in any account), newest first."""
        found: list[StrategyRun] = []
        for report in reversed(self._attempts()):
            for strategy in report.strategies:
                if strategy.name == name and len(found) < n:
                    found.append(strategy_run(report, name))
        return found

    def _attempts(self) -> list[RunReport]:
        """Every attempt once (its last record), oldest first."""
        latest: dict[tuple[str, str], RunReport] = {}
        first_seen: dict[tuple[str, str], int] = {}
        for index, report in enumerate(self.reports()):
            key = (report.run_id, report.attempt_id)
            latest[key] = report
            first_seen.setdefault(key, index)
        return sorted(
            latest.values(),
            key=lambda r: (r.trading_date, r.attempt_id, first_seen[(r.run_id, r.attempt_id)]),
        )


def attempt_started(report: RunReport) -> datetime:
    """When an attempt began: its id's UTC instant (a legacy attempt without one: the
    start of its trading date, UTC)."""
    stamp = report.attempt_id.partition("-")[0]
    try:
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S%fZ").replace(tzinfo=UTC)
    except ValueError:
        return datetime(*report.trading_date.timetuple()[:3], tzinfo=UTC)


def strategy_run(report: RunReport, name: str) -> StrategyRun:
    """Strategy ``name``'s part in ``report``'s attempt, counted as the DynamoDB ledger
    counts it: orders, fills and turnover on the strategy's symbols; ``recorded_at`` is
    the attempt's start (the file keeps no write time)."""
    # Lazy: a run writes this ledger and never reads strategy rows.
    from alchemiser.adapters.aws.ledger import StrategyRun  # noqa: PLC0415

    strategy = next(s for s in report.strategies if s.name == name)
    symbols = set(strategy.weights)
    fills = [f for f in report.fills if f.symbol in symbols]
    return StrategyRun(
        run_id=report.run_id,
        attempt_id=report.attempt_id,
        account=report.account,
        trading_date=report.trading_date,
        recorded_at=attempt_started(report),
        status=report.status,
        mode=report.mode,
        allocation=strategy.allocation,
        weights=dict(strategy.weights),
        orders=len([o for o in report.orders if o.symbol in symbols]),
        fills=len(fills),
        turnover=sum((f.notional for f in fills), Decimal(0)),
        failure_reason=None if report.status.succeeded else failure_reason(report),
    )


class InMemoryLedger:
    def __init__(self) -> None:
        self.reports: list[RunReport] = []

    def record(self, report: RunReport) -> None:
        self.reports.append(report)

    def finished(self, run_id: str) -> RunReport | None:
        return latest_finished(self.reports, run_id)


def latest_finished(reports: Iterable[RunReport], run_id: str) -> RunReport | None:
    """The latest finished attempt of ``run_id``: the greatest attempt id (its start; an
    empty one, a legacy attempt, comes first), of that attempt the last record."""
    found: RunReport | None = None
    for report in reports:
        if report.run_id != run_id or not report.status.finished:
            continue
        # ">=": a later record of the same attempt replaces its earlier one.
        if found is None or report.attempt_id >= found.attempt_id:
            found = report
    return found
