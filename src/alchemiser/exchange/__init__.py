"""A local Alpaca-compatible exchange on 127.0.0.1, for tests, scripts and benchmarks.

``LocalExchange`` serves the subset of Alpaca's Trading API v2 and Market Data API v2
that the product uses, over a simulated exchange (``engine.Engine``) priced by the
product's daily closes, with scriptable faults (``Fault``). See ``server.py``.
"""

from alchemiser.exchange.engine import ExchangeSettings
from alchemiser.exchange.faults import Fault
from alchemiser.exchange.server import LocalExchange, RequestRecord

__all__ = ["ExchangeSettings", "Fault", "LocalExchange", "RequestRecord"]
