"""Embedded S3 + DynamoDB: moto's server on 127.0.0.1, spoken to over HTTP by boto3."""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Self

logger = logging.getLogger(__name__)


class LocalAws:
    """Run moto's threaded server on a loopback port for the life of the context."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as error:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "the embedded local mode needs moto[server]: pip install 'tempaudio[local]'"
            ) from error
        # moto logs every request through werkzeug; keep the service log readable.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self.endpoint_url = ""

    def __enter__(self) -> Self:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        logger.info("embedded S3 + DynamoDB (moto server) listening on %s", self.endpoint_url)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.stop()
