"""The bodies of ``/tts/jobs`` (docs/api/jobs.md), declared for the OpenAPI document.

A job's request is ``POST /tts/sync``'s body and a ``callback_url``: the handler takes the
URL out and validates the rest with ``TtsRequestBody`` itself, so the two cannot drift.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tempaudio_service.wire.schemas import ResponseFormat, TtsRequestBody

JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]


class JobRequestBody(TtsRequestBody):
    """``POST /tts/jobs``: up to 200,000 characters (a policy's spec.jobs.maxCharacters)."""

    callback_url: str | None = Field(
        None,
        max_length=2048,
        description=(
            "Where the job's end is POSTed, signed per Standard Webhooks; it must be under "
            "one of the policy's spec.jobs.callbackUrlPrefixes."
        ),
    )


class JobProgress(BaseModel):
    characters_done: int
    characters_total: int
    parts_done: int
    parts_total: int


class JobError(BaseModel):
    code: str
    message: str


class JobCallback(BaseModel):
    url: str
    attempts: int
    last_status: int | None = None
    delivered_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    given_up: str | None = Field(None, description="Why it will not be delivered.")


class Job(BaseModel):
    """A job; once completed, what ``POST /tts/sync`` answers for its audio as well (its
    text aside), with URLs signed now."""

    job_id: str = Field(json_schema_extra={"format": "uuid"})
    status: JobStatus
    progress: JobProgress
    created_at: str = Field(json_schema_extra={"format": "date-time"})
    started_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    finished_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    policy: str
    error: JobError | None = None
    callback: JobCallback | None = None
    audio_id: str | None = Field(None, json_schema_extra={"format": "uuid"})
    date: str | None = Field(None, json_schema_extra={"format": "date"})
    s3_url: str | None = None
    duration: float | None = None
    expires_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    audio_expires_at: str | None = Field(None, json_schema_extra={"format": "date-time"})
    voice_id: str | None = None
    format: ResponseFormat | None = None
    content_type: str | None = None
    sample_rate: int | None = None
    speech_marks_url: str | None = None
    captions_url: str | None = None
    audio_expired: bool | None = Field(
        None, description="True: the job completed, and its audio has expired since."
    )


class JobList(BaseModel):
    policy: str
    jobs: list[Job] = Field(description="The caller's jobs under the policy, newest first.")
