"""A job submitted: checked against its policy, its script cut into parts, its request and
parts written to S3, its record to DynamoDB, one message per part to the queue.

With an ``Idempotency-Key`` the job's id is derived from the key, the caller and the policy
(a uuid5): the same key asks for the same job, whose record says which body it was made
for. The same body gets that job back; another body is refused. Without a key every
submission is a new job (a uuid4).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass, replace
from typing import Any

import anyio.to_thread

from tempaudio_api.jobs import callback_allowed
from tempaudio_service.audio.resolved import AudioRequest
from tempaudio_service.core.errors import (
    AudioTooLong,
    CallbackNotAllowed,
    IdempotencyConflict,
    InvalidRequest,
    JobsDisabled,
    JobsUnavailable,
    NoSpeech,
    StorageUnavailable,
    TextTooLong,
    cut,
)
from tempaudio_service.jobs import endings
from tempaudio_service.jobs.engine import (
    PARTS_OBJECT,
    REQUEST_OBJECT,
    JobEngine,
    characters_of,
    dumps,
)
from tempaudio_service.jobs.job import QUEUED, Callback, Job
from tempaudio_service.jobs.parts import Part, parts_json, split
from tempaudio_service.speech.script import Pause, Said
from tempaudio_service.speech.speaking import says_something
from tempaudio_service.storage import layout

logger = logging.getLogger(__name__)
# Idempotency keys: printable ASCII, as the IETF draft's examples (a UUID, usually).
MAX_KEY_CHARS = 255
MAX_CALLBACK_URL_CHARS = 2048
_KEYS = uuid.UUID("5a0d3c5e-8b1f-4d7e-9a51-7c0f2b4c6e10")


@dataclass(frozen=True)
class Submitted:
    job: Job
    # False: the same Idempotency-Key and body asked for this job before.
    created: bool


def check_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_CHARS or not all(" " <= c <= "~" for c in key):
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_CHARS} printable ASCII characters",
            param="Idempotency-Key",
        )
    return key


def check_callback(engine: JobEngine, audio: AudioRequest, url: Any) -> str | None:
    """The body's ``callback_url``, if the policy's prefixes allow it."""
    if url is None:
        return None
    if not isinstance(url, str) or not 0 < len(url) <= MAX_CALLBACK_URL_CHARS:
        raise InvalidRequest(
            f"'callback_url' must be a URL of at most {MAX_CALLBACK_URL_CHARS} characters",
            param="callback_url",
        )
    prefixes = engine.spec_of(audio.policy).callback_url_prefixes
    if not callback_allowed(prefixes, url):
        allowed = ", ".join(prefixes) if prefixes else "none (spec.jobs.callbackUrlPrefixes)"
        raise CallbackNotAllowed(
            f"'callback_url' {cut(url)!r} is not under a prefix policy {audio.policy.name}"
            f" allows: {allowed}"
        )
    if engine.settings.webhook_secret is None:
        raise JobsUnavailable(
            "this service has no key to sign callbacks with (TEMPAUDIO_WEBHOOK_SECRET)"
        )
    return url


def check_policy(engine: JobEngine, audio: AudioRequest) -> None:
    spec = engine.spec_of(audio.policy)
    if not spec.enabled:
        raise JobsDisabled(f"policy {audio.policy.name} does not take jobs (spec.jobs.enabled)")
    limit = engine.max_characters(audio.policy)
    if len(audio.tts.text) > limit:
        raise TextTooLong(
            f"'text' has {len(audio.tts.text)} characters; a job under policy"
            f" {audio.policy.name} takes at most {limit}",
            param="text",
        )


def request_hash(body: Any, callback_url: str | None, policy: str) -> str:
    canonical = json.dumps(
        {"body": body, "callback_url": callback_url, "policy": policy},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def job_id_for(audio: AudioRequest, key: str | None) -> str:
    if key is None:
        return str(uuid.uuid4())
    caller = audio.caller.key if audio.caller is not None else ""
    return str(uuid.uuid5(_KEYS, f"{audio.policy.key}\n{caller}\n{key}"))


def cut_into_parts(engine: JobEngine, audio: AudioRequest) -> list[Part]:
    """The spoken script (lexicons applied) in parts; refuses text with nothing to say and
    pauses longer than a job may be (on a worker thread: linear in the text)."""
    settings = engine.settings
    tts = audio.tts
    script = tts.spoken()
    if not any(isinstance(item, Said) and says_something(item.text) for item in script):
        raise NoSpeech("'text' holds nothing to say")
    paused = sum(item.seconds for item in script if isinstance(item, Pause))
    if paused > settings.jobs_max_audio_seconds:
        raise AudioTooLong(
            f"the text's pauses alone last {paused:.0f} s; a job makes at most"
            f" {settings.jobs_max_audio_seconds} s of audio"
        )
    return split(script, settings.jobs_part_chars, len(tts.text), tts.options.sentence_silence)


def _answer_existing(found: Job, digest: str) -> Submitted:
    if found.request_hash != digest:
        raise IdempotencyConflict(
            "this Idempotency-Key was used for another request; use a new key for new work"
        )
    return Submitted(found, created=False)


async def submit(
    engine: JobEngine,
    audio: AudioRequest,
    body: dict[str, Any],
    callback_url: str | None,
    key: str | None,
) -> Submitted:
    queue = engine.required_queue()
    policy, store = audio.policy, audio.store
    body = {**body, "voice": audio.tts.voice}  # the voice resolved now, for every replica
    digest = request_hash(body, callback_url, policy.key)
    job_id = job_id_for(audio, key)
    now = engine.now()
    if key is not None:
        record = await engine.call(store.jobs.get, job_id)
        if record is not None and not _expired(Job.from_record(record), now):
            return _answer_existing(Job.from_record(record), digest)
    # What the lexicons make it say counts against the policy's limit too.
    said = replace(audio.tts, max_said_chars=engine.max_characters(policy))
    parts = await anyio.to_thread.run_sync(cut_into_parts, engine, replace(audio, tts=said))
    # A folder of this submission's own: two submissions with one key at once each write
    # theirs, and the one whose record is not written deletes its own.
    day = layout.date_folder(engine.services.clock())
    folder = f"{policy.storage.prefix}{day}/{job_id}/{uuid.uuid4().hex[:12]}/"
    job = Job(
        job_id=job_id,
        status=QUEUED,
        policy=policy.key,
        caller=audio.caller.key if audio.caller is not None else None,
        created_at=now,
        folder=folder,
        request_hash=digest,
        part_characters=characters_of(parts),
        callback=None if callback_url is None else Callback(callback_url),
        ttl=engine.expires(policy, now),
    )
    await engine.call(store.put_audio, folder + REQUEST_OBJECT, dumps(body), "application/json")
    await engine.call(
        store.put_audio, folder + PARTS_OBJECT, dumps(parts_json(parts)), "application/json"
    )
    existing = await engine.call(store.jobs.create, job.record(store.jobs.expiry), now)
    if existing is not None:  # the same key at the same moment: one of the two made it
        await endings.clear(engine, store, job)
        return _answer_existing(Job.from_record(existing), digest)
    try:
        await engine.call(store.jobs.remember, owner_of(job), job_id, job.ttl)
    except StorageUnavailable as error:  # the job stands; only a listing misses it
        logger.warning("job %s is not in its caller's listing: %s", job_id, error.message)
    messages = [
        {"kind": "part", "job": job_id, "policy": policy.key, "part": index}
        for index in range(len(parts))
    ]
    try:
        await engine.queue_call(queue.send, messages)
    except StorageUnavailable:
        # Nothing was done: the job goes, so that the same request (and key) may be sent
        # again. Parts the queue took find no job and are dropped.
        await engine.call(store.jobs.delete, job_id)
        await endings.clear(engine, store, job)
        raise
    engine.services.metrics.jobs.submitted.labels(policy.key).inc()
    logger.info("job %s queued: %d part(s) under %s", job_id, len(parts), policy.key)
    return Submitted(job, created=True)


def owner_of(job: Job) -> str:
    """Whose jobs a listing shows: the caller's under the job's policy."""
    return f"{job.policy}#{job.caller or 'anonymous'}"


def _expired(job: Job, now: int) -> bool:
    return job.finished and job.ttl <= now
