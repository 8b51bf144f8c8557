"""Every change of a job's record, each one conditional ``UpdateItem`` (job_table.py), so
that replicas that work on one job at once agree without a lock:

- a part done is added to a set: a part a dying replica finished and another finished
  again counts once, and progress is the set's size;
- ``queued`` becomes ``running`` when its first part is done or begun;
- exactly one replica finishes a job: the one whose claim finds every part done and no
  live hold by another (a finisher that dies lets its hold lapse, and the part message
  it still held brings another replica to finish);
- only the finisher holding the claim completes it; a job ends once (completed, failed or
  cancelled), and a job being finished cannot be cancelled.

Each function returns the record as it is after the change, or None when its condition
did not hold (the job moved on meanwhile, or is gone).
"""

from __future__ import annotations

from typing import Any

from tempaudio_service.jobs.job import CANCELLED, COMPLETED, FAILED, QUEUED, RUNNING, Job
from tempaudio_service.storage.job_table import JobTable

_UNFINISHED = "#s IN (:queued, :running)"
_STATUS = {"#s": "status"}
_STATES = {":queued": QUEUED, ":running": RUNNING}


def _job(record: dict[str, Any] | None) -> Job | None:
    return None if record is None else Job.from_record(record)


def part_done(table: JobTable, job_id: str, index: int, now: int, expires: int) -> Job | None:
    """Count part ``index`` done; the record lives ``expires`` while the job goes on."""
    sets, names = table.expiry_names()
    return _job(
        table.update(
            job_id,
            f"ADD done :part SET #s = :running, started_at = if_not_exists(started_at, :now),"
            f" {sets}",
            {":part": {index}, ":now": now, ":expires": expires, **_STATES},
            names={**names, **_STATUS},
            condition=_UNFINISHED,
        )
    )


def started(table: JobTable, job_id: str, now: int) -> Job | None:
    return _job(
        table.update(
            job_id,
            "SET #s = :running, started_at = :now",
            {":running": RUNNING, ":queued": QUEUED, ":now": now},
            names=_STATUS,
            condition="#s = :queued",
        )
    )


def claim(
    table: JobTable, job: Job, finisher: str, now: int, until: int, audio_id: str
) -> Job | None:
    """Hold the right to finish ``job`` until ``until``; its audio's id and time are fixed
    by the first claim (a second finisher makes the same object)."""
    return _job(
        table.update(
            job.job_id,
            "SET lease_until = :until, finisher = :me,"
            " audio_id_out = if_not_exists(audio_id_out, :audio_id),"
            " audio_created = if_not_exists(audio_created, :now)",
            {
                ":until": until,
                ":me": finisher,
                ":audio_id": audio_id,
                ":now": now,
                ":running": RUNNING,
                ":total": job.parts_total,
            },
            names=_STATUS,
            condition="#s = :running AND size(done) = :total AND"
            " (attribute_not_exists(lease_until) OR lease_until < :now OR finisher = :me)",
        )
    )


def hold(table: JobTable, job_id: str, finisher: str, until: int) -> Job | None:
    """Extend the finisher's hold (it is still joining the parts)."""
    return _job(
        table.update(
            job_id,
            "SET lease_until = :until",
            {":until": until, ":me": finisher, ":running": RUNNING},
            names=_STATUS,
            condition="#s = :running AND finisher = :me",
        )
    )


def completed(
    table: JobTable, job_id: str, finisher: str, result: tuple[str, str], now: int, expires: int
) -> Job | None:
    """The job's audio exists with its item: the job lives as long as its audio."""
    sets, names = table.expiry_names()
    return _job(
        table.update(
            job_id,
            "SET #s = :completed, finished_at = :now, result_date = :day,"
            f" result_audio_id = :audio_id, {sets} REMOVE lease_until",
            {
                ":completed": COMPLETED,
                ":running": RUNNING,
                ":now": now,
                ":day": result[0],
                ":audio_id": result[1],
                ":me": finisher,
                ":expires": expires,
            },
            names={**names, **_STATUS},
            condition="#s = :running AND finisher = :me",
        )
    )


def failed(
    table: JobTable, job_id: str, code: str, message: str, now: int, expires: int
) -> Job | None:
    sets, names = table.expiry_names()
    return _job(
        table.update(
            job_id,
            "SET #s = :failed, finished_at = :now, error_code = :code, error_message = :message,"
            f" {sets} REMOVE lease_until",
            {
                ":failed": FAILED,
                ":now": now,
                ":code": code,
                ":message": message[:1000],
                ":expires": expires,
                **_STATES,
            },
            names={**names, **_STATUS},
            condition=_UNFINISHED,
        )
    )


def cancelled(table: JobTable, job_id: str, now: int, expires: int) -> Job | None:
    """Cancel a job that is neither finished nor being finished."""
    sets, names = table.expiry_names()
    return _job(
        table.update(
            job_id,
            f"SET #s = :cancelled, finished_at = :now, {sets}",
            {":cancelled": CANCELLED, ":now": now, ":expires": expires, **_STATES},
            names={**names, **_STATUS},
            condition=f"{_UNFINISHED} AND (attribute_not_exists(lease_until) OR lease_until < :now)",
        )
    )


def callback_tried(
    table: JobTable,
    job_id: str,
    status: int | None,
    delivered_at: int | None = None,
    given_up: str | None = None,
) -> Job | None:
    """Record one delivery attempt of the job's callback (``status`` None: no answer)."""
    expression = "SET callback_attempts = if_not_exists(callback_attempts, :zero) + :one"
    values: dict[str, Any] = {":zero": 0, ":one": 1}
    if status is not None:
        expression += ", callback_last_status = :status"
        values[":status"] = status
    if delivered_at is not None:
        expression += ", callback_delivered_at = :at"
        values[":at"] = delivered_at
    if given_up is not None:
        expression += ", callback_given_up = :why"
        values[":why"] = given_up
    return _job(table.update(job_id, expression, values))
