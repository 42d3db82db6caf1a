"""``alchemiser exchange serve``: the local Alpaca-compatible exchange as a process.

Prints one line when it is ready (``exchange listening on http://127.0.0.1:PORT
(session YYYY-MM-DD)``) and serves until SIGINT or SIGTERM. With ``--ready-file PATH``
it also writes its URL to PATH (atomically) once it listens, and removes the file when
it stops; ``alchemiser wait-for URL`` is the other way to wait for it. Point alpaca-py
at it with ``TradingClient(key, secret, url_override=URL)`` and
``StockHistoricalDataClient(key, secret, url_override=URL)``.

Also runnable on its own: ``python -m alchemiser.exchange.cli serve --port 8765``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import FrameType
from typing import Any

from alchemiser.errors import AlchemiserError
from alchemiser.exchange.engine import NEW_YORK, ExchangeSettings
from alchemiser.exchange.faults import load_faults
from alchemiser.exchange.server import HOST, LocalExchange

DEFAULT_PORT = 8765
MAX_PORT = 65_535
KEY_ENV = "ALCHEMISER_EXCHANGE_KEY_ID"
SECRET_ENV = "ALCHEMISER_EXCHANGE_SECRET_KEY"  # noqa: S105 (a variable name)
EXIT_FAILED = 1
EXIT_USAGE = 2


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {text!r}") from error


def _port(text: str) -> int:
    """A TCP port to listen on: 0 (any free one) to 65535."""
    try:
        port = int(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from error
    if not 0 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"expected 0 to {MAX_PORT}, got {port}")
    return port


def _money(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as error:
        raise argparse.ArgumentTypeError(f"expected an amount, got {text!r}") from error
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative amount, got {text!r}")
    return value


def _symbols(text: str) -> frozenset[str]:
    return frozenset(s.strip().upper() for s in text.split(",") if s.strip())


def add_command(subparsers: Any) -> None:
    """Add ``exchange serve`` to the ``alchemiser`` command's sub-parsers."""
    exchange = subparsers.add_parser(
        "exchange", help="a local Alpaca-compatible exchange (for tests and scripts)"
    )
    commands = exchange.add_subparsers(dest="exchange_command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the Trading and Market Data APIs on 127.0.0.1 until SIGINT/SIGTERM",
        description="The local Alpaca-compatible exchange as a process: one line when it is "
        "ready, then it serves until SIGINT or SIGTERM.",
    )
    serve.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        metavar="N",
        help="0 picks a free port (default: %(default)s)",
    )
    serve.add_argument("--host", default=HOST, choices=[HOST], help="fixed: 127.0.0.1 only")
    serve.add_argument(
        "--prices", type=Path, metavar="DIR", help="price directory (default: the bundled one)"
    )
    serve.add_argument(
        "--session",
        type=_date,
        metavar="DATE",
        help="session the clock starts in (default: the last one)",
    )
    serve.add_argument(
        "--cash",
        type=_money,
        default=Decimal(100_000),
        metavar="USD",
        help="starting cash (default: 100000)",
    )
    serve.add_argument(
        "--latency-ms", type=int, default=0, metavar="MS", help="delay before every response"
    )
    serve.add_argument(
        "--fill-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="seconds from submission to fill (default: 0)",
    )
    serve.add_argument("--key-id", metavar="ID", help=f"required key id (default: ${KEY_ENV})")
    serve.add_argument(
        "--secret-key", metavar="KEY", help=f"required secret key (default: ${SECRET_ENV})"
    )
    serve.add_argument(
        "--faults", type=Path, metavar="PATH", help="JSON file with a list of faults"
    )
    serve.add_argument(
        "--whole-shares",
        type=_symbols,
        default=frozenset(),
        metavar="SYM,SYM",
        help="symbols that are not fractionable",
    )
    serve.add_argument(
        "--ready-file",
        type=Path,
        metavar="PATH",
        help="once listening, write the URL to PATH (atomically); removed on a clean stop",
    )


def _write_ready_file(path: Path, url: str) -> None:
    """``url`` into ``path`` in one step: a reader sees no file or the whole URL."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(f"{url}\n", encoding="utf-8")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM. 0 on a clean stop; 2 for bad arguments."""
    key_id = args.key_id or os.environ.get(KEY_ENV) or None
    secret_key = args.secret_key or os.environ.get(SECRET_ENV) or None
    try:
        settings = ExchangeSettings(
            session=args.session,
            cash=args.cash,
            latency_ms=args.latency_ms,
            fill_delay_seconds=args.fill_delay,
            key_id=key_id,
            secret_key=secret_key,
            whole_share_symbols=args.whole_shares,
        )
        faults = load_faults(args.faults) if args.faults else []
        exchange = LocalExchange(args.prices, settings, port=args.port, faults=faults)
    except (ValueError, OSError, AlchemiserError) as error:
        print(f"alchemiser exchange: {error}", file=sys.stderr)
        return EXIT_USAGE
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    ready_file: Path | None = None
    try:
        try:
            exchange.start()
        except OSError as error:
            print(
                f"alchemiser exchange: cannot listen on port {args.port}: {error}", file=sys.stderr
            )
            return EXIT_FAILED
        if args.ready_file is not None:
            try:
                _write_ready_file(args.ready_file, exchange.url)
            except OSError as error:
                print(
                    f"alchemiser exchange: cannot write the ready file {args.ready_file}: {error}",
                    file=sys.stderr,
                )
                return EXIT_FAILED
            ready_file = args.ready_file
        session = exchange.engine.now().astimezone(NEW_YORK).date()
        print(
            f"exchange listening on {exchange.url} (session {session.isoformat()})",
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
        exchange.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alchemiser")
    add_command(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(["exchange", *(argv if argv is not None else sys.argv[1:])]))


if __name__ == "__main__":
    sys.exit(main())
