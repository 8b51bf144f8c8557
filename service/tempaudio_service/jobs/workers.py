"""This replica's share of the jobs: up to ``TEMPAUDIO_JOBS_WORKERS`` messages of the queue
at once, each taken only while no request waits for a synthesis worker, and each kept
invisible to the other replicas while it is worked on (extended every third of the
visibility timeout).

A message is deleted once its work is done or pointless (its job has ended). One whose
work failed for a passing reason (storage down) is left: it comes back after its
visibility timeout, to any replica. A part received more than ``TEMPAUDIO_JOBS_MAX_RECEIVES``
times fails its job. At shutdown the messages in hand are given back at once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time

import anyio

from tempaudio_service.core.errors import (
    InvalidRequest,
    StorageUnavailable,
    TempAudioError,
    VoiceNotAllowed,
)
from tempaudio_service.jobs import answers, assembly, callbacks, endings, part_work, transitions
from tempaudio_service.jobs.engine import JobEngine, JobRequest
from tempaudio_service.jobs.job import QUEUED, Job, is_valid_job_id
from tempaudio_service.jobs.low_priority import LowPriorityThreads
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.storage.job_queue import JobQueue, Received
from tempaudio_service.storage.store import AudioStore

logger = logging.getLogger(__name__)
# A long poll: an idle replica asks SQS about three times a minute per worker.
RECEIVE_WAIT_SECONDS = 20
# After the queue failed to answer, wait this long before asking again.
QUEUE_BACKOFF_SECONDS = 5
DEPTH_SAMPLE_SECONDS = 15


class JobWorkers:
    def __init__(self, engine: JobEngine) -> None:
        self.engine = engine
        self.slots = engine.settings.jobs_workers
        # Threads that synthesize parts, at the lowest CPU priority: as many as parts are
        # worked at once.
        self.threads = LowPriorityThreads(self.slots)

    async def run(self) -> None:
        """Work the queue until cancelled (the lifespan's end)."""
        queue = self.engine.queue
        if queue is None or self.slots == 0:
            return
        try:
            await self._work(queue)
        finally:
            self.threads.close()

    async def _work(self, queue: JobQueue) -> None:
        slots = anyio.Semaphore(self.slots)
        receive = functools.partial(
            queue.receive,
            most=1,
            wait_seconds=RECEIVE_WAIT_SECONDS,
            visibility_seconds=self.engine.settings.jobs_visibility_seconds,
        )
        async with anyio.create_task_group() as group:
            group.start_soon(self._sample_depth)
            while True:
                await slots.acquire()
                try:
                    await part_work.wait_for_requests(self.engine)
                    if self.engine.services.draining.started:  # SIGTERM: take no more work
                        slots.release()
                        await anyio.sleep(1)
                        continue
                    received = await self.engine.queue_call(receive)
                except StorageUnavailable as error:
                    slots.release()
                    logger.warning("the job queue did not answer: %s", error.message)
                    await anyio.sleep(QUEUE_BACKOFF_SECONDS)
                    continue
                except Exception:  # a bug must not stop this replica's workers for good
                    slots.release()
                    logger.exception("receiving from the job queue failed")
                    await anyio.sleep(QUEUE_BACKOFF_SECONDS)
                    continue
                except BaseException:
                    slots.release()
                    raise
                if not received:
                    slots.release()
                    continue
                if self.engine.services.draining.started:  # it came as SIGTERM did
                    await self._give_back(received[0])
                    slots.release()
                    continue
                group.start_soon(self._handle, received[0], slots)

    async def _sample_depth(self) -> None:
        queue = self.engine.queue
        assert queue is not None
        gauge = self.engine.services.metrics.jobs.queue_messages
        while True:
            try:
                waiting, in_flight = await self.engine.queue_call(queue.depth)
                gauge.labels("waiting").set(waiting)
                gauge.labels("in_flight").set(in_flight)
            except Exception as error:  # noqa: BLE001 - a sample missed is only that
                logger.debug("the job queue's depth was not read: %s", error)
            await anyio.sleep(DEPTH_SAMPLE_SECONDS)

    async def _handle(self, message: Received, slots: anyio.Semaphore) -> None:
        queue = self.engine.queue
        assert queue is not None
        try:
            async with anyio.create_task_group() as keeping:
                keeping.start_soon(self._keep_invisible, message)
                try:
                    delete = await self._dispatch(message)
                finally:
                    keeping.cancel_scope.cancel()
            if delete:
                await self.engine.queue_call(queue.delete, message.receipt)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._give_back(message)
            raise
        except Exception:
            logger.exception("a job message failed; it comes back after its visibility timeout")
            self.engine.services.metrics.jobs.parts.labels("given_back").inc()
        finally:
            slots.release()

    async def _keep_invisible(self, message: Received) -> None:
        queue = self.engine.queue
        assert queue is not None
        seconds = self.engine.settings.jobs_visibility_seconds
        while True:
            await anyio.sleep(max(1.0, seconds / 3))
            try:
                await self.engine.queue_call(queue.extend, message.receipt, seconds)
            except StorageUnavailable as error:
                logger.warning("a job message's visibility was not extended: %s", error.message)

    async def _give_back(self, message: Received) -> None:
        queue = self.engine.queue
        assert queue is not None
        with anyio.move_on_after(2):
            with contextlib.suppress(StorageUnavailable):
                await anyio.to_thread.run_sync(queue.extend, message.receipt, 0)

    async def _dispatch(self, message: Received) -> bool:
        """Do what the message asks; True: delete it."""
        body = message.body
        job_id, policy_key = str(body.get("job", "")), str(body.get("policy", ""))
        kind = body.get("kind")
        number = body.get("part" if kind == "part" else "attempt", 1)
        if (
            not is_valid_job_id(job_id)
            or kind not in ("part", "finish", "callback")
            or not isinstance(number, int)
            or isinstance(number, bool)
            or message.receive_count > 4 * self.engine.settings.jobs_max_receives
        ):
            logger.warning("dropped a job message that is not the service's: %.200s", body)
            return True
        try:
            policy, store = self.engine.services.served(policy_key)
        except TempAudioError as error:
            # Its policy is not served now (an outage of the policy view, or deleted):
            # the message comes back, until it was received too often.
            logger.warning("job %s: policy %s: %s", job_id, policy_key, error.message)
            return message.receive_count > self.engine.settings.jobs_max_receives
        record = await self.engine.call(store.jobs.get, job_id)
        if record is None:
            return True
        job = Job.from_record(record)
        if job.policy != policy.key:  # a message that names another policy is not the job's
            logger.warning("dropped a message of job %s naming policy %s", job_id, policy_key)
            return True
        if kind == "callback":
            if not 1 <= number <= self.engine.settings.callback_attempts:
                return True
            answer = await answers.answer(self.engine, policy, store, job)
            await callbacks.deliver(self.engine, policy, store, job, answer, number)
            return True
        if kind == "finish":
            if not job.finished:
                request = await self.engine.request_of(policy, store, job.job_id, job.folder)
                await self._maybe_finish(policy, store, job, request)
            return True
        return await self._part(policy, store, job, number, message)

    async def _part(
        self, policy: ServedPolicy, store: AudioStore, job: Job, index: int, message: Received
    ) -> bool:
        engine, metrics = self.engine, self.engine.services.metrics.jobs
        if job.finished:
            metrics.parts.labels("dropped").inc()
            if await engine.call(store.list_keys, job.folder):
                # Its end was cut short (the finisher stopped as the record was written):
                # the parts are still there, the callback maybe not queued. Finish it.
                await endings.ended(engine, policy, store, job)
            return True
        if not 0 <= index < job.parts_total:
            metrics.parts.labels("dropped").inc()
            return True
        if message.receive_count > engine.settings.jobs_max_receives:
            metrics.parts.labels("failed").inc()
            await endings.fail(
                engine,
                policy,
                store,
                job,
                "part_failed",
                f"part {index + 1} of {job.parts_total} was taken {message.receive_count - 1}"
                " times and never done (its replicas stopped or failed while making it)",
            )
            return True
        try:
            request = await engine.request_of(policy, store, job.job_id, job.folder)
        except (InvalidRequest, VoiceNotAllowed) as error:  # the policy changed under the job
            await endings.fail(engine, policy, store, job, error.code, error.message)
            return True
        if index in job.done:
            metrics.parts.labels("repeated").inc()
            await self._maybe_finish(policy, store, job, request)
            return True
        started = time.perf_counter()
        if job.status == QUEUED:
            await engine.call(transitions.started, store.jobs, job.job_id, engine.now())
        metrics.parts_running.inc()
        try:
            made = await part_work.synthesize(engine, request, index, self.threads)
        except InvalidRequest as error:
            metrics.parts.labels("failed").inc()
            await endings.fail(engine, policy, store, job, error.code, error.message)
            return True
        finally:
            metrics.parts_running.dec()
        await part_work.store_part(engine, store, job.folder, index, made)
        now = engine.now()
        updated = await engine.call(
            transitions.part_done, store.jobs, job.job_id, index, now, engine.expires(policy, now)
        )
        if updated is None:  # it ended meanwhile (cancelled): what this part wrote goes too
            metrics.parts.labels("dropped").inc()
            await endings.clear(engine, store, job)
            return True
        metrics.parts.labels("done").inc()
        metrics.part_seconds.observe(time.perf_counter() - started)
        await self._maybe_finish(policy, store, updated, request)
        return True

    async def _maybe_finish(
        self, policy: ServedPolicy, store: AudioStore, job: Job, request: JobRequest
    ) -> None:
        if len(job.done) < job.parts_total:
            return
        engine = self.engine
        try:
            done = await assembly.finish(engine, policy, store, job, request)
        except (assembly.PartLost, InvalidRequest) as error:
            code = error.code if isinstance(error, InvalidRequest) else "part_lost"
            await endings.fail(engine, policy, store, job, code, str(error))
            return
        if done is not None:
            await endings.ended(engine, policy, store, done)
            return
        await self._finish_later(job.job_id, policy, store)

    async def _finish_later(self, job_id: str, policy: ServedPolicy, store: AudioStore) -> None:
        """Another replica holds the job to finish it: look again once its hold lapses (if
        it dies while finishing, no part message is left to bring anyone back)."""
        engine = self.engine
        record = await engine.call(store.jobs.get, job_id)
        job = None if record is None else Job.from_record(record)
        if job is None or job.finished or job.lease_until is None:
            return
        delay = max(1, job.lease_until - engine.now() + 1)
        message = {"kind": "finish", "job": job_id, "policy": policy.key}
        await engine.queue_call(engine.required_queue().send, [message], delay)
