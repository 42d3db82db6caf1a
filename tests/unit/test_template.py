"""template.yaml: lint-clean, scheduled at the New York open, and runnable as declared."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from importlib import import_module
from pathlib import Path

import pytest

from alchemiser.handlers.local import function_spec, load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def template() -> dict[str, object]:
    return load_template(TEMPLATE)


def _function(template: dict[str, object]) -> dict[str, object]:
    return template["Resources"]["RebalanceFunction"]["Properties"]  # type: ignore[index]


def test_cfn_lint_is_clean() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(TEMPLATE)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_schedule_is_market_open_new_york_weekdays(template: dict[str, object]) -> None:
    schedule = _function(template)["Events"]["MarketOpen"]  # type: ignore[index]
    assert schedule["Type"] == "ScheduleV2"
    properties = schedule["Properties"]
    assert properties["ScheduleExpression"] == "cron(30 9 ? * MON-FRI *)"
    assert properties["ScheduleExpressionTimezone"] == "America/New_York"
    payload = json.loads(properties["Input"])
    assert payload["scheduled_time"] == "<aws.scheduler.scheduled-time>"
    assert properties["RetryPolicy"]["MaximumRetryAttempts"] >= 1


def test_runtime_and_handler(template: dict[str, object]) -> None:
    spec = function_spec(template, "RebalanceFunction")
    assert template["Globals"]["Function"]["Runtime"] == "python3.12"  # type: ignore[index]
    module, _, name = spec.handler.rpartition(".")
    assert callable(getattr(import_module(module), name))
    assert (ROOT / spec.code_uri / "requirements.txt").exists()
    assert _function(template)["ReservedConcurrentExecutions"] == 1
    assert spec.environment["POWERTOOLS_METRICS_NAMESPACE"] == "Alchemiser"
    assert spec.environment["ALCHEMISER_CONFIG"] == ""


def test_shipped_events_are_scheduler_payloads() -> None:
    for path in sorted((ROOT / "events").glob("*.json")):
        payload = json.loads(path.read_text())
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", payload["scheduled_time"]), path
        assert payload["schedule_arn"].startswith("arn:aws:scheduler:")


def test_lambda_requirements_match_the_project() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {re.split(r"[\[<>=!~ ]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    pinned = {
        line.split("==")[0].split("[")[0].lower()
        for line in (ROOT / "src" / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert wanted <= pinned, f"run `make requirements`: missing {sorted(wanted - pinned)}"


def test_samconfig_exists_and_names_the_stack() -> None:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert config["default"]["global"]["parameters"]["stack_name"] == "alchemiser"
