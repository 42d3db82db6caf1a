"""The local stand-in for AWS itself: a moto server on 127.0.0.1 and boto3 clients on it,
with fake credentials."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from alchemiser.devstack.template import REGION
from alchemiser.errors import ConfigError

FAKE_AWS_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


class Aws:
    """boto3 clients on the moto server, with fake credentials (never the caller's)."""

    def __init__(self, endpoint: str, region: str = REGION) -> None:
        self.endpoint = endpoint
        self.region = region
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import boto3  # noqa: PLC0415 - boto3 costs half a second to import

            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.endpoint,
                region_name=self.region,
                aws_access_key_id=FAKE_AWS_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=FAKE_AWS_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            )
        return self._clients[service]


@contextmanager
def moto_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 and a free port, in this process; yields its URL."""
    try:
        from moto.server import ThreadedMotoServer  # noqa: PLC0415
    except ImportError:
        raise ConfigError(
            "alchemiser invoke needs moto[server] (a dev dependency: make invoke installs it)"
        ) from None
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()
