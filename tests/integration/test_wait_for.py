"""``alchemiser wait-for``: up on any HTTP answer, exit 1 on timeout, 2 for a bad URL;
and ``exchange serve --ready-file``: the URL in a file while the exchange listens."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from alchemiser.cli import waitfor
from alchemiser.cli.main import main
from tests.integration.alpaca_fixtures import cli_env, run_cli


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


class _LateServer:
    """An HTTP server (every answer a 404) that starts listening only when told to."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.go = threading.Event()
        self._server: http.server.HTTPServer | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.go.wait(60)
        self._server = http.server.HTTPServer(("127.0.0.1", self.port), _NotFound)
        self._started.set()
        self._server.serve_forever(poll_interval=0.05)

    def __enter__(self) -> _LateServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.go.set()
        self._started.wait(10)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._thread.join(10)


@pytest.fixture
def late_server() -> Iterator[_LateServer]:
    with _LateServer() as server:
        yield server


def test_waits_for_a_server_that_starts_late(
    late_server: _LateServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{late_server.port}/v2/clock"
    assert waitfor.probe(waitfor.parse_target(url), 5) == "connection refused"
    # Start the server only once wait-for has been refused at least once.
    original = waitfor.probe
    refusals: list[str] = []

    def probe_then_start(target: waitfor.Target, timeout: float) -> str | None:
        reason = original(target, timeout)
        if reason is not None:
            refusals.append(reason)
            late_server.go.set()
        return reason

    monkeypatch.setattr(waitfor, "probe", probe_then_start)
    assert main(["wait-for", url, "--timeout", "60"]) == 0
    assert refusals
    assert refusals[0] == "connection refused"


def test_any_http_status_means_up(late_server: _LateServer) -> None:
    late_server.go.set()
    url = f"http://127.0.0.1:{late_server.port}/missing"
    assert main(["wait-for", url, url, "--timeout", "60"]) == 0


def test_nothing_listening_times_out_with_exit_1_naming_the_url() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v2/clock"
    result = run_cli(["wait-for", url, "--timeout", "1"], cli_env("http://127.0.0.1:1"))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [f"alchemiser wait-for: {url} did not answer within 1 s (connection refused)"]


def test_the_timeout_is_for_all_urls_and_names_the_first_missing(
    late_server: _LateServer, capsys: pytest.CaptureFixture[str]
) -> None:
    late_server.go.set()
    up = f"http://127.0.0.1:{late_server.port}/"
    down = f"http://127.0.0.1:{_free_port()}/"
    assert main(["wait-for", up, down, "--timeout", "1"]) == 1
    assert f"{down} did not answer" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["ftp://127.0.0.1/x"],
        ["127.0.0.1:8765"],
        ["http://"],
        ["http://:8765/v2/clock"],
        ["http://127.0.0.1:99999/"],
        ["http://127.0.0.1:port/"],
        ["http://127.0.0.1:8765/", "--timeout", "0"],
        ["http://127.0.0.1:8765/", "--timeout", "-1"],
        ["http://127.0.0.1:8765/", "--timeout", "nan"],
        ["http://127.0.0.1:8765/", "--timeout", "soon"],
        ["http://127.0.0.1:0/"],
        ["http://127.0.0.1:8765/a b"],
        ["http://127.0.0.1:8765/\x00"],
        ["http://127.0.0.1:8765/\n"],
        ["http://127.0.0.1:8765/\t"],
        ["http://127.0.0.1:8765/caf\u00e9"],
    ],
)
def test_bad_urls_and_timeouts_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["wait-for", *args])
    assert exit_info.value.code == 2
    assert "alchemiser wait-for: error:" in capsys.readouterr().err


def test_waits_between_attempts_without_sleeping_and_stops_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [0.0]
    pauses: list[float] = []

    def pause(seconds: float) -> bool:
        pauses.append(seconds)
        now[0] += seconds
        return False

    answers = iter(["connection refused", "connection refused", None])
    monkeypatch.setattr(waitfor, "probe", lambda target, timeout: next(answers))
    target = waitfor.parse_target("http://127.0.0.1:1/")
    assert waitfor.wait_for([target], 30, now=lambda: now[0], pause=pause) is None
    assert pauses == [waitfor.INTERVAL_SECONDS, waitfor.INTERVAL_SECONDS]

    monkeypatch.setattr(waitfor, "probe", lambda target, timeout: "connection refused")
    now[0] = 0.0
    pauses.clear()
    assert waitfor.wait_for([target], 1, now=lambda: now[0], pause=pause) == (
        target,
        "connection refused",
    )
    assert sum(pauses) == pytest.approx(1)


@pytest.mark.parametrize(
    "url",
    [
        "http://user:s3cr3t-pw@127.0.0.1:8765/",
        "http://s3cr3t-pw@127.0.0.1:8765/",
        "ftp://user:s3cr3t-pw@127.0.0.1/",
        "http://user:s3cr3t-pw@127.0.0.1:8765/ x",
    ],
)
def test_a_url_with_user_info_is_refused_and_never_printed(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["wait-for", url])
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "s3cr3t" not in captured.err + captured.out
    assert "alchemiser wait-for: error:" in captured.err


def _serve_raw(answer: bytes, then: bytes | None) -> Iterator[int]:
    """A server that sends ``answer`` at once, then ``then`` every 0.2 s, forever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            conn.recv(4096)
            try:
                conn.sendall(answer)
                while then is not None and not stop.wait(0.2):
                    conn.sendall(then)
                stop.wait()
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield int(listener.getsockname()[1])
    stop.set()
    listener.close()


@pytest.fixture
def streaming_server() -> Iterator[int]:
    """Answers ``200 OK`` at once, then sends a body that never ends."""
    yield from _serve_raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"1\r\nx\r\n")


@pytest.fixture
def dripping_server() -> Iterator[int]:
    """Sends a status line a byte at a time that never ends."""
    yield from _serve_raw(b"HTTP/1.1 ", b"x")


def _in_thread(call: Callable[[], object]) -> list[object]:
    result: list[object] = []
    worker = threading.Thread(target=lambda: result.append(call()), daemon=True)
    worker.start()
    worker.join(30)  # a hang guard only
    return result


def test_a_server_that_answers_is_up_even_if_its_body_never_ends(
    streaming_server: int,
) -> None:
    """The status line is the answer: the body is never read."""
    target = waitfor.parse_target(f"http://127.0.0.1:{streaming_server}/")
    assert _in_thread(lambda: waitfor.wait_for([target], 1.0)) == [None]


def test_a_status_line_that_never_ends_times_out(dripping_server: int) -> None:
    """Each read restarts the socket timeout; the attempt still ends by the deadline."""
    target = waitfor.parse_target(f"http://127.0.0.1:{dripping_server}/")
    assert _in_thread(lambda: waitfor.wait_for([target], 1.0)) == [(target, "no answer")]


# -- exchange serve --ready-file ----------------------------------------------------------


def _serve(*extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "alchemiser.exchange.cli", "serve", "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def test_ready_file_holds_the_url_while_serving_and_goes_on_stop(tmp_path: Path) -> None:
    ready = tmp_path / "exchange.url"
    process = _serve("--ready-file", str(ready))
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("exchange listening on http://127.0.0.1:"), line
        url = line.split()[3]
        assert ready.read_text(encoding="utf-8") == f"{url}\n"
        assert [p.name for p in tmp_path.iterdir()] == ["exchange.url"]
        assert requests.get(f"{url}/v2/clock", timeout=30).status_code == 401
        assert main(["wait-for", f"{url}/v2/clock"]) == 0
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not ready.exists()
        assert list(tmp_path.iterdir()) == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ready_file_that_cannot_be_written_stops_the_exchange(tmp_path: Path) -> None:
    ready = tmp_path / "missing" / "exchange.url"
    process = _serve("--ready-file", str(ready))
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1
    assert "exchange listening" not in stdout
    assert stderr.startswith(f"alchemiser exchange: cannot write the ready file {ready}:")
    assert not ready.exists()
