"""``tempaudio-service``: serve the HTTP API (embedded S3 + DynamoDB when no AWS is configured)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tempaudio_service.core.settings import ServiceSettings, SettingsError
from tempaudio_service.http.connections import server_options
from tempaudio_service.http.status_api import PROBE_PATHS
from tempaudio_service.policy.kube_client import api_client
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.policy.policy_sources import PolicySource, policy_source

if TYPE_CHECKING:
    from starlette.applications import Starlette

logger = logging.getLogger("tempaudio_service")
# After the drain, how long uvicorn waits for connections to finish sending answers.
CLOSE_SECONDS = 5
# How many connections the health listener takes (probes and scrapes).
HEALTH_MAX_CONNECTIONS = 32


class HealthServer(uvicorn.Server):
    """The probes' listener (TEMPAUDIO_HEALTH_PORT): runs beside the main server in its
    loop, leaves the signals to it, and stops with it."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class DrainingServer(uvicorn.Server):
    """The first SIGTERM (or SIGINT) drains before uvicorn stops; a second one stops at once.

    uvicorn alone would close its listener and cancel whatever is still running after its
    grace period, which answered queued requests with a plain-text 500. Here readiness
    turns false and new work gets ``503 shutting_down`` while admitted work finishes, for
    up to TEMPAUDIO_DRAIN_SECONDS; only then does uvicorn shut down.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        app: Starlette,
        health: uvicorn.Config | None = None,
        health_sockets: list[socket.socket] | None = None,
    ) -> None:
        super().__init__(config)
        self._health_sockets = health_sockets
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        self._drain: asyncio.Task[None] | None = None
        self._health = None if health is None else HealthServer(health)
        self._health_task: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        if self._health is not None and self.started:
            # After the lifespan: the probes see the services it built.
            self._health_task = self._loop.create_task(self._health.serve(self._health_sockets))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await super().shutdown(sockets)
        if self._health is not None and self._health_task is not None:
            self._health.should_exit = True
            await self._health_task

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or not self.started or self._loop is None:
            self.should_exit = self.force_exit = True
            return
        self._draining = True
        logger.info("received %s: draining", signal.Signals(sig).name)
        # A signal handler may interrupt the loop anywhere: hand over through its self-pipe.
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._drain = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await self._app.state.services.drain()
        finally:
            self.should_exit = True


def health_app(app: ASGIApp) -> ASGIApp:
    """The service's probes and metrics, and nothing else, for the health listener."""

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in PROBE_PATHS:
            await app(scope, receive, send)
            return
        if scope["type"] == "http":
            body = {"error": "not_found", "message": "the health port serves only probes"}
            await JSONResponse(body, status_code=404)(scope, receive, send)

    return serve


def server_configs(
    app: Starlette, settings: ServiceSettings
) -> tuple[uvicorn.Config, uvicorn.Config | None]:
    """The main listener's uvicorn configuration, and the health listener's (or None)."""
    options = server_options(
        header_timeout_seconds=settings.header_timeout_seconds,
        max_header_bytes=settings.max_header_bytes,
        max_connections=settings.max_connections,
    )
    main = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        # Admitted work has had its drain time already; this only lets answers go out.
        timeout_graceful_shutdown=CLOSE_SECONDS,
        **options,
    )
    if not settings.health_port:
        return main, None
    health_options = options | {"limit_concurrency": HEALTH_MAX_CONNECTIONS}
    health = uvicorn.Config(
        health_app(app),
        host=settings.host,
        port=settings.health_port,
        log_config=None,
        lifespan="off",
        timeout_graceful_shutdown=CLOSE_SECONDS,
        **health_options,
    )
    return main, health


# Flags are a spelling of the variables: each one sets its TEMPAUDIO_* variable.
FLAG_VARIABLES = {
    "host": "TEMPAUDIO_HOST",
    "port": "TEMPAUDIO_PORT",
    "log_format": "TEMPAUDIO_LOG_FORMAT",
    "policy": "TEMPAUDIO_POLICY_FILE",
}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="tempaudio-service",
        description="Text-to-speech to temporary S3 audio. Configure with TEMPAUDIO_* variables.",
    )
    parser.add_argument("--host", help="listen address (TEMPAUDIO_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (TEMPAUDIO_PORT, default 8080)")
    parser.add_argument(
        "--log-format", choices=["text", "json"], help="log format (TEMPAUDIO_LOG_FORMAT)"
    )
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="serve the TempAudioPolicy documents of this YAML file (TEMPAUDIO_POLICY_FILE);"
        " default: the built-in policy (docs/concepts/policies.md)",
    )
    return parser.parse_args(argv)


def configured(argv: Sequence[str] | None) -> tuple[ServiceSettings, PolicySource]:
    """The settings (flags over variables) and the policy source; ``SettingsError`` names
    the first mistake."""
    args = parse_args(argv)
    environ = dict(os.environ)
    for flag, variable in FLAG_VARIABLES.items():
        value = getattr(args, flag)
        if value is not None:
            environ[variable] = str(value)
    settings = ServiceSettings.from_env(environ)
    policies = policy_source(settings)
    if settings.auth == "serviceaccount" or settings.policy_source == "kubernetes":
        api_client()  # the Kubernetes API must be reachable in principle: say so now
    return settings, policies


def listeners(settings: ServiceSettings) -> tuple[list[socket.socket], list[socket.socket] | None]:
    """Bound here, so that a port in use is a usage error, not a traceback."""
    main = [bind(settings.host, settings.port)]
    health = [bind(settings.host, settings.health_port)] if settings.health_port else None
    return main, health


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings, policies = configured(argv)
        sockets, health_sockets = listeners(settings)
    except SettingsError as error:
        return _usage_error(str(error))
    except OSError as error:
        return _usage_error(f"cannot listen on {settings.host}, {error.strerror or error}")

    from tempaudio_service.core.logsetup import configure_logging

    from .app import create_app, load_synthesizer, model_fetcher

    configure_logging(settings.log_format, settings.log_level)
    try:
        synth = load_synthesizer(settings)
    except (SettingsError, OSError) as error:
        return _usage_error(str(error))
    with contextlib.ExitStack() as stack:
        if settings.local_aws:
            settings, policies = _embedded_storage(stack, settings, policies)
            synth.use_fetcher(model_fetcher(settings))
        logger.info("starting with %s", settings.describe())
        app = create_app(settings, synth=synth, policies=policies)
        main_config, health_config = server_configs(app, settings)
        DrainingServer(main_config, app, health_config, health_sockets).run(sockets=sockets)
    return 0


def _embedded_storage(
    stack: contextlib.ExitStack, settings: ServiceSettings, policies: PolicySource
) -> tuple[ServiceSettings, PolicySource]:
    """An embedded S3 + DynamoDB (moto server) with every policy's bucket and table."""
    from tempaudio_service.storage.embedded import LocalAws
    from tempaudio_service.storage.store import Stores

    local = stack.enter_context(LocalAws(port=settings.local_aws_port))
    settings = settings.with_endpoint(local.endpoint_url)
    if settings.policy_source == "env":
        policies = policy_source(settings)  # the shorthand now names the endpoint
    stores = Stores(timeout_seconds=30, local_endpoint=local.endpoint_url)
    for entry in policies.current().entries.values():
        if isinstance(entry, ServedPolicy):
            stores.get(entry.storage).ensure_resources(entry.ttl_attribute)
    if settings.jobs_queue_url is None:
        settings = replace(settings, jobs_queue_url=_embedded_queue(settings))
    return settings, policies


def _embedded_queue(settings: ServiceSettings) -> str:
    """The job queue of the embedded mode, in its moto server."""
    from tempaudio_service.storage.aws_clients import make_sqs_client
    from tempaudio_service.storage.job_queue import ensure_queue

    sqs = make_sqs_client(
        region=settings.region,
        endpoint_url=settings.sqs_endpoint_url,
        timeout_seconds=30,
        local=True,
    )
    return ensure_queue(sqs, "tempaudio-jobs")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket as uvicorn binds one (IPv6 for an address with a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise OSError(error.errno, f"port {port}: {error.strerror}") from None
    sock.set_inheritable(True)
    return sock


def _usage_error(message: str) -> int:
    print(f"tempaudio-service: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
