"""The real ``alchemiser run`` against Alpaca's API, offline: a moto server holds the
secret, the local exchange plays Alpaca, and the CLI runs in a fresh process each time
(Powertools caches secrets in-process, so every run starts cold).

Every run in this module is checked for the secret's values in its stdout and stderr,
and every ledger it writes is checked too.
"""

from __future__ import annotations

import json
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from alchemiser.adapters.alpaca.policy import DATA_URL, LIVE_TRADING_URL
from alchemiser.exchange import LocalExchange
from alchemiser.exchange.engine import NEW_YORK
from tests.integration.alpaca_fixtures import (
    DEFAULT_WEIGHTS,
    FAKE_KEY_ID,
    FAKE_SECRET_KEY,
    SCHEDULED,
    assert_no_secrets,
    assert_state_clean,
    cli_env,
    create_secret,
    run_cli,
    secret_document,
    unique_secret_name,
    write_config,
)

pytestmark = pytest.mark.integration

ORDERS = "/v2/orders"
CASH_BUFFER = 0.01


class Runner:
    """Runs the CLI with one config and state dir; checks every run for leaked secrets."""

    def __init__(self, tmp_path: Path, moto: str, config: Path, **env: str) -> None:
        self.tmp_path = tmp_path
        self.config = config
        self.state_dir = tmp_path / "state"
        self.env = cli_env(moto, **env)

    def __call__(self, *extra: str) -> subprocess.CompletedProcess[str]:
        args = ["run", "--config", str(self.config), "--state-dir", str(self.state_dir), *extra]
        result = run_cli(args, self.env, cwd=self.tmp_path)
        assert_no_secrets(result.stdout, result.stderr)
        assert_state_clean(self.state_dir)
        return result

    def report(self, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        result = self("--json", *extra)
        assert result.stdout.lstrip().startswith("{"), result.stderr
        return result, json.loads(result.stdout)


def paper_runner(
    tmp_path: Path, moto_server: str, exchange: LocalExchange, **config: Any
) -> Runner:
    secret = create_secret(moto_server, unique_secret_name(), secret_document("paper"))
    path = write_config(tmp_path, exchange.url, secret_id=secret, **config)
    return Runner(tmp_path, moto_server, path)


def weights_at_exchange(exchange: LocalExchange) -> dict[str, float]:
    """Each position's share of the account's equity, as the exchange values them."""
    equity = Decimal(exchange.engine.account_json()["equity"])
    return {
        p["symbol"]: float(Decimal(p["market_value"]) / equity)
        for p in exchange.engine.positions_json()
    }


# -- 1. a paper run, end to end --------------------------------------------------------


def test_paper_run_end_to_end_then_noop(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    run = paper_runner(tmp_path, moto_server, exchange)

    first, report = run.report("--scheduled-time", SCHEDULED)

    assert first.returncode == 0, first.stderr
    assert report["status"] == "completed"
    assert report["mode"] == "paper"
    # What the exchange accepted is exactly what the report says was ordered and filled.
    accepted = {
        o.client_order_id: (o.symbol, o.side, o.filled_qty, o.status)
        for o in exchange.engine.accepted_orders()
    }
    reported = {
        o["client_order_id"]: (o["symbol"], o["side"], Decimal(o["filled_qty"]), o["status"])
        for o in report["orders"]
    }
    assert accepted == reported
    assert {symbol for symbol, *_ in accepted.values()} == set(DEFAULT_WEIGHTS)
    assert exchange.count("POST", ORDERS) == len(accepted) == 3
    # The account now holds the targets (after the 1% cash buffer), give or take the
    # move from the plan's prices (the previous close) to the fill prices (today's).
    held = weights_at_exchange(exchange)
    assert set(held) == set(DEFAULT_WEIGHTS)
    for symbol, target in DEFAULT_WEIGHTS.items():
        assert held[symbol] == pytest.approx(target * (1 - CASH_BUFFER), abs=0.02), symbol
    # The request count the CLI prints is what the exchange saw (no retries needed).
    assert f"broker requests: {len(exchange.requests)}, retries: 0" in first.stderr

    # Again, answering no trigger: the broker's today, and nothing left to do.
    before = len(exchange.requests)
    second, again = run.report()

    assert second.returncode == 0, second.stderr
    assert again["status"] == "noop"
    assert again["orders"] == []
    assert exchange.count("POST", ORDERS) == 3
    assert f"broker requests: {len(exchange.requests) - before}, retries: 0" in second.stderr
    # Both runs are in the ledger, each recorded as started and then with its report,
    # without a secret (checked on every run).
    ledger = (run.state_dir / "ledger.jsonl").read_text().splitlines()
    statuses = [json.loads(line)["status"] for line in ledger]
    assert statuses == ["started", "completed", "started", "noop"]


# -- 2. live gating --------------------------------------------------------------------

GATES = [
    (mode, endpoint, live)
    for mode in ("paper", "live")
    for endpoint in ("paper", "live")
    for live in (False, True)
]
ALLOWED = {("paper", "paper", False), ("live", "live", True)}


DEAD_PROXY = "http://127.0.0.1:9"
"""Any attempt to reach the internet goes through this proxy, which is not there, and
fails with a broker error (exit 1), never a configuration refusal (exit 2)."""


def proxied(proxy: str) -> dict[str, str]:
    return {"HTTPS_PROXY": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy, "http_proxy": proxy}


def gate_runner(
    tmp_path: Path,
    moto_server: str,
    exchange: LocalExchange,
    mode: str,
    endpoint: str,
    proxy: str = DEAD_PROXY,
) -> Runner:
    """Paper mode trades at the local exchange; live mode may only name Alpaca's live
    URLs (loopback is paper's alone), reached through ``proxy`` on 127.0.0.1."""
    secret = create_secret(moto_server, unique_secret_name(), secret_document(endpoint))
    if mode == "live":
        path = write_config(
            tmp_path,
            exchange.url,
            mode=mode,
            secret_id=secret,
            trading_url=LIVE_TRADING_URL,
            data_url=DATA_URL,
        )
        return Runner(tmp_path, moto_server, path, **proxied(proxy))
    path = write_config(tmp_path, exchange.url, mode=mode, secret_id=secret)
    return Runner(tmp_path, moto_server, path)


class _ProxyServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    lines: list[str]


class _RecordingProxy(socketserver.BaseRequestHandler):
    """Records the request line it is sent (``CONNECT host:443 ...``) and refuses it."""

    server: _ProxyServer

    def handle(self) -> None:
        line = self.request.recv(4096).split(b"\r\n", 1)[0]
        self.server.lines.append(line.decode("ascii", "replace"))
        self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")


@pytest.fixture
def recording_proxy() -> Iterator[tuple[str, list[str]]]:
    """An HTTP proxy on 127.0.0.1 that lets nothing through; yields its URL and the
    request lines it received."""
    with _ProxyServer(("127.0.0.1", 0), _RecordingProxy) as server:
        lines: list[str] = []
        server.lines = lines
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}", lines
        finally:
            server.shutdown()
            thread.join(timeout=5)


REFUSED = [g for g in GATES if g not in ALLOWED]


def gate_id(gate: tuple[str, str, bool]) -> str:
    mode, endpoint, live = gate
    return f"{mode}-config-{endpoint}-secret-{'live-flag' if live else 'no-flag'}"


@pytest.mark.parametrize(("mode", "endpoint", "live"), REFUSED, ids=map(gate_id, REFUSED))
def test_live_gating_refuses_before_any_broker_request(
    tmp_path: Path,
    moto_server: str,
    exchange: LocalExchange,
    mode: str,
    endpoint: str,
    live: bool,
) -> None:
    run = gate_runner(tmp_path, moto_server, exchange, mode, endpoint)

    result = run("--scheduled-time", SCHEDULED, *(["--live"] if live else []))

    assert result.returncode == 2, result.stderr
    assert "refusing" in result.stderr or "confirm with --live" in result.stderr
    assert "mode" in result.stderr
    assert exchange.requests == []
    assert result.stdout == ""
    assert not (run.state_dir / "ledger.jsonl").exists()


def test_a_live_refusal_names_its_code(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    run = gate_runner(tmp_path, moto_server, exchange, "live", "live")

    result = run("--scheduled-time", SCHEDULED)

    assert result.returncode == 2
    assert "LIVE_NOT_CONFIRMED" in result.stderr


def test_paper_gating_allows_when_all_three_agree(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    run = gate_runner(tmp_path, moto_server, exchange, "paper", "paper")

    result, report = run.report("--scheduled-time", SCHEDULED)

    assert result.returncode == 0, result.stderr
    assert report["status"] == "completed"
    assert report["mode"] == "paper"
    assert exchange.count("POST", ORDERS) == len(report["orders"]) == 3


def test_live_gating_allows_when_all_three_agree(
    tmp_path: Path,
    moto_server: str,
    exchange: LocalExchange,
    recording_proxy: tuple[str, list[str]],
) -> None:
    # Live mode may only trade at Alpaca's live URL: past the gate, its first request
    # heads there (and stops at a proxy on 127.0.0.1 that lets nothing through).
    proxy, lines = recording_proxy
    run = gate_runner(tmp_path, moto_server, exchange, "live", "live", proxy=proxy)

    result = run("--scheduled-time", SCHEDULED, "--live")

    assert result.returncode == 1, result.stderr
    assert "refusing" not in result.stderr
    assert lines
    assert {line.split()[1] for line in lines} == {"api.alpaca.markets:443"}
    assert exchange.requests == []


@pytest.mark.parametrize(
    ("mode", "endpoint", "live", "trading_url"),
    [
        ("paper", "paper", False, "https://api.alpaca.markets"),
        ("live", "live", True, "https://paper-api.alpaca.markets"),
    ],
    ids=["paper-mode-live-url", "live-mode-paper-url"],
)
def test_mode_and_url_must_agree_and_nothing_is_reached(
    tmp_path: Path,
    moto_server: str,
    exchange: LocalExchange,
    mode: str,
    endpoint: str,
    live: bool,
    trading_url: str,
) -> None:
    secret = create_secret(moto_server, unique_secret_name(), secret_document(endpoint))
    config = write_config(
        tmp_path, exchange.url, mode=mode, secret_id=secret, trading_url=trading_url
    )
    run = Runner(tmp_path, moto_server, config, **proxied(DEAD_PROXY))

    result = run("--scheduled-time", SCHEDULED, *(["--live"] if live else []))

    assert result.returncode == 2, result.stderr
    assert "alpaca.trading_url" in result.stderr
    assert "refusing" in result.stderr
    assert exchange.requests == []  # the data URL is the exchange: not read either


BAD_URLS = [
    ("paper", "trading_url", "http://paper-api.alpaca.markets"),
    ("paper", "trading_url", "https://user:pw@paper-api.alpaca.markets"),
    ("paper", "trading_url", "https://paper-api.alpaca.markets.evil.example"),
    ("paper", "data_url", "http://evil.example"),
    ("live", "trading_url", "http://127.0.0.1:8765"),
    ("live", "data_url", "http://localhost:8765"),
]


@pytest.mark.parametrize(("mode", "field", "url"), BAD_URLS)
def test_a_bad_url_exits_2_naming_the_field_before_any_secret_or_request(
    tmp_path: Path,
    moto_server: str,
    exchange: LocalExchange,
    recording_proxy: tuple[str, list[str]],
    mode: str,
    field: str,
    url: str,
) -> None:
    # The secret does not exist: reading it would fail with another error, naming it.
    secret = unique_secret_name()
    urls = {"trading_url": LIVE_TRADING_URL, "data_url": DATA_URL} if mode == "live" else {}
    config = write_config(
        tmp_path, exchange.url, mode=mode, secret_id=secret, **{**urls, field: url}
    )
    proxy, lines = recording_proxy
    run = Runner(tmp_path, moto_server, config, **proxied(proxy))

    result = run("--scheduled-time", SCHEDULED, *(["--live"] if mode == "live" else []))

    assert result.returncode == 2, result.stderr
    assert f"alpaca.{field}" in result.stderr
    assert secret not in result.stderr
    assert "pw" not in result.stderr
    assert lines == []
    assert exchange.requests == []
    assert result.stdout == ""


# -- 3. secrets ----------------------------------------------------------------------------

GOOD = secret_document("paper")
TRUNCATED = json.dumps(GOOD)[:-30]
WITHOUT_SECRET_KEY = {k: v for k, v in GOOD.items() if k != "api_secret_key"}
BAD_SECRETS = {
    "malformed-json": (TRUNCATED, "not JSON"),
    "not-an-object": (json.dumps([FAKE_KEY_ID, FAKE_SECRET_KEY]), "not a JSON object"),
    "missing-field": (json.dumps(WITHOUT_SECRET_KEY), "api_secret_key"),
    "endpoint-demo": (json.dumps({**GOOD, "endpoint": "demo"}), "endpoint"),
    "empty-key": (json.dumps({**GOOD, "api_key_id": ""}), "api_key_id"),
}


@pytest.mark.parametrize(("document", "names"), BAD_SECRETS.values(), ids=BAD_SECRETS.keys())
def test_a_bad_secret_fails_closed_naming_the_field(
    tmp_path: Path, moto_server: str, exchange: LocalExchange, document: str, names: str
) -> None:
    secret = create_secret(moto_server, unique_secret_name(), document)
    run = Runner(tmp_path, moto_server, write_config(tmp_path, exchange.url, secret_id=secret))

    result = run("--scheduled-time", SCHEDULED)

    assert result.returncode == 1, result.stderr
    assert "SECRET_INVALID" in result.stderr
    assert secret in result.stderr
    assert names in result.stderr
    assert exchange.requests == []


def test_a_missing_secret_fails_closed(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    secret = unique_secret_name()  # never created
    run = Runner(tmp_path, moto_server, write_config(tmp_path, exchange.url, secret_id=secret))

    result = run("--scheduled-time", SCHEDULED)

    assert result.returncode == 1, result.stderr
    assert "SECRET_INVALID" in result.stderr
    assert secret in result.stderr
    assert exchange.requests == []


def test_no_fallback_to_environment_variables(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    # The keys the exchange accepts are right there in the environment, under every
    # name alpaca-py and its users know; the run must still refuse without its secret.
    keys = {
        "ALPACA_API_KEY": FAKE_KEY_ID,
        "ALPACA_SECRET_KEY": FAKE_SECRET_KEY,
        "APCA_API_KEY_ID": FAKE_KEY_ID,
        "APCA_API_SECRET_KEY": FAKE_SECRET_KEY,
    }
    config = write_config(tmp_path, exchange.url, secret_id=unique_secret_name())
    run = Runner(tmp_path, moto_server, config, **keys)

    result = run("--scheduled-time", SCHEDULED)

    assert result.returncode == 1, result.stderr
    assert "SECRET_INVALID" in result.stderr
    assert exchange.requests == []


# -- 5. the market clock -------------------------------------------------------------------


def test_market_closed_skips_without_ordering(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    exchange.configure(now=datetime(2026, 7, 31, 20, 30, tzinfo=NEW_YORK))
    run = paper_runner(tmp_path, moto_server, exchange)

    result, report = run.report("--scheduled-time", SCHEDULED)

    assert result.returncode == 0, result.stderr
    assert report["status"] == "skipped"
    assert report["notes"]
    assert "nothing was traded" in report["notes"][0]
    assert report["orders"] == []
    assert exchange.count("POST", ORDERS) == 0
    assert exchange.count("GET", "/v2/clock") >= 1


def test_a_trigger_for_another_day_is_refused(
    tmp_path: Path, moto_server: str, exchange: LocalExchange
) -> None:
    run = paper_runner(tmp_path, moto_server, exchange)

    result, report = run.report("--scheduled-time", "2026-07-30T13:30:00Z")

    assert result.returncode == 1
    assert "EVENT_INVALID" in result.stderr
    assert "2026-07-30" in result.stderr
    assert report["status"] == "failed"
    assert report["errors"][0]["code"] == "EVENT_INVALID"
    assert report["orders"] == []
    assert exchange.count("POST", ORDERS) == 0


# -- 6. stale data ---------------------------------------------------------------------------


def test_stale_bars_fail_closed(tmp_path: Path, moto_server: str, exchange: LocalExchange) -> None:
    exchange.configure(stale_bars_sessions=1)
    run = paper_runner(tmp_path, moto_server, exchange)

    result, report = run.report("--scheduled-time", SCHEDULED)

    assert result.returncode == 1
    assert "DATA_STALE" in result.stderr
    assert report["status"] == "failed"
    assert [e["code"] for e in report["errors"]] == ["DATA_STALE"]
    assert report["orders"] == []
    assert exchange.count("POST", ORDERS) == 0
