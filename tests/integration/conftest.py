"""Fixtures shared by the integration tests: a moto server standing in for Secrets
Manager, and a fresh local exchange (a test module may define its own ``exchange``)."""

from tests.integration.alpaca_fixtures import exchange, moto_server

__all__ = ["exchange", "moto_server"]
