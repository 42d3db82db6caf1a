"""The local ledger keeps every report, and reports survive a JSON round trip."""

from __future__ import annotations

from pathlib import Path

from alchemiser.adapters.ledger import FileLedger
from alchemiser.service import rebalance
from tests.conftest import run_request


def test_reports_round_trip_through_the_file_ledger(make_deps, tmp_path: Path) -> None:
    deps = make_deps()
    first = rebalance(run_request("r1"), deps)
    second = rebalance(run_request("r2"), deps)
    ledger = FileLedger(tmp_path / "runs" / "ledger.jsonl")
    assert ledger.reports() == []
    ledger.record(first)
    ledger.record(second)
    assert ledger.reports() == [first, second]
    assert ledger.reports()[0].model_dump_json() == first.model_dump_json()
