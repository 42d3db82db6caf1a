"""Benchmark: a 20-order rebalance (10 sells, then 10 buys) through the adapters' alpaca-py
REST clients against the local exchange, with 20 ms of latency injected into every response.

Prints the wall time from the start of the run to the last order accepted, that time
less the time spent waiting for fills (the Clock's sleeps: simulated time to fill), the
whole run, and the number of HTTP requests (counted by the client and by the exchange).
Targets: under 1.5 s excluding the time to fill; at most 12 + 2 x orders + buys
requests: 12 reads a run makes whatever it trades (clock, calendar, this run's orders
three times, open orders twice, positions, account, bars, assets, quotes) plus the
account after (2 more), less the reads a run without sells or buys skips; per order a
submission and its share of polling; per buy a fresh read of buying power (the leg's
first buy uses the leg's own read). Asserts nothing.

Run: make bench  (or .venv/bin/python bench/bench_alpaca.py [repeats])
"""

from __future__ import annotations

import statistics
import sys
import time
from decimal import Decimal

from alpaca.common.rest import RESTClient

from alchemiser import bootstrap
from alchemiser.adapters.alpaca.broker import AlpacaBroker
from alchemiser.adapters.alpaca.clients import rest_client
from alchemiser.adapters.alpaca.market_data import AlpacaMarketData
from alchemiser.adapters.alpaca.policy import RetryPolicy
from alchemiser.adapters.alpaca.transport import Transport
from alchemiser.adapters.clock import SystemClock
from alchemiser.config import AppConfig, parse_config
from alchemiser.domain.orders import OrderRecord, OrderRequest
from alchemiser.domain.report import RunReport
from alchemiser.exchange import ExchangeSettings, LocalExchange
from alchemiser.service import rebalance

LATENCY_MS = 20
FIRST = ["AGG", "BIL", "BND", "BSV", "GLD", "IEF", "QQQ", "SPY", "TLT", "VTI"]
SECOND = ["XLF", "XLK", "XLP", "XLY", "VTV", "VOOG", "VOOV", "VOX", "IOO", "QQQE"]


class TimedClock(SystemClock):
    def __init__(self) -> None:
        super().__init__()
        self.slept = 0.0

    def sleep(self, seconds: float) -> None:
        start = time.perf_counter()
        super().sleep(seconds)
        self.slept += time.perf_counter() - start


class TimedBroker(AlpacaBroker):
    """Notes when each order is accepted, and how long the run had slept by then."""

    def __init__(self, client: RESTClient, transport: Transport, clock: TimedClock) -> None:
        super().__init__(client, transport)
        self.clock = clock
        self.accepted: list[tuple[float, float]] = []

    def submit_order(self, request: OrderRequest) -> OrderRecord:
        record = super().submit_order(request)
        self.accepted.append((time.perf_counter(), self.clock.slept))
        return record


def config(symbols: list[str]) -> AppConfig:
    weight = round(0.99 / len(symbols), 4)
    return parse_config(
        {
            "broker": "alpaca",
            "mode": "paper",
            "alpaca": {"secret_id": "benchmark"},
            "strategies": [
                {"name": "bench", "allocation": 1.0, "weights": dict.fromkeys(symbols, weight)}
            ],
            "risk": {"max_position_weight": 1.0},
        },
        "bench",
    )


def run_once(exchange: LocalExchange, settings: AppConfig) -> tuple[RunReport, dict[str, float]]:
    clock = TimedClock()
    transport = Transport(clock, RetryPolicy())
    trading = rest_client(exchange.url, "bench-key", "bench-secret")
    data = rest_client(exchange.url, "bench-key", "bench-secret")
    broker = TimedBroker(trading, transport, clock)
    wiring = bootstrap.AlpacaWiring(
        broker=broker, market=AlpacaMarketData(trading, data, transport), transport=transport
    )
    served_before = len(exchange.requests)
    start = time.perf_counter()
    request = bootstrap.alpaca_request(
        settings, wiring.market, broker, None, clock.monotonic() + 60
    )
    deps = bootstrap.build_alpaca(settings, wiring, clock=clock, state_dir=None)
    report = rebalance(request, deps)
    total = time.perf_counter() - start
    last, slept = broker.accepted[-1] if broker.accepted else (start, 0.0)
    return report, {
        "to_last_accept": last - start,
        "to_last_accept_less_fill_waits": last - start - slept,
        "total": total,
        "fill_waits": clock.slept,
        "client_requests": transport.requests_sent,
        "served_requests": len(exchange.requests) - served_before,
        "orders": len(report.orders),
    }


def measure(repeats: int, fill_delay: float) -> list[dict[str, float]]:
    results = []
    for _ in range(repeats):
        with LocalExchange(settings=ExchangeSettings(cash=Decimal(100_000))) as exchange:
            seeded, _ = run_once(exchange, config(FIRST))
            assert seeded.status.value == "completed", seeded.status
            exchange.configure(latency_ms=LATENCY_MS, fill_delay_seconds=fill_delay)
            report, numbers = run_once(exchange, config(SECOND))
            if report.status.value != "completed":
                raise SystemExit(f"benchmark run ended {report.status.value}: {report.errors}")
            results.append(numbers)
    return results


def main() -> None:
    repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    for fill_delay in (0.0, 0.5):
        results = measure(repeats, fill_delay)
        orders = int(results[0]["orders"])
        print(
            f"20-order rebalance via alpaca-py against the local exchange: {LATENCY_MS} ms "
            f"latency per request, fills {fill_delay:g} s after acceptance, {repeats} runs"
        )
        for key in ("to_last_accept_less_fill_waits", "to_last_accept", "fill_waits", "total"):
            values = [r[key] for r in results]
            print(
                f"  {key:32s} median {statistics.median(values):6.3f} s   "
                f"min {min(values):6.3f} s   max {max(values):6.3f} s"
            )
        requests = sorted({int(r["client_requests"]) for r in results})
        served = sorted({int(r["served_requests"]) for r in results})
        print(
            f"  orders {orders} (sells then buys); requests sent {requests}, served {served}; "
            f"budget 12 + 2 x {orders} + {orders // 2} buys = {12 + 2 * orders + orders // 2}"
        )
    print("target: < 1.5 s to the last order accepted, excluding the time to fill")


if __name__ == "__main__":
    main()
