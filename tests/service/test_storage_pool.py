"""The boto3 clients keep a connection for each storage thread (``app.storage_threads``):
calls that run at once never open connections that urllib3 then drops with its "Connection
pool is full" warning, in bursts under load."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from starlette.testclient import TestClient

from tempaudio_service.app import create_app, storage_threads
from tempaudio_service.core.settings import ServiceSettings
from tests.conftest import ToneSynthesizer
from tests.service.conftest import NOW

WAIT = 10.0


class HeldEndpoint(ThreadingHTTPServer):
    """Answers HEAD (S3's HeadBucket) once ``at_once`` requests are in flight together, so
    that many connections are open at the same time, whatever the threads' timing."""

    daemon_threads = True

    def __init__(self, at_once: int) -> None:
        super().__init__(("127.0.0.1", 0), _Held)
        self.together = threading.Barrier(at_once)
        self.most_at_once = 0
        self._in_flight = 0
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.most_at_once = max(self.most_at_once, self._in_flight)

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1


class _Held(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client keeps each connection for reuse
    server: HeldEndpoint

    def do_HEAD(self) -> None:
        self.server.enter()
        # A broken barrier is answered all the same: the test reads most_at_once.
        with contextlib.suppress(threading.BrokenBarrierError):
            self.server.together.wait(WAIT)
        self.server.leave()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def held_endpoint(at_once: int) -> Iterator[HeldEndpoint]:
    server = HeldEndpoint(at_once)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_as_many_calls_at_once_as_storage_threads_keep_their_connections(
    settings: ServiceSettings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = replace(settings, synth_workers=1, synth_queue=7, io_timeout_seconds=int(WAIT))
    threads = storage_threads(settings)
    assert threads == 16  # more than botocore's 10 connections a client
    caplog.set_level(logging.WARNING, logger="urllib3")
    with held_endpoint(threads) as endpoint:
        local = settings.with_endpoint(f"http://127.0.0.1:{endpoint.server_port}")
        app = create_app(local, synth=ToneSynthesizer(), clock=lambda: NOW)
        with TestClient(app):
            services = app.state.services
            store = services.stores.get(services.served(None)[0].storage)

            async def all_at_once() -> None:
                calls = [services.repository.call("S3", store.check_s3) for _ in range(threads)]
                await asyncio.gather(*calls)

            asyncio.run(all_at_once())
    assert endpoint.most_at_once == threads
    dropped = [r.getMessage() for r in caplog.records if "pool is full" in r.getMessage()]
    assert dropped == []
