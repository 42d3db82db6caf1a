"""The README's "A full offline session with Alpaca's API", run as written.

The section's shell blocks run verbatim, in order, in one bash (``set -e``), so a reader
who pastes them gets what the section says: the first run COMPLETED with three fills,
the second NOOP, the fault run one retry and COMPLETED, with the request counts and
fills the section shows. The servers the blocks start in the background are stopped
with the section's own ``kill $EXCHANGE $MOTO``, whatever happened.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
HEADING = "## A full offline session with Alpaca's API"
PORTS = (8765, 5000)
STOP = "kill $EXCHANGE $MOTO"
_DROPPED_ENV_PREFIXES = ("AWS_", "ALPACA_", "APCA_", "POWERTOOLS_", "ALCHEMISER_")
_ORDER_LINE = re.compile(
    r"local-paper-20260731-\w+-buy-(?P<symbol>[A-Z]+)-0\s+filled\s+(?P<qty>\S+)\s+(?P<price>\$\S+)"
)
_COUNTS = re.compile(r"broker requests: (\d+), retries: (\d+)")


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(HEADING)
    end = text.find("\n## ", start + len(HEADING))
    return text[start : end if end != -1 else len(text)]


def _blocks(section: str, language: str) -> list[str]:
    """The fenced blocks of ``language`` ("" for a bare fence), in order."""
    blocks: list[str] = []
    current: list[str] | None = None
    current_language = ""
    for line in section.splitlines():
        if current is None and line.startswith("```"):
            current, current_language = [], line[3:].strip()
        elif current is not None and line == "```":
            if current_language == language:
                blocks.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def _fills(text: str) -> dict[str, tuple[str, str]]:
    return {m["symbol"]: (m["qty"], m["price"]) for m in _ORDER_LINE.finditer(text)}


# -- what the section must say (fast) -------------------------------------------------------


def test_section_waits_instead_of_sleeping() -> None:
    section = _section()
    assert not re.search(r"\bsleep\b", section)
    first, *_, restart = _blocks(section, "sh")
    assert "alchemiser wait-for http://127.0.0.1:8765/v2/clock http://127.0.0.1:5000" in first
    assert "alchemiser wait-for http://127.0.0.1:8765/v2/clock" in restart


def test_every_curl_to_the_control_plane_fails_loudly() -> None:
    commands = re.findall(r"curl [^`\n]*_control[^`\n]*", _section())
    assert len(commands) >= 2  # the fault and the state
    for command in commands:
        options = [word for word in shlex.split(command) if word.startswith("-")]
        assert any(
            word == "--fail" or (not word.startswith("--") and "f" in word) for word in options
        ), command


def test_the_fault_run_only_follows_a_fault_that_was_set() -> None:
    restart = _blocks(_section(), "sh")[-1]
    assert re.search(
        r"curl [^\n]*_control/faults[^\n]*&&\s*\n\s*\.venv/bin/alchemiser run", restart
    )


def test_section_says_how_to_stop_both_servers() -> None:
    assert f"`{STOP}`" in _section()


# -- the session itself (slow) ---------------------------------------------------------------


def _port_in_use(port: int) -> bool:
    """Something listens on ``port`` (a port left in TIME_WAIT is free to the servers,
    which bind with SO_REUSEADDR, so it is free here too)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _script(blocks: list[str], out: Path) -> str:
    lines = [
        "set -e",
        # The section's own stop, on any exit; then wait for both servers to be gone.
        f"trap '{STOP} 2>/dev/null || true; wait' EXIT",
    ]
    for number, block in enumerate(blocks):
        lines += ["{", block.rstrip("\n"), f"}} > {out}/block{number}.out 2>&1"]
        lines.append(f"echo $? > {out}/block{number}.rc")
    lines.append(f"curl -fsS 127.0.0.1:8765/_control/state > {out}/state.json")
    return "\n".join(lines) + "\n"


def _run_session(tmp_path: Path) -> Path:
    """Run the section's blocks in a fresh directory that sees the repository's .venv and
    examples (so the runs' .alchemiser/ lands there, not in the repository); returns the
    directory holding each block's output."""
    for port in PORTS:
        if _port_in_use(port):
            pytest.skip(f"port {port} (fixed by the README) is in use")
    if not (ROOT / ".venv" / "bin" / "alchemiser").exists():
        pytest.skip(".venv/bin/alchemiser is missing (make .venv/.synced)")
    work, home, out = tmp_path / "work", tmp_path / "home", tmp_path / "out"
    for folder in (work, home, out):
        folder.mkdir()
    (work / ".venv").symlink_to(ROOT / ".venv")
    (work / "examples").symlink_to(ROOT / "examples")
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED_ENV_PREFIXES)}
    env.update(HOME=str(home), TMPDIR=str(tmp_path), NO_PROXY="127.0.0.1", no_proxy="127.0.0.1")
    script = _script(_blocks(_section(), "sh"), out)
    process = subprocess.Popen(
        ["bash", "-c", script],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
    logs = "\n".join(
        f"--- {path.name}\n{path.read_text(encoding='utf-8')}" for path in sorted(out.iterdir())
    )
    assert process.returncode == 0, f"{output}\n{logs}"
    return out


@pytest.mark.slow
def test_the_session_runs_as_written(tmp_path: Path) -> None:
    section = _section()
    out = _run_session(tmp_path)
    assert [(out / f"block{n}.rc").read_text().strip() for n in range(4)] == ["0"] * 4

    # The preflight: every check ok or skipped; the dry run plans the three buys and
    # orders nothing (the real run after it still buys all three).
    preflight = (out / "block1.out").read_text(encoding="utf-8")
    checks = [line for line in preflight.splitlines() if line[:4] in ("ok  ", "skip", "FAIL")]
    assert len(checks) >= 8, preflight
    assert not [c for c in checks if c.startswith("FAIL")], preflight
    assert "ok   secret" in preflight
    assert "ok   account" in preflight
    dry = preflight[preflight.index("DRY RUN: nothing was submitted or cancelled") :]
    assert {line.split()[1] for line in dry.splitlines() if line.startswith("  buy ")} == {
        "GLD",
        "SPY",
        "TLT",
    }
    assert "Orders:" not in dry

    # Two runs: COMPLETED with three fills, then NOOP, with the counts the section gives.
    first = (out / "block2.out").read_text(encoding="utf-8")
    claimed = re.search(
        r"`broker requests: (\d+),\s+retries: 0`, then `(\d+)` for the NOOP", section
    )
    assert claimed is not None
    assert _COUNTS.findall(first) == [(claimed[1], "0"), (claimed[2], "0")], first
    completed, noop = first.index("Status: COMPLETED"), first.index("Status: NOOP")
    assert completed < noop
    assert set(_fills(first[:completed])) == {"GLD", "SPY", "TLT"}

    # The fault run: one retry, COMPLETED, the counts and fills the section shows.
    shown = _blocks(section, "")[0]
    fault = (out / "block3.out").read_text(encoding="utf-8")
    assert "retrying broker request" in fault
    assert _COUNTS.findall(fault) == _COUNTS.findall(shown) == [(_COUNTS.findall(shown)[0][0], "1")]
    assert _fills(fault) == _fills(shown) != {}
    assert "Status: COMPLETED" in fault

    # Three orders at the exchange, none twice, all filled.
    orders = json.loads((out / "state.json").read_text(encoding="utf-8"))["orders"]
    ids = [order["client_order_id"] for order in orders]
    assert len(ids) == len(set(ids)) == 3
    assert {order["status"] for order in orders} == {"filled"}
