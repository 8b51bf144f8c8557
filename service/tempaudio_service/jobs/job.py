"""A job as the service holds it: its record in the policy's table, typed (pure).

``record()`` is what a new job's item holds; ``from_record`` reads one back, whichever
replica wrote or updated it. Times are whole epoch seconds, answered as ISO 8601.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = (
    "queued",
    "running",
    "completed",
    "failed",
    "cancelled",
)
STATUSES = (QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED)
FINISHED = frozenset({COMPLETED, FAILED, CANCELLED})
_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[45][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def is_valid_job_id(job_id: str) -> bool:
    """A uuid4 (a job without an idempotency key) or a uuid5 (one with)."""
    return _JOB_ID.match(job_id) is not None


def iso(epoch: int | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


@dataclass(frozen=True)
class Callback:
    """Where the job's end is told, and how that went."""

    url: str
    attempts: int = 0
    last_status: int | None = None
    delivered_at: int | None = None
    # Why it will not be delivered (an address no prefix allows, attempts used up).
    given_up: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "attempts": self.attempts,
            "last_status": self.last_status,
            "delivered_at": iso(self.delivered_at),
            "given_up": self.given_up,
        }


@dataclass(frozen=True)
class Job:
    job_id: str
    status: str
    # ``namespace/name`` of its policy, and the caller's ``namespace/serviceaccount``.
    policy: str
    caller: str | None
    created_at: int
    # The S3 folder of its request and parts: ``<prefix><date>/<job_id>/``.
    folder: str
    request_hash: str
    # The request's characters each part covers, in order.
    part_characters: tuple[int, ...]
    done: frozenset[int] = frozenset()
    started_at: int | None = None
    finished_at: int | None = None
    callback: Callback | None = None
    # The audio made (completed): its day and id.
    result: tuple[str, str] | None = None
    error: tuple[str, str] | None = None
    ttl: int = 0
    # The finisher's hold: until when, and who (a replica that dies lets it lapse).
    lease_until: int | None = None
    finisher: str | None = None
    # The id and time the audio is made under, chosen by the first finisher.
    audio_id: str | None = None
    audio_created: int | None = None

    @property
    def parts_total(self) -> int:
        return len(self.part_characters)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def progress(self) -> dict[str, int]:
        done = [i for i in self.done if 0 <= i < self.parts_total]
        return {
            "characters_done": sum(self.part_characters[i] for i in done),
            "characters_total": sum(self.part_characters),
            "parts_done": len(done),
            "parts_total": self.parts_total,
        }

    def record(self, ttl_attributes: tuple[str, ...]) -> dict[str, Any]:
        """A new job's item (job_table.py adds its key)."""
        record: dict[str, Any] = {
            "kind": "job",
            "job_id": self.job_id,
            "status": self.status,
            "policy": self.policy,
            "created_at": self.created_at,
            "folder": self.folder,
            "request_hash": self.request_hash,
            "part_characters": list(self.part_characters),
            **dict.fromkeys(ttl_attributes, self.ttl),
        }
        if self.caller is not None:
            record["caller"] = self.caller
        if self.callback is not None:
            record["callback_url"] = self.callback.url
            record["callback_attempts"] = 0
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Job:
        callback = None
        if record.get("callback_url"):
            callback = Callback(
                url=str(record["callback_url"]),
                attempts=int(record.get("callback_attempts", 0)),
                last_status=_int(record.get("callback_last_status")),
                delivered_at=_int(record.get("callback_delivered_at")),
                given_up=_str(record.get("callback_given_up")),
            )
        result = None
        if record.get("result_audio_id") and record.get("result_date"):
            result = (str(record["result_date"]), str(record["result_audio_id"]))
        error = None
        if record.get("error_code"):
            error = (str(record["error_code"]), str(record.get("error_message", "")))
        return cls(
            job_id=str(record["job_id"]),
            status=str(record.get("status", QUEUED)),
            policy=str(record.get("policy", "")),
            caller=_str(record.get("caller")),
            created_at=int(record.get("created_at", 0)),
            folder=str(record.get("folder", "")),
            request_hash=str(record.get("request_hash", "")),
            part_characters=tuple(int(n) for n in record.get("part_characters", ())),
            done=frozenset(int(n) for n in record.get("done", ())),
            started_at=_int(record.get("started_at")),
            finished_at=_int(record.get("finished_at")),
            callback=callback,
            result=result,
            error=error,
            ttl=int(record.get("ttl", 0)),
            lease_until=_int(record.get("lease_until")),
            finisher=_str(record.get("finisher")),
            audio_id=_str(record.get("audio_id_out")),
            audio_created=_int(record.get("audio_created")),
        )

    def as_json(self, policy_name: str) -> dict[str, Any]:
        """The job's answer without its audio (``GET`` adds the signed audio when done)."""
        body: dict[str, Any] = {
            "job_id": self.job_id,
            "status": self.status,
            "progress": self.progress(),
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "policy": policy_name,
        }
        if self.error is not None:
            body["error"] = {"code": self.error[0], "message": self.error[1]}
        if self.callback is not None:
            body["callback"] = self.callback.as_json()
        return body


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _str(value: Any) -> str | None:
    return None if value is None else str(value)
