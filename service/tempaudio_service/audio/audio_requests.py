"""What every synthesis endpoint does, whichever API it speaks: render on the pool, store the
pair under a policy, repeat a copy, sign (a stream's answer is audio_streams.py's)."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import anyio

from tempaudio_api.access import Caller
from tempaudio_service.audio import companions
from tempaudio_service.audio.rendering import Rendered, render_whole
from tempaudio_service.audio.repeat_cache import CachedAudio, from_shared_entry, shared_entry
from tempaudio_service.audio.services import Services
from tempaudio_service.core.errors import PolicyChanged, StorageUnavailable
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.storage import layout
from tempaudio_service.storage.layout import AudioItem
from tempaudio_service.storage.object_writer import ObjectWriter
from tempaudio_service.storage.repository import Companion
from tempaudio_service.storage.store import AudioStore, SourceMissing
from tempaudio_service.wire.schemas import ResponseFormat, TtsItem
from tempaudio_service.wire.tts_request import TtsRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pair:
    """An object and its item, about to be stored under a policy."""

    policy: ServedPolicy
    store: AudioStore
    item: AudioItem
    created: datetime

    @property
    def key(self) -> str:
        return self.item.key


async def render(services: Services, tts: TtsRequest, output: ObjectWriter) -> Rendered:
    """The request's audio, written into ``output`` as it is made (on the pool)."""
    started = time.perf_counter()
    result = await services.pool.run(render_whole, services.synth, tts, output)
    observe(services, tts, time.perf_counter() - started, result.duration_seconds)
    return result


async def make(
    services: Services, policy: ServedPolicy, tts: TtsRequest, caller: Caller | None = None
) -> Pair:
    """New audio for the request, rendered and stored as a pair under ``policy`` as it is
    served once the audio is made. The object is uploaded as it is made (object_writer.py):
    its key is chosen first, and moved if the policy changed before any part went out."""
    pair = new_pair(services, policy, tts, Decimal(0), caller)
    writer = writer_of(pair)
    try:
        rendered = await render(services, tts, writer)
        pair = _rechecked(services, pair, tts, caller, writer)
    except BaseException:
        abort_later(services, writer)
        raise
    frames, rate = rendered.num_frames, rendered.voice_rate
    pair = with_duration(pair, frames, rate)
    files = companions.files(tts, pair.item, rendered.timings, frames, rate)
    await save(services, pair, writer, files)
    return pair


def writer_of(pair: Pair) -> ObjectWriter:
    return ObjectWriter(pair.store, pair.key, pair.item.content_type)


def with_duration(pair: Pair, num_frames: int, voice_rate: int) -> Pair:
    """The pair with its audio's duration, once it is made."""
    duration = layout.duration_decimal(num_frames, voice_rate)
    return replace(pair, item=pair.item.with_duration(duration))


def _rechecked(
    services: Services, pair: Pair, tts: TtsRequest, caller: Caller | None, writer: ObjectWriter
) -> Pair:
    """The pair under the policy as served now: a changed retention or storage applies to
    the pair (a fresh key), unless parts already went out under the old one."""
    policy = services.recheck(pair.policy)
    if policy == pair.policy:
        return pair
    if writer.uploading:
        raise PolicyChanged(
            f"policy {policy.name} changed while its audio was being stored; nothing was kept:"
            " retry"
        )
    fresh = new_pair(services, policy, tts, Decimal(0), caller)
    writer.retarget(fresh.store, fresh.key)
    return fresh


def abort_later(services: Services, writer: ObjectWriter) -> None:
    """Drop the parts of an object that will not be completed (none, for nearly all)."""
    if writer.uploading:
        services.repository.later("S3", writer.abort)


def observe(services: Services, tts: TtsRequest, seconds: float, audio_seconds: float) -> None:
    services.metrics.synthesis_seconds.labels(tts.voice).observe(seconds)
    services.metrics.audio_seconds.labels(tts.voice).inc(audio_seconds)


def new_pair(
    services: Services,
    policy: ServedPolicy,
    tts: TtsRequest,
    duration: Decimal,
    caller: Caller | None = None,
) -> Pair:
    """The key and item of new audio under ``policy``, made for ``caller``."""
    store = services.stores.get(policy.storage)
    voice_rate = services.synth.voices[tts.voice].sample_rate
    created = services.clock()
    audio_id = str(uuid.uuid4())
    fmt = tts.audio_format
    key = layout.object_key(policy.storage.prefix, created, audio_id, fmt.extension)
    item = layout.new_audio_item(
        created=created,
        audio_id=audio_id,
        bucket=policy.storage.bucket,
        key=key,
        text=tts.text,
        voice_id=tts.voice,
        duration=duration,
        retention=policy.retention,
        ttl_attribute=policy.ttl_attribute,
        audio_format=fmt.name,
        sample_rate=None if tts.sample_rate == voice_rate else tts.sample_rate,
        caller=None if caller is None else caller.key,
        policy=policy.key,
        companions=companions.keys_for(tts, key),
    )
    return Pair(policy, store, item, created)


async def save(
    services: Services, pair: Pair, audio: ObjectWriter, beside: tuple[Companion, ...] = ()
) -> None:
    # Shielded: neither a client that disconnects nor shutdown leaves half of the pair.
    with anyio.CancelScope(shield=True):
        await services.repository.save(pair.store, audio, pair.item, beside)
    services.metrics.stored.labels(pair.policy.key).inc()  # namespace/name: names repeat


async def repeat(
    services: Services,
    policy: ServedPolicy,
    tts: TtsRequest,
    key: str,
    caller: Caller | None = None,
) -> dict[str, Any] | None:
    """The answer for a repeat, from a copy of the audio made before; None: not cached."""
    now = services.clock()
    source = services.repeat_cache.find(key, int(now.timestamp()), policy.retention)
    if source is None:  # this replica has not seen it: another may have
        source = await _shared_find(services, policy, key, int(now.timestamp()))
    if source is None:
        return None
    if services.recheck(policy) != policy:  # changed since the key was made: not the same
        return None
    pair = new_pair(services, policy, tts, source.duration, caller)
    # The source has the same companions: what it was made with is part of the key.
    copies = companions.copies(source.key, pair.item)
    try:
        with anyio.CancelScope(shield=True):
            await services.repository.save_copy(pair.store, source.key, pair.item, copies)
    except SourceMissing:
        services.repeat_cache.forget(key)
        services.repository.later("DynamoDB", pair.store.repeats.forget_repeat, key, source.key)
        return None
    services.metrics.stored.labels(pair.policy.key).inc()
    await remember(services, key, pair)  # the copy lives longer than its source
    return signed_item(pair.policy, pair.store, pair.item, pair.created, cached=True)


async def remember(services: Services, key: str, pair: Pair) -> None:
    """``pair`` is what a later request with ``key`` (repeat_cache.cache_key) may copy, on
    any replica: remembered here and in the policy's table before the answer goes out (a
    failure there only costs other replicas a synthesis, and is logged)."""
    audio = CachedAudio(
        key=pair.key,
        expires=pair.item.ttl,
        duration=pair.item.duration,
        sample_rate=pair.item.sample_rate,
    )
    services.repeat_cache.remember(key, audio)
    entry = shared_entry(audio)
    try:
        await services.repository.call(
            "DynamoDB", pair.store.repeats.remember_repeat, key, entry, audio.expires
        )
    except StorageUnavailable as error:
        logger.warning("repeat cache entry kept on this replica only: %s", error.message)


async def _shared_find(
    services: Services, policy: ServedPolicy, key: str, now_epoch: int
) -> CachedAudio | None:
    """The entry another replica remembered, if it has more than the margin left; kept
    here too. A table that cannot answer is a miss (the request synthesizes)."""
    store = services.stores.get(policy.storage)
    try:
        entry = await services.repository.call("DynamoDB", store.repeats.find_repeat, key)
    except StorageUnavailable:
        return None
    audio = from_shared_entry(entry) if entry is not None else None
    if audio is None or not services.repeat_cache.usable(audio, now_epoch, policy.retention):
        return None
    services.repeat_cache.remember(key, audio)
    return audio


def signed_item(
    policy: ServedPolicy,
    store: AudioStore,
    item: AudioItem,
    now: datetime,
    *,
    cached: bool = False,
) -> dict[str, Any]:
    """The item as answered, with a URL signed now. ``expires_at`` is when the URL stops
    working (SigV4 caps it at 7 days); ``audio_expires_at`` is when the audio goes."""
    seconds = layout.presign_seconds(now, item.ttl)
    beside = {
        f"{name}_url": store.presign(companion, seconds)
        for name, companion in item.companions.items()
    }
    answer = TtsItem(
        audio_id=item.audio_id,
        s3_url=store.presign(item.key, seconds),
        duration=float(item.duration),
        text=item.text,
        voice_id=item.voice_id,
        expires_at=datetime.fromtimestamp(int(now.timestamp()) + seconds, UTC).isoformat(),
        audio_expires_at=datetime.fromtimestamp(item.ttl, UTC).isoformat(),
        date=item.date,
        policy=policy.name,
        format=cast(ResponseFormat, item.audio_format),
        content_type=item.content_type,
        sample_rate=item.sample_rate,
        cached=cached,
        **beside,
    )
    return answer.model_dump(exclude_none=False)
