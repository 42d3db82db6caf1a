"""``alchemiser wait-for URL [URL...]``: wait until servers answer HTTP.

For scripts that start servers in the background (the local exchange, a moto server)
and must not go on before they listen. Any HTTP answer, whatever its status (a 401 or a
404 too), means the server is up; a refused, reset or timed-out connection means wait a
little and ask again. Exit status: 0 once every URL has answered, 1 when the timeout
passes first (the URL that did not answer and why, one line on stderr), 2 for a bad URL
or timeout.

Any host is accepted: a probe is one read-only ``GET`` whose answer is its status line
(the rest, headers and body, is never read) and the connection is closed at once. Each
attempt, connecting included, ends by the overall deadline. A URL with user-info
(``user:password@``), spaces or control characters, or port 0 is a bad URL; a URL with
user-info is never printed.
"""

from __future__ import annotations

import argparse
import re
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import monotonic
from typing import Any
from urllib.parse import urlsplit

DEFAULT_TIMEOUT_SECONDS = 30.0
INTERVAL_SECONDS = 0.1
ATTEMPT_TIMEOUT_SECONDS = 5.0
EXIT_TIMEOUT = 1
STATUS_LINE_LIMIT = 1024
"""Bytes read at most for an answer's status line."""
STATUS_LINE = re.compile(rb"^HTTP/\d(\.\d)? [1-5]\d\d( |\r?$)")


@dataclass(frozen=True)
class Target:
    """One URL to wait for, checked: ``http://HOST[:PORT][/PATH]``."""

    url: str
    host: str
    port: int
    path: str


def _shown(text: str) -> str:
    """``text`` for an error message: never a URL that may carry a password."""
    return "the URL (not shown: it holds an '@')" if "@" in text else repr(text)


def parse_target(text: str) -> Target:
    """``text`` as a ``Target``; ``argparse.ArgumentTypeError`` (exit 2) when it is not an
    ``http://`` URL with a host and a port from 1 to 65535, or holds user-info,
    whitespace, control or non-ASCII characters."""
    if "@" in urlsplit(text).netloc:
        raise argparse.ArgumentTypeError(
            "a URL with user-info (user:password@) is refused; it is not shown"
        )
    if any(not 0x21 <= ord(char) <= 0x7E for char in text):
        raise argparse.ArgumentTypeError(
            f"spaces, control or non-ASCII characters in {_shown(text)}"
        )
    split = urlsplit(text)
    if split.scheme != "http":
        raise argparse.ArgumentTypeError(f"expected an http:// URL, got {_shown(text)}")
    try:
        port = split.port
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"bad port in {_shown(text)}") from error
    if port == 0:
        raise argparse.ArgumentTypeError(f"port 0 in {_shown(text)}")
    if not split.hostname:
        raise argparse.ArgumentTypeError(f"no host in {_shown(text)}")
    path = split.path or "/"
    if split.query:
        path = f"{path}?{split.query}"
    return Target(url=text, host=split.hostname, port=port or 80, path=path)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from error
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def probe(target: Target, timeout: float, *, now: Callable[[], float] = monotonic) -> str | None:
    """None when ``target`` gave an HTTP answer (any status); else why it did not. Only
    the status line is read, and the whole attempt ends within ``timeout`` seconds."""
    deadline = now() + timeout
    host = f"[{target.host}]" if ":" in target.host else target.host
    request = (
        f"GET {target.path} HTTP/1.1\r\nHost: {host}:{target.port}\r\nConnection: close\r\n\r\n"
    ).encode("ascii")
    try:
        with socket.create_connection((target.host, target.port), timeout=timeout) as sock:
            sock.settimeout(_left(deadline, now))
            sock.sendall(request)
            line = b""
            while b"\n" not in line and len(line) < STATUS_LINE_LIMIT:
                sock.settimeout(_left(deadline, now))
                chunk = sock.recv(STATUS_LINE_LIMIT - len(line))
                if not chunk:
                    break
                line += chunk
    except OSError as error:
        return _reason(error)
    if STATUS_LINE.match(line.split(b"\n", 1)[0]) is None:
        return "not an HTTP answer" if line else "closed without an answer"
    return None


def _left(deadline: float, now: Callable[[], float]) -> float:
    """Seconds until ``deadline``; TimeoutError once it has passed."""
    left = deadline - now()
    if left <= 0:
        raise TimeoutError("no answer in time")
    return left


def _reason(error: BaseException) -> str:
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, TimeoutError):
        return "no answer"
    return str(error) or type(error).__name__


def wait_for(
    targets: Sequence[Target],
    timeout: float,
    *,
    now: Callable[[], float] = monotonic,
    pause: Callable[[float], object] | None = None,
) -> tuple[Target, str] | None:
    """Ask each target in turn until it answers. None when all answered within
    ``timeout`` seconds; else the first that did not, and why."""
    wait = pause if pause is not None else threading.Event().wait
    deadline = now() + timeout
    for target in targets:
        while True:
            remaining = deadline - now()
            reason = probe(target, max(min(remaining, ATTEMPT_TIMEOUT_SECONDS), 0.01))
            if reason is None:
                break
            remaining = deadline - now()
            if remaining <= 0:
                return target, reason
            wait(min(INTERVAL_SECONDS, remaining))
    return None


def add_command(commands: Any) -> None:
    """Add ``wait-for`` to the ``alchemiser`` command's sub-parsers."""
    command = commands.add_parser(
        "wait-for",
        help="wait until every URL gives an HTTP answer (any status): exit 0, or 1 on timeout",
        description=__doc__.splitlines()[0].replace("``", "") if __doc__ else None,
    )
    command.add_argument(
        "urls",
        nargs="+",
        type=parse_target,
        metavar="URL",
        help="http://HOST[:PORT][/PATH], any host (a read-only probe: one GET, only its "
        "status line read); no user-info, port 1-65535",
    )
    command.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"give up after this long, all URLs together (default: {DEFAULT_TIMEOUT_SECONDS:g})",
    )


def run(args: argparse.Namespace) -> int:
    """0 when every URL answered; 1 (one line on stderr) when the timeout passed first."""
    missing = wait_for(args.urls, args.timeout)
    if missing is None:
        return 0
    target, reason = missing
    print(
        f"alchemiser wait-for: {target.url} did not answer within {args.timeout:g} s ({reason})",
        file=sys.stderr,
    )
    return EXIT_TIMEOUT
