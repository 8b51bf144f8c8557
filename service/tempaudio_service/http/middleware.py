"""How every answer is framed, whatever its route: domain errors as JSON (OpenAI's shape under
``/v1``), one log line and a JSON 500 for the unexpected, metrics and the audit line of every
request, ``nosniff`` and ``no-store``, and a browser's request refused unless it names a
console host."""

from __future__ import annotations

import logging
import time

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tempaudio_service.core import hosts
from tempaudio_service.core.errors import TempAudioError, UnknownHost
from tempaudio_service.core.metrics import Metrics
from tempaudio_service.http import admission, openai_api

logger = logging.getLogger("tempaudio_service.app")


def _error_response(error: TempAudioError) -> JSONResponse:
    return JSONResponse(
        {"error": error.code, "message": error.message},
        status_code=error.status_code,
        headers=error.headers,
    )


async def domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TempAudioError)
    admission.note_outcome(request, exc.code)
    if openai_api.is_openai_path(request.url.path):
        return openai_api.domain_error_response(exc)
    return _error_response(exc)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    if openai_api.is_openai_path(request.url.path):
        return openai_api.error_response(exc.status_code, code, exc.detail, exc.headers)
    return JSONResponse(
        {"error": code, "message": exc.detail}, status_code=exc.status_code, headers=exc.headers
    )


INTERNAL_ERROR = {"error": "internal_error", "message": "internal error"}


class ErrorMiddleware:
    """Outermost: an unexpected error is logged once, with its traceback, and answered as
    JSON; Starlette's own last-resort handler would log it again and re-raise it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if started:
                raise
            await JSONResponse(INTERNAL_ERROR, status_code=500)(scope, receive, send)


class MetricsMiddleware:
    """Count and time every request by its route template, and write the audit line of
    those that make or read audio (admission.py)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()
        body_read = scope["method"] in ("GET", "HEAD")

        async def receive_noting_body() -> Message:
            nonlocal body_read
            message = await receive()
            body_read = body_read or (
                message["type"] == "http.request" and not message.get("more_body", False)
            )
            return message

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # An answer to a client already gone is lost: the audit line says so. Asked
                # only once the body is read (asking earlier would invite the rest of it,
                # with a 100 Continue).
                if body_read and admission.answer_is_audited(scope) and await _client_gone(receive):
                    admission.note_client_gone(scope)
            await send(message)

        try:
            await self.app(scope, receive_noting_body, send_with_status)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(template).observe(seconds)
            admission.write_audit_of(scope, status, seconds)


async def _client_gone(receive: Receive) -> bool:
    """Whether the client has disconnected, without waiting (as Starlette's
    ``Request.is_disconnected``); only asked once the request's body is no longer read."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        for _ in range(2):  # a body never read comes first
            message = await receive()
            if message["type"] == "http.disconnect":
                return True
            if message.get("more_body"):
                break
    return False


# Every answer carries these unless its route set its own. nosniff: a browser never runs a
# JSON error or an audio file as something else. no-store: answers hold presigned URLs (in
# a body, in X-Tempaudio-Url, in events) and audio made for one request, which no browser or
# proxy may keep; the console's files say no-cache with an ETag instead (console_api.py).
DEFAULT_HEADERS = (("x-content-type-options", "nosniff"), ("cache-control", "no-store"))


class DefaultHeadersMiddleware:
    """Sets ``DEFAULT_HEADERS`` on every answer that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_defaults(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in DEFAULT_HEADERS:
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_defaults)


class BrowserHostMiddleware:
    """A browser's request (``hosts.is_browser``) must name a host of
    TEMPAUDIO_CONSOLE_HOSTS, else ``421 unknown_host``: a page rebound to this address (DNS
    rebinding) reads and speaks nothing. Other clients are let through whatever their Host."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or hosts.ANY in self.allowed:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host")
        if not hosts.is_browser(headers) or hosts.is_allowed(host, self.allowed):
            await self.app(scope, receive, send)
            return
        name = hosts.host_name(host or "")[:64]
        logger.info("refused a browser's %s %s for host %r", scope["method"], scope["path"], name)
        error = UnknownHost(
            f"a browser reached this service as {name!r}, not a host of TEMPAUDIO_CONSOLE_HOSTS"
            " (docs/console.md)"
        )
        if openai_api.is_openai_path(scope["path"]):
            response = openai_api.domain_error_response(error)
        else:
            response = _error_response(error)
        await response(scope, receive, send)


EXCEPTION_HANDLERS = {TempAudioError: domain_error, HTTPException: http_error}
