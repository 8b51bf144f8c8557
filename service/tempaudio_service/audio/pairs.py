"""An audio object and its item as one pair under a policy: made (its key and item),
written (the object as it is made, then both halves at once), signed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

import anyio

from tempaudio_service.audio import companions
from tempaudio_service.audio.resolved import AudioRequest
from tempaudio_service.audio.services import Services
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.storage import layout
from tempaudio_service.storage.layout import AudioItem
from tempaudio_service.storage.object_writer import ObjectWriter
from tempaudio_service.storage.repository import Companion
from tempaudio_service.storage.store import AudioStore
from tempaudio_service.wire.schemas import ResponseFormat, TtsItem


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


def new_pair(services: Services, request: AudioRequest, duration: Decimal) -> Pair:
    """The key and item of the request's new audio under its policy, made for its caller."""
    policy, store, tts, caller = request.policy, request.store, request.tts, request.caller
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


def writer_of(pair: Pair) -> ObjectWriter:
    return ObjectWriter(pair.store, pair.key, pair.item.content_type)


def with_duration(pair: Pair, num_frames: int, voice_rate: int) -> Pair:
    """The pair with its audio's duration, once it is made."""
    duration = layout.duration_decimal(num_frames, voice_rate)
    return replace(pair, item=pair.item.with_duration(duration))


def abort_later(services: Services, writer: ObjectWriter) -> None:
    """Drop the parts of an object that will not be completed (none, for nearly all), and
    let a synthesis still writing into it start none (it may run on at shutdown)."""
    services.repository.later("S3", writer.abort)


async def save(
    services: Services,
    pair: Pair,
    audio: ObjectWriter,
    beside: tuple[Companion, ...] = (),
    *,
    overlap: bool = True,
) -> None:
    """Write the pair (repository.save: ``overlap`` the two halves unless the audio's URL
    is already out)."""
    # Shielded: neither a client that disconnects nor shutdown leaves half of the pair.
    with anyio.CancelScope(shield=True):
        await services.repository.save(pair.store, audio, pair.item, beside, overlap=overlap)
    services.metrics.stored.labels(pair.policy.key).inc()  # namespace/name: names repeat


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
