"""What a cold start imports: the Alpaca path never pandas (nor alpaca-py's trading or
data packages). Each check runs in a fresh interpreter, since this process has
imported everything already."""

from __future__ import annotations

import json
import os
import subprocess
import sys

LAMBDA_ENV = ("AWS_LAMBDA_", "LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE", "AWS_SAM_LOCAL", "_X_AMZN")


def fresh(code: str, **env: str) -> dict[str, object]:
    """Run ``code`` in a new interpreter outside Lambda (plus ``env``); it prints one
    JSON object, returned."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(LAMBDA_ENV)}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


LOADED = """
import json, sys
print(json.dumps({{name: name in sys.modules for name in {names!r}}}))
"""

ALPACA_WIRING = """
from alchemiser import bootstrap
from alchemiser.adapters.aws import secrets
from alchemiser.adapters.clock import SystemClock
from alchemiser.config import parse_config
import alchemiser.handlers.worker
import alchemiser.adapters.alpaca.broker, alchemiser.adapters.alpaca.market_data

secrets.read_alpaca_credentials = lambda *a, **k: secrets.AlpacaCredentials(
    api_key_id="key", api_secret_key="secret", endpoint="paper"
)
config = parse_config(
    {
        "broker": "alpaca",
        "mode": "paper",
        "alpaca": {"secret_id": "alchemiser/test"},
        "strategies": [{"name": "s", "allocation": 1.0, "weights": {"SPY": 0.5}}],
    },
    "cold-start",
)
wiring = bootstrap.alpaca(config, clock=SystemClock(), live=False)
assert wiring.broker is not None and wiring.market is not None
"""


def test_the_alpaca_wiring_and_adapters_never_import_pandas() -> None:
    names = ["pandas", "alpaca.trading", "alpaca.data", "alpaca.common.rest"]
    loaded = fresh(ALPACA_WIRING + LOADED.format(names=names))
    assert loaded == {
        "pandas": False,
        "alpaca.trading": False,
        "alpaca.data": False,
        "alpaca.common.rest": True,
    }
