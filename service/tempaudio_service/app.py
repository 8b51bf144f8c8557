"""The composition root: builds the services in the lifespan, the routes of each API family
(``tts_api``, ``openai_api``, ``status_api``, the web console's ``console_api``) and the
middleware (``middleware``)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import replace

import anyio
import anyio.to_thread
from starlette.applications import Starlette

from tempaudio_service.access.identity import Authenticator, KubernetesLookups, Lookups
from tempaudio_service.audio import repeat_cache
from tempaudio_service.audio.pool import SynthesisPool
from tempaudio_service.audio.services import Clock, Services, utc_now
from tempaudio_service.core.config import ConfigError
from tempaudio_service.core.metrics import Metrics
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.http import console_api, jobs_api, openai_api, status_api, tts_api
from tempaudio_service.http.middleware import (
    EXCEPTION_HANDLERS,
    BrowserHostMiddleware,
    DefaultHeadersMiddleware,
    ErrorMiddleware,
    MetricsMiddleware,
)
from tempaudio_service.jobs.callbacks import signer
from tempaudio_service.jobs.engine import JobEngine
from tempaudio_service.jobs.workers import JobWorkers
from tempaudio_service.policy.kube_client import api_client
from tempaudio_service.policy.policy_sources import PolicySource, policy_source, static_source
from tempaudio_service.speech.synth import PiperSynthesizer
from tempaudio_service.speech.voices import Synthesizer
from tempaudio_service.storage.repository import AudioRepository
from tempaudio_service.storage.store import AudioStore, Stores
from tempaudio_service.storage.voice_objects import S3ModelFetcher

# The jobs' routes first: /tts/jobs/{id} would otherwise match /tts/{date}/{audio_id}.
ROUTES = [*jobs_api.ROUTES, *tts_api.ROUTES, *status_api.ROUTES, *openai_api.ROUTES]


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
        app_metrics.follow_policy_view(
            lambda: source.current().age(time.monotonic()), settings.policy_max_staleness_seconds
        )
        known = {}
        if store is not None:
            known[source.current().resolve(None, time.monotonic()).storage] = store
        local_endpoint = settings.s3_endpoint_url if settings.local_aws else None
        threads = storage_threads(settings)
        services = Services(
            settings=settings,
            synth=loaded,
            policies=source,
            stores=Stores(
                timeout_seconds=settings.io_timeout_seconds,
                local_endpoint=local_endpoint,
                known=known,
                connections=threads,  # each client keeps a connection per storage thread
            ),
            repository=AudioRepository(
                budget_seconds=settings.io_timeout_seconds, threads=threads, metrics=app_metrics
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
        signer(settings.webhook_secret)  # a malformed key is a usage error now
        app.state.jobs = JobEngine.create(services)
        try:
            async with anyio.create_task_group() as workers:
                workers.start_soon(JobWorkers(app.state.jobs).run)
                try:
                    yield
                finally:
                    workers.cancel_scope.cancel()
        finally:
            source.stop()
            await services.repository.close()

    app = Starlette(
        routes=[*ROUTES, *(console_api.ROUTES if settings.console else [])],
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    # No redirect from a path with a trailing slash: Starlette's would name the client's
    # Host in its Location (GET /voices/ with Host: evil.example -> http://evil.example/...).
    # Such a path is a 404 like any other unknown one.
    app.router.redirect_slashes = False
    # Innermost: a refused browser is counted, audited, framed with nosniff like any answer.
    app.add_middleware(BrowserHostMiddleware, allowed=settings.console_hosts)
    app.add_middleware(MetricsMiddleware, metrics=app_metrics)
    app.add_middleware(DefaultHeadersMiddleware)
    app.add_middleware(ErrorMiddleware)
    return app


def storage_threads(settings: ServiceSettings) -> int:
    """The threads that call S3 and DynamoDB: two per request admitted at once (running or
    queued: its object and its item), at least 8 (readiness, quotas, undoing)."""
    return max(8, 2 * (settings.synth_workers + settings.synth_queue))


def load_synthesizer(settings: ServiceSettings) -> PiperSynthesizer:
    """The Piper voices, checked against the settings (``ConfigError`` names a mistake)."""
    synth = PiperSynthesizer(
        settings.voices_dir,
        intra_op_threads=settings.onnx_intra_threads,
        idle_threads=settings.onnx_idle_threads,
        max_chunk_phonemes=settings.max_chunk_phonemes,
        max_audio_seconds=settings.max_audio_seconds,
        model_cache=settings.model_cache,
        voice_cache=settings.voice_cache,
        fetcher=model_fetcher(settings),
        max_resident_voices=settings.max_resident_voices,
    )
    check_voices(settings, synth)
    return synth


def model_fetcher(settings: ServiceSettings) -> S3ModelFetcher:
    """Where declared voices are fetched from: their own S3 endpoints (the service's by
    default), or the embedded one, which holds every object in the local mode."""
    return S3ModelFetcher(
        timeout_seconds=max(30, settings.io_timeout_seconds),
        region=settings.region,
        endpoint_url=settings.s3_endpoint_url,
        local=settings.local_aws,
    )


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


def shorthand_store(settings: ServiceSettings) -> AudioStore:
    """The store of the built-in policy with the settings' shorthand (tests, benchmarks):
    the one mapping from ``TEMPAUDIO_*`` to a policy's storage, ``policy_sources``'."""
    shorthand = static_source(replace(settings, policy_source="env"))
    storage = shorthand.current().resolve(None, 0.0).storage
    return AudioStore.connect(
        storage, timeout_seconds=settings.io_timeout_seconds, local=settings.local_aws
    )
