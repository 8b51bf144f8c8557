"""The HTTP application: routes, lifespan, error map."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import layout
from .errors import AudioNotFound, BodyTooLarge, MalformedJson, StorageUnavailable, TempAudioError
from .metrics import Metrics
from .openapi import openapi_document
from .pool import SynthesisPool
from .settings import ServiceSettings
from .store import AudioStore
from .synth import PiperSynthesizer, SynthesisResult, Synthesizer
from .tts_request import TtsRequest, parse_tts_request

logger = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Services:
    """What the lifespan builds and every endpoint uses."""

    settings: ServiceSettings
    synth: Synthesizer
    store: AudioStore
    pool: SynthesisPool
    io_limiter: anyio.CapacityLimiter
    metrics: Metrics
    clock: Clock

    async def io(self, func: Callable[..., T], *args: Any) -> T:
        """Run a blocking boto3 call off the event loop."""
        return await anyio.to_thread.run_sync(partial(func, *args), limiter=self.io_limiter)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body has {declared} bytes; the limit is {limit}")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise BodyTooLarge(f"the body is larger than the limit of {limit} bytes")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedJson(f"the body is not valid JSON: {error}") from None


def _item_response(item: dict[str, Any], url: str) -> dict[str, Any]:
    return {
        "audio_id": item["audio_id"],
        "s3_url": url,
        "duration": float(item["duration"]),
        "text": item["text"],
        "voice_id": item["voice_id"],
        "expires_at": datetime.fromtimestamp(int(item["ttl"]), UTC).isoformat(),
        "date": item["date"],
    }


async def _synthesize(services: Services, tts: TtsRequest) -> SynthesisResult:
    started = time.perf_counter()
    result = await services.pool.run(services.synth.synthesize, tts.text, tts.voice, tts.options)
    services.metrics.synthesis_seconds.labels(tts.voice).observe(time.perf_counter() - started)
    services.metrics.audio_seconds.labels(tts.voice).inc(result.duration_seconds)
    return result


async def _store(services: Services, key: str, wav: bytes, item: dict[str, Any]) -> None:
    """Object first, then item; whatever fails is taken back out.

    A write that timed out may still have landed, so the failed write itself is undone too
    (deleting a missing object or item is a no-op). Shielded, so a client that disconnects cannot leave half of
    the pair behind.
    """
    store, failures = services.store, services.metrics.storage_failures
    with anyio.CancelScope(shield=True):
        try:
            await services.io(store.put_audio, key, wav)
        except StorageUnavailable:
            failures.labels("put_object").inc()
            # A PUT that timed out may still land: take it back out, best-effort.
            try:
                await services.io(store.delete_audio, key)
            except StorageUnavailable:
                logger.warning("object %s may land without its item; cleanup removes it", key)
            raise
        try:
            await services.io(store.put_item, item)
        except StorageUnavailable:
            failures.labels("put_item").inc()
            try:
                await services.io(store.delete_item, item["date"], item["audio_id"])
            except StorageUnavailable:
                failures.labels("delete_item").inc()
                logger.error(
                    "item %s/%s may be left without its object", item["date"], item["audio_id"]
                )
            try:
                await services.io(store.delete_audio, key)
            except StorageUnavailable:
                failures.labels("delete_object").inc()
                logger.error("orphan object %s left until the cleanup job removes it", key)
            raise


async def tts_sync(request: Request) -> JSONResponse:
    services = _services(request)
    settings = services.settings
    body = await _read_json(request, settings.max_body_bytes)
    tts = parse_tts_request(
        body,
        voices=services.synth.voices,
        default_voice=settings.default_voice,
        max_text_chars=settings.max_text_chars,
    )
    result = await _synthesize(services, tts)
    created = services.clock()
    audio_id = str(uuid.uuid4())
    key = layout.object_key(settings.prefix, created, audio_id)
    item = layout.audio_item(
        created=created,
        audio_id=audio_id,
        bucket=settings.bucket,
        key=key,
        text=tts.text,
        voice_id=tts.voice,
        duration=layout.duration_decimal(result.num_frames, result.sample_rate),
        retention=settings.retention,
    )
    await _store(services, key, result.wav, item)
    url = services.store.presign(key, layout.presign_seconds(created, item["ttl"]))
    return JSONResponse(_item_response(item, url))


async def get_audio(request: Request) -> JSONResponse:
    services = _services(request)
    day = str(request.path_params["date"])
    audio_id = str(request.path_params["audio_id"])
    if layout.parse_date(day) is None or not layout.is_valid_audio_id(audio_id):
        raise AudioNotFound(f"no audio {day}/{audio_id}")
    item = await services.io(services.store.get_item, day, audio_id)
    now = services.clock()
    # DynamoDB deletes expired items lazily (and moto never does): filter on read.
    if item is None or layout.is_item_expired(item, now):
        raise AudioNotFound(f"no audio {day}/{audio_id}, or it has expired")
    key = layout.key_from_s3_uri(item["s3_url"], services.store.bucket)
    url = services.store.presign(key, layout.presign_seconds(now, int(item["ttl"])))
    return JSONResponse(_item_response(item, url))


async def list_voices(request: Request) -> JSONResponse:
    services = _services(request)
    voices = [info.as_json() for _, info in sorted(services.synth.voices.items())]
    return JSONResponse({"default": services.settings.default_voice, "voices": voices})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    services = _services(request)
    problems = await services.io(services.store.check_ready)
    if not services.synth.voices:
        problems["voices"] = "no voice loaded"
    if problems:
        return JSONResponse({"status": "not_ready", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready", "voices": sorted(services.synth.voices)})


async def metrics(request: Request) -> Response:
    registry = _services(request).metrics.registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


async def openapi(request: Request) -> JSONResponse:
    settings = _services(request).settings
    return JSONResponse(
        openapi_document(
            max_text_chars=settings.max_text_chars, default_voice=settings.default_voice
        )
    )


ROUTES = [
    Route("/tts/sync", tts_sync, methods=["POST"]),
    Route("/tts/{date}/{audio_id}", get_audio, methods=["GET"]),
    Route("/voices", list_voices, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]


def _error_response(error: TempAudioError) -> JSONResponse:
    return JSONResponse(
        {"error": error.code, "message": error.message},
        status_code=error.status_code,
        headers=error.headers,
    )


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TempAudioError)
    return _error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        {"error": code, "message": exc.detail}, status_code=exc.status_code, headers=exc.headers
    )


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"error": "internal_error", "message": "internal error"}, status_code=500)


class MetricsMiddleware:
    """Count and time every request by its route template."""

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
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(template).observe(time.perf_counter() - started)


def create_app(
    settings: ServiceSettings,
    *,
    synth: Synthesizer | None = None,
    store: AudioStore | None = None,
    clock: Clock = utc_now,
) -> Starlette:
    """Build the service; voices and clients load in the lifespan unless given."""
    app_metrics = Metrics.create()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loaded = synth
        if loaded is None:
            loaded = await anyio.to_thread.run_sync(
                partial(
                    PiperSynthesizer,
                    settings.voices_dir,
                    intra_op_threads=settings.onnx_intra_threads,
                    idle_threads=settings.onnx_idle_threads,
                    max_chunk_phonemes=settings.max_chunk_phonemes,
                )
            )
        if settings.default_voice not in loaded.voices:
            raise RuntimeError(
                f"default voice {settings.default_voice!r} is not among {sorted(loaded.voices)}"
            )
        app.state.services = Services(
            settings=settings,
            synth=loaded,
            store=store or AudioStore.from_settings(settings),
            pool=SynthesisPool(
                workers=settings.synth_workers, queue=settings.synth_queue, metrics=app_metrics
            ),
            io_limiter=anyio.CapacityLimiter(
                max(8, 2 * settings.synth_workers + settings.synth_queue)
            ),
            metrics=app_metrics,
            clock=clock,
        )
        yield

    app = Starlette(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={
            TempAudioError: _domain_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
    )
    app.add_middleware(MetricsMiddleware, metrics=app_metrics)
    return app


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory tempaudio_service.app:app_from_env`` (AWS endpoints)."""
    return create_app(ServiceSettings.from_env(os.environ))
