"""The HTTP application: routes, lifespan, error map."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tempaudio_api.access import Caller

from . import audio_requests, callers, layout, openai_api, repeat_cache
from .config import ConfigError
from .errors import AudioNotFound, TempAudioError
from .identity import Authenticator, KubernetesLookups, Lookups
from .kube_client import api_client
from .metrics import Metrics
from .openapi import openapi_document
from .policies import ServedPolicy
from .policy_sources import PolicySource, policy_source
from .pool import SynthesisPool
from .repository import AudioRepository
from .schemas import parse_policy_name
from .services import Clock, Services, read_json, services_of, utc_now
from .settings import ServiceSettings
from .store import AudioStore, Stores
from .synth import PiperSynthesizer, Synthesizer
from .tts_request import TtsRequest, parse_tts_request

logger = logging.getLogger(__name__)


async def tts_sync(request: Request) -> JSONResponse:
    services = services_of(request)
    async with services.draining.tracked():
        return await _tts_sync(services, request)


async def _parse(services: Services, request: Request) -> TtsRequest:
    settings = services.settings
    body = await read_json(request, settings.max_body_bytes, settings.body_timeout_seconds)
    return parse_tts_request(
        body,
        voices=services.synth.voices,
        default_voice=settings.default_voice,
        max_text_chars=settings.max_text_chars,
    )


async def _tts_sync(services: Services, request: Request) -> JSONResponse:
    caller = await callers.caller_of(services, request)
    tts = await _parse(services, request)
    # Checked before synthesis (no work for a request that cannot be stored) and after
    # it: the retention, storage and ttl attribute are those in force when the pair is made.
    policy, _ = services.served(tts.policy)
    await callers.admit_synthesis(services, request, caller, policy, tts.text)
    if not (tts.cache and policy.repeat_cache and services.settings.repeat_cache_entries > 0):
        services.metrics.repeat_cache.labels("bypass").inc()
        answer = await _synthesize_and_store(services, tts, caller, remember=False)
    else:
        answer = await _repeat_or_make(services, tts, caller, policy)
    callers.finished_synthesis(
        services, request, policy, caller, answer["duration"], answer["audio_id"],
        cached=answer["cached"],
    )  # fmt: skip
    return JSONResponse(answer)


async def _repeat_or_make(
    services: Services, tts: TtsRequest, caller: Caller | None, policy: ServedPolicy
) -> dict[str, Any]:
    key = repeat_cache.cache_key(tts, policy, None if caller is None else caller.key)
    async with services.making.first(key) as first:
        repeated = await audio_requests.repeat(services, tts, key, caller)
        if repeated is not None:
            services.metrics.repeat_cache.labels("hit").inc()
            return repeated
        services.metrics.repeat_cache.labels("miss").inc()
        if not first:
            logger.debug("an identical request failed to make %s; making it again", key[:12])
        return await _synthesize_and_store(services, tts, caller, remember=True)


async def _synthesize_and_store(
    services: Services, tts: TtsRequest, caller: Caller | None, *, remember: bool
) -> dict[str, Any]:
    rendered = await audio_requests.render(services, tts)
    duration = layout.duration_decimal(rendered.num_frames, rendered.voice_rate)
    pair = audio_requests.new_pair(services, tts, duration, caller)
    await audio_requests.save(services, pair, rendered.audio)
    if remember and pair.policy.repeat_cache:
        audio_requests.remember(services, tts, pair)
    return audio_requests.signed_item(pair.policy, pair.store, pair.item, pair.created)


async def tts_stream(request: Request) -> Response:
    """The body of /tts/sync; the audio streams back as it is made and is stored as well."""
    services = services_of(request)
    caller = await callers.caller_of(services, request)
    tts = await _parse(services, request)
    policy, _ = services.served(tts.policy)
    await callers.admit_synthesis(services, request, caller, policy, tts.text)
    return callers.stream(services, request, tts, caller, policy, keep=True)


async def get_audio(request: Request) -> JSONResponse:
    services = services_of(request)
    day = str(request.path_params["date"])
    audio_id = str(request.path_params["audio_id"])
    if layout.parse_date(day) is None or not layout.is_valid_audio_id(audio_id):
        raise AudioNotFound(f"no audio {day[:10]}/{audio_id[:36]}")
    policy, store = services.served(parse_policy_name(request.query_params.get("policy")))
    caller = await callers.caller_of(services, request)
    item = await services.repository.call("DynamoDB", store.get_item, day, audio_id)
    now = services.clock()
    # DynamoDB deletes expired items lazily (and moto never does): filter on read. Audio
    # the caller may not read is answered as missing: its existence is not told either.
    if (
        item is None
        or not layout.is_item_of(item, policy.key, store.bucket, policy.storage.prefix)
        or layout.is_item_expired(item, now)
        or not await callers.may_read(services, request, policy, caller, item)
    ):
        raise AudioNotFound(
            f"no audio {day}/{audio_id} under policy {policy.name}, or it has expired"
        )
    return JSONResponse(audio_requests.signed_item(policy, store, item, now))


async def list_policies(request: Request) -> JSONResponse:
    return JSONResponse(services_of(request).book().listing(time.monotonic()))


async def list_voices(request: Request) -> JSONResponse:
    services = services_of(request)
    voices = [info.as_json() for _, info in sorted(services.synth.voices.items())]
    return JSONResponse({"default": services.settings.default_voice, "voices": voices})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    services = services_of(request)
    if services.draining.started:
        return JSONResponse({"status": "draining"}, status_code=503)
    problems: dict[str, str] = {}
    book, now = services.book(), time.monotonic()
    if book.stale_for(now) is not None:
        problems["policies"] = book.stale_message("any policy")
    elif book.default is not None:
        # Ready when the default policy is served and its storage answers.
        try:
            policy = book.resolve(None, now)
        except TempAudioError as error:
            problems["policy"] = error.message
        else:
            store = services.stores.get(policy.storage)
            problems.update(await services.readiness.problems_now(services.repository, store))
    if not services.synth.voices:
        problems["voices"] = "no voice loaded"
    if problems:
        return JSONResponse({"status": "not_ready", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready", "voices": sorted(services.synth.voices)})


async def metrics(request: Request) -> Response:
    registry = services_of(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> JSONResponse:
    settings = services_of(request).settings
    return JSONResponse(
        openapi_document(
            max_text_chars=settings.max_text_chars, default_voice=settings.default_voice
        )
    )


ROUTES = [
    Route("/tts/sync", tts_sync, methods=["POST"]),
    Route("/tts/stream", tts_stream, methods=["POST"]),
    Route("/tts/{date}/{audio_id}", get_audio, methods=["GET"]),
    Route("/voices", list_voices, methods=["GET"]),
    Route("/policies", list_policies, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    *openai_api.ROUTES,
]


def _error_response(error: TempAudioError) -> JSONResponse:
    return JSONResponse(
        {"error": error.code, "message": error.message},
        status_code=error.status_code,
        headers=error.headers,
    )


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TempAudioError)
    callers.note_outcome(request, exc.code)
    if openai_api.is_openai_path(request.url.path):
        return openai_api.domain_error_response(exc)
    return _error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
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
    those that make or read audio (callers.py)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # An answer to a client already gone is lost: the audit line says so.
                if callers.answer_is_audited(scope) and await _client_gone(receive):
                    callers.note_client_gone(scope)
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(template).observe(seconds)
            callers.write_audit_of(scope, status, seconds)


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


class NoSniffMiddleware:
    """Every answer says ``X-Content-Type-Options: nosniff``: a browser never runs a JSON
    error or an audio file as something else."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("x-content-type-options", "nosniff")
            await send(message)

        await self.app(scope, receive, send_nosniff)


def create_app(
    settings: ServiceSettings,
    *,
    synth: Synthesizer | None = None,
    store: AudioStore | None = None,
    clock: Clock = utc_now,
    policies: PolicySource | None = None,
    lookups: Lookups | None = None,
) -> Starlette:
    """Build the service; voices, policies and clients load in the lifespan unless given.

    ``store``, when given, holds the audio of the default policy (tests wrap it in faults);
    ``lookups``, the TokenReviews and namespace reads of TEMPAUDIO_AUTH=serviceaccount.
    """
    app_metrics = Metrics.create()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loaded = synth
        if loaded is None:
            loaded = await anyio.to_thread.run_sync(load_synthesizer, settings)
        check_voices(settings, loaded)
        source = policies or policy_source(settings)
        source.start()
        known = {}
        if store is not None:
            known[source.current().resolve(None, time.monotonic()).storage] = store
        local_endpoint = settings.s3_endpoint_url if settings.local_aws else None
        services = Services(
            settings=settings,
            synth=loaded,
            policies=source,
            stores=Stores(
                timeout_seconds=settings.io_timeout_seconds,
                local_endpoint=local_endpoint,
                known=known,
            ),
            repository=AudioRepository(
                budget_seconds=settings.io_timeout_seconds,
                threads=max(8, 2 * (settings.synth_workers + settings.synth_queue)),
                metrics=app_metrics,
            ),
            pool=SynthesisPool(
                workers=settings.synth_workers, queue=settings.synth_queue, metrics=app_metrics
            ),
            metrics=app_metrics,
            clock=clock,
            repeat_cache=repeat_cache.RepeatCache(max(1, settings.repeat_cache_entries)),
            authenticator=_authenticator(settings, lookups, clock, app_metrics),
        )
        app.state.services = services
        try:
            yield
        finally:
            source.stop()
            await services.repository.close()

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={TempAudioError: _domain_error, HTTPException: _http_error},
    )
    app.add_middleware(MetricsMiddleware, metrics=app_metrics)
    app.add_middleware(NoSniffMiddleware)
    app.add_middleware(ErrorMiddleware)
    return app


def load_synthesizer(settings: ServiceSettings) -> Synthesizer:
    """The Piper voices, checked against the settings (``ConfigError`` names a mistake)."""
    synth = PiperSynthesizer(
        settings.voices_dir,
        intra_op_threads=settings.onnx_intra_threads,
        idle_threads=settings.onnx_idle_threads,
        max_chunk_phonemes=settings.max_chunk_phonemes,
        max_audio_seconds=settings.max_audio_seconds,
    )
    check_voices(settings, synth)
    return synth


def check_voices(settings: ServiceSettings, synth: Synthesizer) -> None:
    if settings.default_voice not in synth.voices:
        raise ConfigError(
            f"TEMPAUDIO_DEFAULT_VOICE={settings.default_voice!r} is not among the installed"
            f" voices {sorted(synth.voices)}"
        )
    unknown = sorted(set(settings.openai_voices.values()) - set(synth.voices))
    if unknown:
        raise ConfigError(
            f"TEMPAUDIO_OPENAI_VOICES maps to {', '.join(unknown)}, not among"
            f" {sorted(synth.voices)}"
        )


def _authenticator(
    settings: ServiceSettings, lookups: Lookups | None, clock: Clock, metrics: Metrics
) -> Authenticator | None:
    if settings.auth == "none":
        return None
    if lookups is None:
        lookups = KubernetesLookups(api_client(), timeout_seconds=settings.io_timeout_seconds)
    return Authenticator(
        audience=settings.auth_audience,
        cache_seconds=settings.auth_cache_seconds,
        lookups=lookups,
        clock=lambda: clock().timestamp(),
        on_lookup=lambda result: metrics.auth_lookups.labels(result).inc(),
    )


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory tempaudio_service.app:app_from_env`` (AWS endpoints)."""
    return create_app(ServiceSettings.from_env(os.environ))
