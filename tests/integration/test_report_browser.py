"""The HTML report in a real browser: headless Chromium loads it from a file, offline,
and draws its table and charts (skipped where Chromium is not installed)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from alchemiser.reporting.html import write_backtest_html
from tests.unit.test_report_html import synthetic_page

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HANG_GUARD_S = 300
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    return found


def _run(args: list[str], profile: Path) -> str:
    done = subprocess.run(
        [_chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _png_rows(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the (filtered) scanlines of an 8-bit RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert (depth, colour) in ((8, 2), (8, 6))
    stride = 1 + width * (3 if colour == 2 else 4)
    pixels = zlib.decompress(idat)
    assert len(pixels) == stride * height
    return width, height, [pixels[i : i + stride] for i in range(0, len(pixels), stride)]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_backtest_html(synthetic_page(sessions=15 * 252), path)
    return path


def test_chromium_builds_the_table_and_the_charts(report: Path, tmp_path: Path) -> None:
    dom = _run(["--dump-dom", report.as_uri()], tmp_path / "profile")
    assert '<table class="stats">' in dom
    assert dom.count("<svg ") == 5
    assert "Monthly returns" in dom
    assert dom.count('class="cell month"') % 12 == 0
    assert "MAX_POSITION_WEIGHT" in dom


def test_chromium_screenshot_is_not_blank(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "shot.png"
    _run(
        [f"--screenshot={shot}", "--window-size=1200,3000", report.as_uri()],
        tmp_path / "profile",
    )
    width, height, rows = _png_rows(shot.read_bytes())
    assert (width, height) == (1200, 3000)
    # A blank page is one scanline repeated and a handful of byte values; text, lines
    # and coloured areas make most scanlines differ and use many values.
    assert len(set(rows)) > height // 3
    assert len(set(b"".join(rows))) > 64
