"""The HTTP application: routes, lifespan, error map."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

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
from .errors import (
    AudioNotFound,
    BodyTimeout,
    BodyTooLarge,
    MalformedJson,
    ShuttingDown,
    StorageUnavailable,
    TempAudioError,
)
from .metrics import Metrics
from .openapi import openapi_document
from .policies import PolicyBook, ServedPolicy
from .policy_sources import PolicySource, policy_source
from .pool import SynthesisPool
from .repository import AudioRepository
from .settings import ServiceSettings
from .store import AudioStore, Stores
from .synth import PiperSynthesizer, SynthesisResult, Synthesizer
from .tts_request import TtsRequest, parse_policy_name, parse_tts_request

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]
# /readyz answers from a check at most this old, so probes never queue storage calls.
READY_CACHE_SECONDS = 2.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Readiness:
    """Storage checks run in parallel, shared by concurrent probes, cached briefly."""

    checked_at: float | None = None  # time.monotonic() of the last check; None: never
    problems: dict[str, str] = field(default_factory=dict)
    running: asyncio.Task[dict[str, str]] | None = None

    async def problems_now(self, repository: AudioRepository, store: AudioStore) -> dict[str, str]:
        if self.checked_at is not None and time.monotonic() - self.checked_at < READY_CACHE_SECONDS:
            return self.problems
        if self.running is None:
            check = self._check(repository, store)
            self.running = asyncio.get_running_loop().create_task(check)
        task = self.running
        try:
            return await asyncio.shield(task)
        finally:
            if task.done() and self.running is task:
                self.running = None

    async def _check(self, repository: AudioRepository, store: AudioStore) -> dict[str, str]:
        checks = {"s3": ("S3", store.check_s3), "dynamodb": ("DynamoDB", store.check_dynamodb)}
        outcomes = await asyncio.gather(
            *(repository.call(name, check) for name, check in checks.values()),
            return_exceptions=True,
        )
        problems: dict[str, str] = {}
        for name, outcome in zip(checks, outcomes, strict=True):
            if isinstance(outcome, StorageUnavailable):
                problems[name] = outcome.message
            elif isinstance(outcome, BaseException):
                raise outcome
        self.problems, self.checked_at = problems, time.monotonic()
        return problems


@dataclass
class Draining:
    """Set at SIGTERM: readiness turns false and new work is refused.

    ``in_progress`` counts synthesis requests from admission to answer, so the drain also
    waits for those past synthesis that are still storing their pair.
    """

    started: bool = False
    in_progress: int = 0
    idle: anyio.Event = field(default_factory=anyio.Event)

    @contextlib.asynccontextmanager
    async def tracked(self) -> AsyncIterator[None]:
        if self.started:
            raise ShuttingDown("the service is shutting down; retry on another replica")
        self.in_progress += 1
        try:
            yield
        finally:
            self.in_progress -= 1
            if self.in_progress == 0:
                self.idle.set()
                self.idle = anyio.Event()

    async def wait_idle(self) -> None:
        if self.in_progress:
            await self.idle.wait()


@dataclass(frozen=True)
class Services:
    """What the lifespan builds and every endpoint uses."""

    settings: ServiceSettings
    synth: Synthesizer
    policies: PolicySource
    stores: Stores
    repository: AudioRepository
    pool: SynthesisPool
    metrics: Metrics
    clock: Clock
    readiness: Readiness = field(default_factory=Readiness)
    draining: Draining = field(default_factory=Draining)

    def book(self) -> PolicyBook:
        return self.policies.current()

    def served(self, requested: str | None) -> tuple[ServedPolicy, AudioStore]:
        """The policy a request gets and the store that holds its audio."""
        try:
            policy = self.book().resolve(requested, time.monotonic())
        except TempAudioError as error:
            self.metrics.policy_refusals.labels(error.code).inc()
            raise
        return policy, self.stores.get(policy.storage)

    async def drain(self) -> None:
        """Kubernetes-style shutdown: stop taking work, let admitted work finish within
        the drain time, refuse what is left, and wait for undoing of failed writes."""
        self.draining.started = True
        self.pool.close()
        logger.info(
            "draining: %d request(s) admitted, up to %d s", self.pool.admitted,
            self.settings.drain_seconds,
        )  # fmt: skip
        with anyio.move_on_after(self.settings.drain_seconds):
            await self.draining.wait_idle()
        self.pool.abandon()
        # Past synthesis, storing is bounded by two storage budgets.
        await self.draining.wait_idle()
        await self.repository.settle()


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _read_json(request: Request, limit: int, timeout_seconds: float) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body has {declared[:20]} bytes; the limit is {limit}")
    body = bytearray()
    with anyio.move_on_after(timeout_seconds) as deadline:
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > limit:
                raise BodyTooLarge(f"the body is larger than the limit of {limit} bytes")
    if deadline.cancelled_caught:
        raise BodyTimeout(f"the body did not arrive within {timeout_seconds:g} s")
    try:
        return json.loads(body)
    # ValueError covers bad UTF-8, bad JSON and integers over Python's 4,300-digit limit.
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)[:200]
        raise MalformedJson(f"the body is not valid JSON: {reason}") from None


def _item_response(item: dict[str, Any], url: str, url_expires: int) -> dict[str, Any]:
    """``expires_at`` is when the URL stops working (SigV4 caps it at 7 days);
    ``audio_expires_at`` is when the audio goes (``GET /tts/{date}/{id}`` signs anew until then)."""
    return {
        "audio_id": item["audio_id"],
        "s3_url": url,
        "duration": float(item["duration"]),
        "text": item["text"],
        "voice_id": item["voice_id"],
        "expires_at": datetime.fromtimestamp(url_expires, UTC).isoformat(),
        "audio_expires_at": datetime.fromtimestamp(int(item["ttl"]), UTC).isoformat(),
        "date": item["date"],
    }


def _signed(
    policy: ServedPolicy, store: AudioStore, item: dict[str, Any], now: datetime
) -> JSONResponse:
    key = layout.key_from_s3_uri(item["s3_url"], store.bucket)
    seconds = layout.presign_seconds(now, int(item["ttl"]))
    url = store.presign(key, seconds)
    answer = _item_response(item, url, int(now.timestamp()) + seconds)
    answer["policy"] = policy.name
    return JSONResponse(answer)


async def _synthesize(services: Services, tts: TtsRequest) -> SynthesisResult:
    started = time.perf_counter()
    result = await services.pool.run(services.synth.synthesize, tts.text, tts.voice, tts.options)
    services.metrics.synthesis_seconds.labels(tts.voice).observe(time.perf_counter() - started)
    services.metrics.audio_seconds.labels(tts.voice).inc(result.duration_seconds)
    return result


async def tts_sync(request: Request) -> JSONResponse:
    services = _services(request)
    async with services.draining.tracked():
        return await _tts_sync(services, request)


async def _tts_sync(services: Services, request: Request) -> JSONResponse:
    settings = services.settings
    body = await _read_json(request, settings.max_body_bytes, settings.body_timeout_seconds)
    tts = parse_tts_request(
        body,
        voices=services.synth.voices,
        default_voice=settings.default_voice,
        max_text_chars=settings.max_text_chars,
    )
    # Checked before synthesis (no work for a request that cannot be stored) and after
    # it: the retention, storage and ttl attribute are those in force when the pair is made.
    services.served(tts.policy)
    result = await _synthesize(services, tts)
    policy, store = services.served(tts.policy)
    created = services.clock()
    audio_id = str(uuid.uuid4())
    key = layout.object_key(policy.storage.prefix, created, audio_id)
    item = layout.audio_item(
        created=created,
        audio_id=audio_id,
        bucket=policy.storage.bucket,
        key=key,
        text=tts.text,
        voice_id=tts.voice,
        duration=layout.duration_decimal(result.num_frames, result.sample_rate),
        retention=policy.retention,
        ttl_attribute=policy.ttl_attribute,
    )
    # Shielded: neither a client that disconnects nor shutdown leaves half of the pair.
    with anyio.CancelScope(shield=True):
        await services.repository.save(
            store, key, result.wav, "audio/wav", item, policy.ttl_attribute
        )
    services.metrics.stored.labels(policy.key).inc()  # namespace/name: names repeat
    return _signed(policy, store, item, created)


async def get_audio(request: Request) -> JSONResponse:
    services = _services(request)
    day = str(request.path_params["date"])
    audio_id = str(request.path_params["audio_id"])
    if layout.parse_date(day) is None or not layout.is_valid_audio_id(audio_id):
        raise AudioNotFound(f"no audio {day[:10]}/{audio_id[:36]}")
    policy, store = services.served(parse_policy_name(request.query_params.get("policy")))
    item = await services.repository.call("DynamoDB", store.get_item, day, audio_id)
    now = services.clock()
    # DynamoDB deletes expired items lazily (and moto never does): filter on read.
    if item is None or layout.is_item_expired(item, now):
        raise AudioNotFound(
            f"no audio {day}/{audio_id} under policy {policy.name}, or it has expired"
        )
    return _signed(policy, store, item, now)


async def list_policies(request: Request) -> JSONResponse:
    return JSONResponse(_services(request).book().listing(time.monotonic()))


async def list_voices(request: Request) -> JSONResponse:
    services = _services(request)
    voices = [info.as_json() for _, info in sorted(services.synth.voices.items())]
    return JSONResponse({"default": services.settings.default_voice, "voices": voices})


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    services = _services(request)
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
    Route("/policies", list_policies, methods=["GET"]),
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
    policies: PolicySource | None = None,
) -> Starlette:
    """Build the service; voices, policies and clients load in the lifespan unless given.

    ``store``, when given, holds the audio of the default policy (tests wrap it in faults).
    """
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
                    max_audio_seconds=settings.max_audio_seconds,
                )
            )
        if settings.default_voice not in loaded.voices:
            raise RuntimeError(
                f"default voice {settings.default_voice!r} is not among {sorted(loaded.voices)}"
            )
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
    app.add_middleware(ErrorMiddleware)
    return app


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory tempaudio_service.app:app_from_env`` (AWS endpoints)."""
    return create_app(ServiceSettings.from_env(os.environ))
