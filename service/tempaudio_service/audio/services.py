"""What the lifespan builds and every endpoint uses: the synthesizer, policies, storage,
pool and metrics, with readiness and the drain."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from typing import Any

import anyio
from starlette.requests import ClientDisconnect, Request

from tempaudio_service.access.identity import Authenticator
from tempaudio_service.audio.pool import SynthesisPool
from tempaudio_service.audio.repeat_cache import RepeatCache
from tempaudio_service.core.errors import (
    BodyTimeout,
    BodyTooLarge,
    ClientWentAway,
    MalformedJson,
    ShuttingDown,
    StorageUnavailable,
    TempAudioError,
    UnsupportedMediaType,
    cut,
)
from tempaudio_service.core.metrics import Metrics
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.policy.policies import PolicyBook, ServedPolicy
from tempaudio_service.policy.policy_sources import PolicySource
from tempaudio_service.speech.voices import Synthesizer
from tempaudio_service.storage.repository import AudioRepository
from tempaudio_service.storage.store import AudioStore, Stores

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]
# /readyz answers from a check at most this old, so probes never queue storage calls.
READY_CACHE_SECONDS = 2.0
# The charset a JSON body may name: JSON's own encoding (RFC 8259), however it is spelled.
UTF8_NAMES = frozenset({"utf-8", "utf8"})


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
        checks = store.checks()
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
        # Exported as well: in an outage every pod is unready and nothing writes, so no
        # write fails, but the kubelet keeps probing and Prometheus keeps scraping.
        for name in checks:
            repository.metrics.storage_ready.labels(name).set(0 if name in problems else 1)
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


class SingleFlight:
    """Identical requests in flight wait for the first one instead of all synthesizing:
    a burst of one prompt (a notification to many users) is synthesized once, and the
    others are served as repeats of it."""

    def __init__(self) -> None:
        self._making: dict[str, anyio.Event] = {}
        self.waiting = 0  # requests waiting for an identical one to end

    @contextlib.asynccontextmanager
    async def first(self, key: str) -> AsyncIterator[bool]:
        """Yields True to the first request for ``key``, after which the others, having
        waited for it to end, get False (and look again for what it made)."""
        making = self._making.get(key)
        if making is not None:
            self.waiting += 1
            try:
                await making.wait()
            finally:
                self.waiting -= 1
            yield False
            return
        done = self._making[key] = anyio.Event()
        try:
            yield True
        finally:
            del self._making[key]
            done.set()


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
    repeat_cache: RepeatCache = field(default_factory=RepeatCache)
    # None: callers are not authenticated (TEMPAUDIO_AUTH=none).
    authenticator: Authenticator | None = None
    making: SingleFlight = field(default_factory=SingleFlight)
    readiness: Readiness = field(default_factory=Readiness)
    draining: Draining = field(default_factory=Draining)

    def book(self) -> PolicyBook:
        book = self.policies.current()
        self.synth.declare(book.voices)  # cheap when unchanged: one comparison
        return book

    def served(self, requested: str | None) -> tuple[ServedPolicy, AudioStore]:
        """The policy a request gets and the store that holds its audio."""
        try:
            policy = self.book().resolve(requested, time.monotonic())
        except TempAudioError as error:
            self.metrics.policy_refusals.labels(error.code).inc()
            raise
        return policy, self.stores.get(policy.storage)

    def recheck(self, policy: ServedPolicy) -> ServedPolicy:
        """``policy`` as served now, where a request must not go on under an older one (after
        a synthesis, before storing): a changed retention or storage applies to the pair,
        a policy no longer served refuses it."""
        return self.served(policy.key)[0]

    async def drain(self) -> None:
        """Kubernetes-style shutdown: stop taking work, let admitted work finish within
        the drain time, refuse what is left, and wait for undoing of failed writes."""
        self.draining.started = True
        self.pool.close()
        logger.info(
            "draining: %d request(s) admitted, up to %d s",
            self.pool.admitted,
            self.settings.drain_seconds,
        )
        with anyio.move_on_after(self.settings.drain_seconds):
            await self.draining.wait_idle()
        self.pool.abandon()
        # Past synthesis, storing is bounded by two storage budgets.
        await self.draining.wait_idle()
        await self.repository.settle()


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json`` or a ``+json`` type, parameters (charset) aside (pure)."""
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def charset_of(content_type: str) -> str | None:
    """The ``charset`` parameter of a Content-Type, lower case, quoted or not, or None (pure):
    the standard library's reading of MIME parameters (RFC 2045 and 2231)."""
    header = Message()
    header["content-type"] = content_type
    return header.get_content_charset()


class DuplicateKey(ValueError):
    """A JSON object names one key twice: which value was meant is not known."""


def _unique_keys(pairs: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``' object hook: an object, unless it names a key twice (I-JSON, RFC 7493:
    a parser would otherwise keep the last value, another one the first)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise DuplicateKey(f"the body names the key {cut(key)!r} twice in one object")
        seen.add(key)
    return dict(pairs)


def _check_media_type(content_type: str | None) -> None:
    """JSON, in UTF-8 (RFC 8259: the only encoding of JSON between systems); else 415."""
    if content_type is None or not is_json_media_type(content_type):
        shown = (content_type or "none")[:60]
        raise UnsupportedMediaType(
            f"the body must be JSON with Content-Type: application/json; got {shown}"
        )
    charset = charset_of(content_type)
    if charset is not None and charset not in UTF8_NAMES:
        raise UnsupportedMediaType(f"the body must be JSON in UTF-8; got charset={cut(charset)}")


async def read_json(request: Request, limit: int, timeout_seconds: float) -> Any:
    _check_media_type(request.headers.get("content-type"))
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body has {declared[:20]} bytes; the limit is {limit}")
    body = bytearray()
    with anyio.move_on_after(timeout_seconds) as deadline:
        try:
            async for chunk in request.stream():
                body.extend(chunk)
                if len(body) > limit:
                    raise BodyTooLarge(f"the body is larger than the limit of {limit} bytes")
        except ClientDisconnect:
            raise ClientWentAway("the client went away while sending its body") from None
    if deadline.cancelled_caught:
        raise BodyTimeout(f"the body did not arrive within {timeout_seconds:g} s")
    try:
        return json.loads(body, object_pairs_hook=_unique_keys)
    except DuplicateKey as error:
        raise MalformedJson(str(error)) from None
    # ValueError covers bad UTF-8, bad JSON and integers over Python's 4,300-digit limit.
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)[:200]
        raise MalformedJson(f"the body is not valid JSON: {reason}") from None
