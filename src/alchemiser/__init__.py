"""Alchemiser: a scheduled rebalancer for Alpaca brokerage accounts.

The package is a functional core (``domain``, ``strategy``, ``portfolio``) inside an
imperative shell (``service``, ``execution``, ``adapters``, ``handlers``, ``cli``).
See docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
