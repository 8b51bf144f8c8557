"""What every synthesis endpoint does, whichever API it speaks: one request's audio made
and kept as a pair under its policy, or a copy of audio made before; signed (a stream's
answer is http/audio_streams.py's, with the same pair and ``keep``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol

from tempaudio_service.audio import companions
from tempaudio_service.audio.pairs import (
    Pair,
    abort_later,
    new_pair,
    save,
    signed_item,
    with_duration,
    writer_of,
)
from tempaudio_service.audio.rendering import Rendered, render_whole
from tempaudio_service.audio.repeats import Repeats
from tempaudio_service.audio.resolved import AudioRequest
from tempaudio_service.audio.services import Services
from tempaudio_service.core.errors import PolicyChanged
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.speech.voices import Timing
from tempaudio_service.storage.object_writer import ObjectWriter
from tempaudio_service.wire.tts_request import TtsRequest

logger = logging.getLogger(__name__)


class Made(Protocol):
    """Audio made into an object: how long it is, and its marks (a whole render or a
    stream's)."""

    @property
    def num_frames(self) -> int: ...
    @property
    def voice_rate(self) -> int: ...
    @property
    def timings(self) -> Sequence[Timing]: ...


async def answer(services: Services, request: AudioRequest) -> dict[str, Any]:
    """The signed item of the request's audio: a copy of audio made before when the repeat
    cache has one, else new audio (left for later requests when the cache applies)."""
    policy, tts, caller = request.policy, request.tts, request.caller
    if not Repeats.applies(services, policy, tts):
        services.metrics.repeat_cache.labels("bypass").inc()
        pair = await make(services, request)
        return signed_item(pair.policy, pair.store, pair.item, services.clock())
    repeats = Repeats(services)
    key = repeats.key(policy, tts, caller)
    async with services.making.first(key) as first:
        repeated = await repeats.copy(request, key)
        if repeated is not None:
            services.metrics.repeat_cache.labels("hit").inc()
            return repeated
        services.metrics.repeat_cache.labels("miss").inc()
        if not first:
            logger.debug("an identical request failed to make %s; making it again", key[:12])
        pair = await make(services, request)
        if pair.policy.repeat_cache:
            await repeats.remember(repeats.key(pair.policy, tts, caller), pair)
        return signed_item(pair.policy, pair.store, pair.item, services.clock())


async def render(services: Services, tts: TtsRequest, output: ObjectWriter) -> Rendered:
    """The request's audio, written into ``output`` as it is made (on the pool)."""
    started = time.perf_counter()
    result = await services.pool.run(render_whole, services.synth, tts, output)
    observe(services, tts, time.perf_counter() - started, result.duration_seconds)
    return result


async def make(services: Services, request: AudioRequest) -> Pair:
    """New audio for the request, rendered and stored as a pair under its policy as it is
    served once the audio is made. The object is uploaded as it is made (object_writer.py):
    its key is chosen first, and moved if the policy changed before any part went out."""
    pair = new_pair(services, request, Decimal(0))
    writer = writer_of(pair)
    try:
        rendered = await render(services, request.tts, writer)
        pair = _rechecked(services, pair, request, writer)
    except BaseException:
        abort_later(services, writer)
        raise
    return await keep(services, pair, writer, request.tts, rendered)


async def keep(
    services: Services,
    pair: Pair,
    writer: ObjectWriter,
    tts: TtsRequest,
    made: Made,
    *,
    url_out: bool = False,
) -> Pair:
    """Audio made into ``writer`` kept as ``pair``: its duration and companions (speech
    marks, captions) found, then the objects and the item written (what fails is undone).
    ``url_out``: the audio's id and URL are already out (a stream's headers), so the item
    is written only once its object exists; otherwise both at once."""
    frames, rate = made.num_frames, made.voice_rate
    pair = with_duration(pair, frames, rate)
    files = companions.files(tts, pair.item, made.timings, frames, rate)
    await save(services, pair, writer, files, overlap=not url_out)
    return pair


def _rechecked(services: Services, pair: Pair, request: AudioRequest, writer: ObjectWriter) -> Pair:
    """The pair under the policy as served now: a changed retention or storage applies to
    the pair (a fresh key), unless parts already went out under the old one."""
    policy = services.recheck(pair.policy)
    if _place_and_time(policy) == _place_and_time(pair.policy):
        return pair  # an edit of who may ask or what is said: the pair stands
    if writer.uploading:
        raise PolicyChanged(
            f"policy {policy.name} changed while its audio was being stored; nothing was kept:"
            " retry"
        )
    fresh = new_pair(services, request.under(services, policy), Decimal(0))
    writer.retarget(fresh.store, fresh.key)
    return fresh


def _place_and_time(policy: ServedPolicy) -> tuple[object, ...]:
    """What a pair is made of: where its audio lives and for how long."""
    return (policy.key, policy.storage, policy.retention, policy.ttl_attribute)


def observe(services: Services, tts: TtsRequest, seconds: float, audio_seconds: float) -> None:
    services.metrics.synthesis_seconds.labels(tts.voice).observe(seconds)
    services.metrics.audio_seconds.labels(tts.voice).inc(audio_seconds)
