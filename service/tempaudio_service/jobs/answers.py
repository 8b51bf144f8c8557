"""A job as answered (``GET /tts/jobs/{id}``, and its callback's body): its state and
progress, and once completed what ``POST /tts/sync`` answers for its audio, with URLs
signed now (the text aside: a job's is long, and the caller has it)."""

from __future__ import annotations

from typing import Any

from tempaudio_service.audio.pairs import signed_item
from tempaudio_service.jobs.engine import JobEngine
from tempaudio_service.jobs.job import COMPLETED, Job
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.storage import layout
from tempaudio_service.storage.store import AudioStore

# What a completed job's answer takes from the audio's signed item.
AUDIO_FIELDS = (
    "audio_id",
    "date",
    "s3_url",
    "duration",
    "expires_at",
    "audio_expires_at",
    "voice_id",
    "format",
    "content_type",
    "sample_rate",
    "speech_marks_url",
    "captions_url",
)


async def answer(
    engine: JobEngine, policy: ServedPolicy, store: AudioStore, job: Job
) -> dict[str, Any]:
    body = job.as_json(policy.name)
    if job.status != COMPLETED or job.result is None:
        return body
    day, audio_id = job.result
    item = await engine.services.repository.lookup(store, day, audio_id)
    now = engine.services.clock()
    if item is None or layout.is_item_expired(item, now):
        body["audio_expired"] = True
        return body
    signed = signed_item(policy, store, item, now)
    body.update({name: signed[name] for name in AUDIO_FIELDS if signed.get(name) is not None})
    return body
