"""What every job operation shares: the queue, the services, this replica's name as a
finisher, the clock in whole seconds, and the jobs' requests as read back from S3.

A job's request is written once, at submission, beside its parts: ``request.json`` (the
body as validated, its voice resolved) and ``parts.json`` (the script cut into parts,
lexicons applied). Every replica that works on the job reads both once and keeps the last
few jobs' in memory.
"""

from __future__ import annotations

import json
import os
import re
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import anyio

from tempaudio_api.jobs import MAX_JOB_CHARACTERS, JobsSpec
from tempaudio_service.audio.services import Services
from tempaudio_service.audio.voice_view import voice_view
from tempaudio_service.core.errors import JobsUnavailable, StorageUnavailable
from tempaudio_service.core.lru import LruIndex
from tempaudio_service.jobs.parts import Part, parts_from_json
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.storage.aws_clients import make_sqs_client
from tempaudio_service.storage.job_queue import JobQueue
from tempaudio_service.storage.store import AudioStore
from tempaudio_service.wire.tts_request import TtsRequest, parse_tts_request

T = TypeVar("T")
REQUEST_OBJECT = "request.json"
PARTS_OBJECT = "parts.json"
# The largest request or parts object the service writes: 200,000 characters, each up to
# 4 bytes of UTF-8 and a few of JSON around it.
MAX_REQUEST_BYTES = 16 * 1024 * 1024
# Jobs whose request a replica keeps read.
KEPT_REQUESTS = 8


def part_key(folder: str, index: int, extension: str) -> str:
    return f"{folder}part-{index:05d}.{extension}"


@dataclass(frozen=True)
class JobRequest:
    """What a job says and how, as every replica reads it back."""

    tts: TtsRequest
    parts: tuple[Part, ...]


class JobEngine:
    def __init__(self, services: Services, queue: JobQueue | None) -> None:
        self.services = services
        self.settings = services.settings
        self.queue = queue
        # This replica as a finisher: the pod's name, and a random tail for each start.
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._requests: LruIndex[str, JobRequest] = LruIndex(KEPT_REQUESTS)

    @classmethod
    def create(cls, services: Services) -> JobEngine:
        settings = services.settings
        if not settings.jobs_queue_url:
            return cls(services, None)
        sqs = make_sqs_client(
            region=queue_region(settings.jobs_queue_url) or settings.region,
            endpoint_url=settings.sqs_endpoint_url,
            timeout_seconds=max(settings.io_timeout_seconds, 25),  # a long poll waits 20 s
            local=settings.local_aws,
        )
        return cls(services, JobQueue(sqs, settings.jobs_queue_url))

    def required_queue(self) -> JobQueue:
        if self.queue is None:
            raise JobsUnavailable(
                "this service has no job queue (TEMPAUDIO_JOBS_QUEUE_URL); jobs are unavailable"
            )
        return self.queue

    def now(self) -> int:
        return int(self.services.clock().timestamp())

    @staticmethod
    def spec_of(policy: ServedPolicy) -> JobsSpec:
        return policy.spec.jobs if policy.spec is not None else JobsSpec()

    def expires(self, policy: ServedPolicy, at: int | None = None) -> int:
        """When a job record touched now may go: the policy's retention from now."""
        return (self.now() if at is None else at) + int(policy.retention / timedelta(seconds=1))

    def max_characters(self, policy: ServedPolicy) -> int:
        return min(MAX_JOB_CHARACTERS, self.spec_of(policy).max_characters)

    async def call(self, func: Callable[..., T], *args: Any) -> T:
        """A storage call within the service's budget (the queue's too)."""
        return await self.services.repository.call("storage", func, *args)

    async def queue_call(self, func: Any, *args: Any) -> Any:
        """A queue call; a long poll outlasts the storage budget, so it has its own."""
        try:
            with anyio.fail_after(60):
                return await anyio.to_thread.run_sync(func, *args, abandon_on_cancel=True)
        except TimeoutError as error:
            raise StorageUnavailable("SQS did not answer in time; retry later") from error

    # --- a job's request, read back ---------------------------------------------------------

    def parse(self, body: Any, policy: ServedPolicy | None) -> TtsRequest:
        """A job's body as a request under ``policy`` (the callback URL taken out before):
        the voices it may name are the policy's."""
        view = voice_view(self.services, policy)
        tts = parse_tts_request(
            body,
            voices=view.voices,
            default_voice=view.default_voice,
            max_text_chars=MAX_JOB_CHARACTERS,
        )
        view.check(tts.voice)
        return tts

    async def request_of(
        self, policy: ServedPolicy, store: AudioStore, job_id: str, folder: str
    ) -> JobRequest:
        kept = self._requests.get(job_id)
        if kept is not None:
            return kept
        raw_body = await self.call(store.read_object, folder + REQUEST_OBJECT, MAX_REQUEST_BYTES)
        raw_parts = await self.call(store.read_object, folder + PARTS_OBJECT, MAX_REQUEST_BYTES)
        if raw_body is None or raw_parts is None:
            raise LookupError(f"job {job_id}'s request is gone (expired, or the job ended)")
        # What is said is in the parts (lexicons applied at submission); the request says
        # how: voice, format, marks, and the text the marks index.
        tts = self.parse(json.loads(raw_body), policy)
        request = JobRequest(tts, tuple(parts_from_json(json.loads(raw_parts))))
        self._requests.put(job_id, request)
        return request

    def forget(self, job_id: str) -> None:
        self._requests.pop(job_id)


def queue_region(url: str) -> str | None:
    """The region an AWS queue URL names (``https://sqs.<region>.amazonaws.com/...``): the
    queue's client signs for it, whatever region the service's storage is in."""
    match = re.match(r"^https://sqs\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/", url)
    return None if match is None else match.group(1)


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def characters_of(parts: Sequence[Part]) -> tuple[int, ...]:
    return tuple(part.characters for part in parts)
