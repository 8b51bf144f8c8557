"""A job's parts joined into its audio by the one replica that claimed it: the PCM of each
part, in order, through the requested format's encoder into one object (an S3 multipart
upload as it is made, object_writer.py), the parts' marks moved to their place in time
(their text offsets already index the whole job's text), then the object, its speech
marks and captions, and its item written as one pair (audio/pairs.py), and the parts
deleted.

The audio's id and time are fixed by the first claim, so a finisher that dies and the one
that takes over make the same object under the same key; an item already there means the
pair was written, and only the record is left to complete.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal

import anyio
import anyio.to_thread

from tempaudio_service.access import quotas
from tempaudio_service.audio import companions
from tempaudio_service.audio.pairs import Pair, abort_later, save, with_duration, writer_of
from tempaudio_service.core.errors import AudioTooLong, StorageUnavailable
from tempaudio_service.jobs import transitions
from tempaudio_service.jobs.engine import JobEngine, JobRequest, part_key
from tempaudio_service.jobs.job import Job
from tempaudio_service.jobs.part_work import read_marks
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.speech.encoders import open_encoder
from tempaudio_service.speech.voices import Timing
from tempaudio_service.storage import layout
from tempaudio_service.storage.object_writer import ObjectWriter
from tempaudio_service.storage.store import AudioStore

logger = logging.getLogger(__name__)
# A part's PCM is at most TEMPAUDIO_MAX_AUDIO_SECONDS of 16-bit audio; read no more.
MAX_PART_SECONDS = 3600
# The longest text an item holds: DynamoDB's items are at most 400 KB.
MAX_ITEM_TEXT_BYTES = 256 * 1024


class PartLost(Exception):
    """A part's objects are gone (expired under a retention shorter than the job)."""


@dataclass(frozen=True)
class Joined:
    num_frames: int
    voice_rate: int
    timings: tuple[Timing, ...]


def item_text(text: str) -> str:
    """The job's text as its item keeps it: whole when it fits, else cut with "…"."""
    encoded = text.encode()
    if len(encoded) <= MAX_ITEM_TEXT_BYTES:
        return text
    return encoded[: MAX_ITEM_TEXT_BYTES - 3].decode(errors="ignore") + "…"


def _pair(
    engine: JobEngine, policy: ServedPolicy, store: AudioStore, job: Job, request: JobRequest
) -> Pair:
    tts = request.tts
    assert job.audio_id is not None, "claimed jobs have their audio's id"
    assert job.audio_created is not None, "claimed jobs have their audio's time"
    created = datetime.fromtimestamp(job.audio_created, UTC)
    key = layout.object_key(
        policy.storage.prefix, created, job.audio_id, tts.audio_format.extension
    )
    voice_rate = engine.services.synth.voices[tts.voice].sample_rate
    item = layout.new_audio_item(
        created=created,
        audio_id=job.audio_id,
        bucket=policy.storage.bucket,
        key=key,
        text=item_text(tts.text),
        voice_id=tts.voice,
        duration=Decimal(0),
        retention=policy.retention,
        ttl_attribute=policy.ttl_attribute,
        audio_format=tts.audio_format.name,
        sample_rate=None if tts.sample_rate == voice_rate else tts.sample_rate,
        caller=job.caller,
        policy=policy.key,
        companions=companions.keys_for(tts, key),
    )
    return Pair(policy, store, item, created)


def join(
    engine: JobEngine, store: AudioStore, job: Job, request: JobRequest, output: ObjectWriter
) -> Joined:
    """Every part's PCM through one encoder into ``output`` (on a worker thread)."""
    tts = request.tts
    rate = engine.services.synth.voices[tts.voice].sample_rate
    encoder = open_encoder(tts.format, rate, tts.sample_rate, streaming=False, output=output)
    limit = engine.settings.jobs_max_audio_seconds * rate
    timings: list[Timing] = []
    frames = 0
    try:
        for index in range(job.parts_total):
            raw = store.read_object(part_key(job.folder, index, "marks.json"), 64 * 1024 * 1024)
            pcm = store.read_object(part_key(job.folder, index, "pcm"), MAX_PART_SECONDS * rate * 2)
            if raw is None or pcm is None:
                raise PartLost(f"part {index + 1} of job {job.job_id} is gone")
            _, found = read_marks(raw)
            timings.extend(_moved(timing, frames) for timing in found)
            frames += len(pcm) // 2
            if frames > limit:
                raise AudioTooLong(
                    f"the job's audio runs past {engine.settings.jobs_max_audio_seconds} s,"
                    " the most a job makes"
                )
            encoder.write(pcm)
        encoder.finish()
    finally:
        encoder.close()
    return Joined(frames, rate, tuple(timings))


def _moved(timing: Timing, frames: int) -> Timing:
    """A part's mark at its place in the whole audio."""
    end = None if timing.end_frame is None else timing.end_frame + frames
    return replace(timing, frame=timing.frame + frames, end_frame=end)


async def finish(
    engine: JobEngine, policy: ServedPolicy, store: AudioStore, job: Job, request: JobRequest
) -> Job | None:
    """Claim ``job`` (every part done) and make its audio; None: another replica has it."""
    now = engine.now()
    hold_seconds = engine.settings.jobs_visibility_seconds
    claimed = await engine.call(
        transitions.claim, store.jobs, job, engine.name, now, now + hold_seconds, str(uuid.uuid4())
    )
    if claimed is None:
        return None
    started = time.perf_counter()
    made: list[Job | None] = []
    failed: list[Exception] = []
    async with anyio.create_task_group() as holding:
        holding.start_soon(_keep_holding, engine, store, claimed)
        try:
            made.append(await _make(engine, policy, store, claimed, request))
        except Exception as error:  # noqa: BLE001 - raised as itself below, not in a group
            failed.append(error)
        finally:
            holding.cancel_scope.cancel()
    if failed:
        raise failed[0]
    engine.services.metrics.jobs.assembly_seconds.observe(time.perf_counter() - started)
    return made[0]


async def _keep_holding(engine: JobEngine, store: AudioStore, job: Job) -> None:
    every = max(1.0, engine.settings.jobs_visibility_seconds / 3)
    while True:
        await anyio.sleep(every)
        until = engine.now() + engine.settings.jobs_visibility_seconds
        try:
            await engine.call(transitions.hold, store.jobs, job.job_id, engine.name, until)
        except StorageUnavailable as error:  # the next extension may get through
            logger.warning("job %s: its hold was not extended: %s", job.job_id, error.message)


async def _make(
    engine: JobEngine, policy: ServedPolicy, store: AudioStore, job: Job, request: JobRequest
) -> Job | None:
    services = engine.services
    pair = _pair(engine, policy, store, job, request)
    existing = await services.repository.lookup(store, pair.item.date, pair.item.audio_id)
    if existing is None:
        writer = writer_of(pair)
        try:
            joined = await anyio.to_thread.run_sync(join, engine, store, job, request, writer)
        except BaseException:
            abort_later(services, writer)
            raise
        pair = with_duration(pair, joined.num_frames, joined.voice_rate)
        files = companions.files(
            request.tts, pair.item, joined.timings, joined.num_frames, joined.voice_rate
        )
        await save(services, pair, writer, files)
        seconds = joined.num_frames / joined.voice_rate
    else:
        pair = replace(pair, item=existing)
        seconds = float(existing.duration)
    done = await engine.call(
        transitions.completed,
        store.jobs,
        job.job_id,
        engine.name,
        (pair.item.date, pair.item.audio_id),
        engine.now(),
        pair.item.ttl,
    )
    if done is not None:
        services.metrics.audio_seconds.labels(request.tts.voice).inc(seconds)
        _charge(engine, policy, store, done, seconds)
    return done


def _charge(
    engine: JobEngine, policy: ServedPolicy, store: AudioStore, job: Job, seconds: float
) -> None:
    """The job's audio, charged once to its caller's hour (the finisher that completed it)."""
    if policy.access.quotas.audio_seconds_per_hour is None:
        return
    key = (policy.key, job.caller or "anonymous")
    engine.services.repository.later(
        "DynamoDB",
        quotas.charge,
        store.counters,
        key,
        policy.access.quotas,
        engine.services.clock().timestamp(),
        seconds,
        tag=("charge", key),  # the caller's next admission here waits for it
    )
