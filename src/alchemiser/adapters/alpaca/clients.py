"""The two REST clients the Alpaca adapters speak through: one on the Trading API's
base URL, one on the Market Data API's.

Both are alpaca-py's ``RESTClient`` (``alpaca.common.rest``): the same
``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` headers, User-Agent, ``/v2`` prefix, no
redirects and error mapping (``APIError``) as alpaca-py's ``TradingClient`` and
``StockHistoricalDataClient``, without importing either: both pull in pandas (a
quarter of a second and 32 MiB at a cold start) for models the adapters never use,
since they read raw JSON and build every query and body themselves.
"""

from __future__ import annotations

from typing import NamedTuple

from alpaca.common.rest import RESTClient

API_VERSION = "v2"
"""What alpaca-py puts between the base URL and every path, on both APIs."""


class AlpacaRest(RESTClient):
    """alpaca-py's REST client with nothing added (its base class is abstract in name
    only); ``transport.harden`` then takes its retries and session over."""


class AlpacaClients(NamedTuple):
    trading: RESTClient
    data: RESTClient


def rest_client(base_url: str, api_key: str, secret_key: str) -> RESTClient:
    """A client for one API: ``base_url`` without a path (``/v2`` is appended)."""
    return AlpacaRest(
        base_url=base_url.rstrip("/"),
        api_key=api_key,
        secret_key=secret_key,
        api_version=API_VERSION,
        raw_data=True,
    )


def alpaca_clients(
    api_key: str, secret_key: str, *, trading_url: str, data_url: str
) -> AlpacaClients:
    """The trading and data clients for one set of keys."""
    return AlpacaClients(
        trading=rest_client(trading_url, api_key, secret_key),
        data=rest_client(data_url, api_key, secret_key),
    )
