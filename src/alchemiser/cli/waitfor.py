"""``alchemiser wait-for URL [URL...]``: wait until servers answer HTTP.

For scripts that start servers in the background (the local exchange, a moto server)
and must not go on before they listen. Any HTTP answer, whatever its status (a 401 or a
404 too), means the server is up; a refused, reset or timed-out connection means wait a
little and ask again. Exit status: 0 once every URL has answered, 1 when the timeout
passes first (the URL that did not answer and why, one line on stderr), 2 for a bad URL
or timeout.
"""

from __future__ import annotations

import argparse
import http.client
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


@dataclass(frozen=True)
class Target:
    """One URL to wait for, checked: ``http://HOST[:PORT][/PATH]``."""

    url: str
    host: str
    port: int
    path: str


def parse_target(text: str) -> Target:
    """``text`` as a ``Target``; ``argparse.ArgumentTypeError`` (exit 2) when it is not an
    ``http://`` URL with a host and a valid port."""
    split = urlsplit(text)
    if split.scheme != "http":
        raise argparse.ArgumentTypeError(f"expected an http:// URL, got {text!r}")
    try:
        port = split.port or 80
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"bad port in {text!r}") from error
    if not split.hostname:
        raise argparse.ArgumentTypeError(f"no host in {text!r}")
    path = split.path or "/"
    if split.query:
        path = f"{path}?{split.query}"
    return Target(url=text, host=split.hostname, port=port, path=path)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from error
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def probe(target: Target, timeout: float) -> str | None:
    """None when ``target`` gave an HTTP answer (any status); else why it did not."""
    connection = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    try:
        connection.request("GET", target.path, headers={"Connection": "close"})
        connection.getresponse().read()
    except (OSError, http.client.HTTPException) as error:
        return _reason(error)
    finally:
        connection.close()
    return None


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
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    command.add_argument("urls", nargs="+", type=parse_target, metavar="URL", help="http://...")
    command.add_argument(
        "--timeout",
        type=_seconds,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"give up after this long, all URLs together (default {DEFAULT_TIMEOUT_SECONDS:g})",
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
