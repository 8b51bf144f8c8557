"""What follows a job's end, whichever it is (completed, failed, cancelled) and whoever
ended it (the finisher, a worker whose part failed, the caller's cancel): its request and
parts deleted, its callback queued, its count and time recorded."""

from __future__ import annotations

import logging

from tempaudio_service.core.errors import StorageUnavailable
from tempaudio_service.jobs import transitions
from tempaudio_service.jobs.callbacks import callback_message
from tempaudio_service.jobs.engine import JobEngine
from tempaudio_service.jobs.job import Job
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.storage.store import AudioStore

logger = logging.getLogger(__name__)


async def clear(engine: JobEngine, store: AudioStore, job: Job) -> None:
    """Delete the job's request and parts (the cleanup and the lifecycle rule remove what a
    failure here leaves, with the day's folder)."""
    try:
        keys = await engine.call(store.list_keys, job.folder)
        if keys:
            await engine.call(store.delete_keys, keys)
    except StorageUnavailable as error:
        logger.warning("job %s: its parts were not deleted: %s", job.job_id, error.message)


async def ended(engine: JobEngine, policy: ServedPolicy, store: AudioStore, job: Job) -> None:
    engine.forget(job.job_id)
    await clear(engine, store, job)
    metrics = engine.services.metrics.jobs
    metrics.finished.labels(policy.key, job.status).inc()
    metrics.job_seconds.observe(max(0, engine.now() - job.created_at))
    logger.info("job %s %s", job.job_id, job.status)
    if job.callback is not None and engine.queue is not None:
        try:
            await engine.queue_call(engine.queue.send, [callback_message(job, 1)])
        except StorageUnavailable as error:
            logger.warning("job %s: its callback was not queued: %s", job.job_id, error.message)


async def fail(
    engine: JobEngine, policy: ServedPolicy, store: AudioStore, job: Job, code: str, message: str
) -> None:
    now = engine.now()
    failed = await engine.call(
        transitions.failed, store.jobs, job.job_id, code, message, now, engine.expires(policy, now)
    )
    if failed is not None:
        logger.warning("job %s failed: %s: %s", job.job_id, code, message)
        await ended(engine, policy, store, failed)
