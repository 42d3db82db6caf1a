"""Ledgers that keep every record of every attempt of a run, appended in the order
recorded: a local JSON-lines file, and one in memory."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from alchemiser.domain.report import RunReport


class FileLedger:
    """Appends one JSON line per record (an attempt's STARTED record, then its final one);
    each write is flushed and synced before returning."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def record(self, report: RunReport) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with self._path.open("a", encoding="utf-8") as stream:
            stream.write(report.model_dump_json() + "\n")
            stream.flush()
            os.fsync(stream.fileno())

    def reports(self) -> list[RunReport]:
        if not self._path.exists():
            return []
        lines = self._path.read_text(encoding="utf-8").splitlines()
        return [RunReport.model_validate_json(line) for line in lines if line.strip()]

    def finished(self, run_id: str) -> RunReport | None:
        return latest_finished(self.reports(), run_id)


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
