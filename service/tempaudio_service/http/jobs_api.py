"""The ``/tts/jobs`` API: long-form audio made asynchronously (jobs/). Submit
(``POST /tts/jobs``, ``202`` and ``Location``), follow (``GET /tts/jobs/{id}``), list the
caller's (``GET /tts/jobs``) and cancel (``DELETE /tts/jobs/{id}``).

A job is the caller's: another caller's job, or one under another policy, is answered as
missing. The policy's clients and quotas admit a submission as they admit ``/tts/sync``;
its audio is charged once, when the job completes.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tempaudio_api.access import Caller
from tempaudio_service.audio.resolved import resolve
from tempaudio_service.audio.services import Services, read_json, services_of
from tempaudio_service.audio.voice_view import requested_policy
from tempaudio_service.core.errors import InvalidRequest, JobConflict, JobNotFound
from tempaudio_service.http import admission
from tempaudio_service.jobs import answers, endings, submission, transitions
from tempaudio_service.jobs.engine import JobEngine
from tempaudio_service.jobs.job import Job, is_valid_job_id
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.storage.store import AudioStore
from tempaudio_service.wire.schemas import parse_policy_name

# A job's body: 200,000 characters, each up to a 12-byte JSON escape (a surrogate pair).
MAX_JOB_BODY_BYTES = 4 * 1024 * 1024
# Jobs a listing answers at most (the newest).
MAX_LISTED = 100


def jobs_of(request: Request) -> JobEngine:
    engine: JobEngine = request.app.state.jobs
    return engine


async def create_job(request: Request) -> JSONResponse:
    services, engine = services_of(request), jobs_of(request)
    engine.required_queue()
    caller = await admission.caller_of(services, request)
    key = submission.check_key(request.headers.get("idempotency-key"))
    body = await read_json(request, MAX_JOB_BODY_BYTES, services.settings.body_timeout_seconds)
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    callback_url = body.pop("callback_url", None)
    tts = engine.parse(body, requested_policy(services, body))
    audio = resolve(services, tts, caller)
    submission.check_policy(engine, audio)
    callback = submission.check_callback(engine, audio, callback_url)
    await admission.admit_synthesis(services, request, caller, audio.policy, tts.text)
    submitted = await submission.submit(engine, audio, body, callback, key)
    answer = submitted.job.as_json(audio.policy.name)
    headers = {"Location": f"/tts/jobs/{submitted.job.job_id}?policy={audio.policy.key}"}
    if not submitted.created:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(answer, status_code=202, headers=headers)


async def _own_job(
    services: Services, engine: JobEngine, request: Request
) -> tuple[ServedPolicy, AudioStore, Job]:
    job_id = str(request.path_params["job_id"])
    if not is_valid_job_id(job_id):
        raise JobNotFound(f"no job {job_id[:36]}")
    caller = await admission.caller_of(services, request)
    policy, store = services.served(parse_policy_name(request.query_params.get("policy")))
    record = await engine.call(store.jobs.get, job_id)
    job = None if record is None else Job.from_record(record)
    if job is None or not _owns(job, policy, caller) or _gone(engine, job):
        raise JobNotFound(f"no job {job_id} under policy {policy.name}, or it has expired")
    return policy, store, job


def _owns(job: Job, policy: ServedPolicy, caller: Caller | None) -> bool:
    return job.policy == policy.key and job.caller == (None if caller is None else caller.key)


def _gone(engine: JobEngine, job: Job) -> bool:
    """DynamoDB deletes expired records lazily (moto never): an ended job past its time
    is gone."""
    return job.finished and job.ttl <= engine.now()


async def get_job(request: Request) -> JSONResponse:
    services, engine = services_of(request), jobs_of(request)
    policy, store, job = await _own_job(services, engine, request)
    return JSONResponse(await answers.answer(engine, policy, store, job))


async def cancel_job(request: Request) -> JSONResponse:
    services, engine = services_of(request), jobs_of(request)
    policy, store, job = await _own_job(services, engine, request)
    now = engine.now()
    done = await engine.call(
        transitions.cancelled, store.jobs, job.job_id, now, engine.expires(policy, now)
    )
    if done is None:
        raise JobConflict(
            f"job {job.job_id} is {job.status if job.finished else 'being finished'};"
            " only a queued or running job can be cancelled"
        )
    await endings.ended(engine, policy, store, done)
    return JSONResponse(done.as_json(policy.name))


async def list_jobs(request: Request) -> JSONResponse:
    services, engine = services_of(request), jobs_of(request)
    caller = await admission.caller_of(services, request)
    policy, store = services.served(parse_policy_name(request.query_params.get("policy")))
    owner = f"{policy.key}#{caller.key if caller is not None else 'anonymous'}"
    ids = await engine.call(store.jobs.remembered, owner)
    records = await engine.call(store.jobs.get_many, ids)
    jobs = [Job.from_record(record) for record in records]
    live = [j for j in jobs if _owns(j, policy, caller) and not _gone(engine, j)]
    gone = ids - {j.job_id for j in live}
    if gone:
        await engine.call(store.jobs.forget, owner, gone)
    live.sort(key=lambda j: (j.created_at, j.job_id), reverse=True)
    listed: list[dict[str, Any]] = [j.as_json(policy.name) for j in live[:MAX_LISTED]]
    return JSONResponse({"policy": policy.name, "jobs": listed})


ROUTES = [
    Route("/tts/jobs", create_job, methods=["POST"]),
    Route("/tts/jobs", list_jobs, methods=["GET"]),
    Route("/tts/jobs/{job_id}", get_job, methods=["GET"]),
    Route("/tts/jobs/{job_id}", cancel_job, methods=["DELETE"]),
]
