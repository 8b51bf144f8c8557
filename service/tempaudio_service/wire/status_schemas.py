"""The bodies of the status endpoints (``GET /voices``, ``GET /policies``, the console's
``GET /console/config``), declared once as schemas.py's are: validation of what they answer
and the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Voice(BaseModel):
    name: str
    sample_rate: int
    language: str
    quality: str | None
    num_speakers: int
    speakers: dict[str, int]
    word_timings: bool = Field(False, description="The voice can give speech marks and captions.")
    source: Literal["bundled", "volume", "resource"] = Field(
        "bundled",
        description=(
            "bundled (the image's), volume (TEMPAUDIO_VOICES_DIR) or resource (a "
            "TempAudioVoice, named namespace/name without ?policy=)."
        ),
    )
    version: str | None = Field(None, description="A declared voice's SHA-256 (its model's).")
    ready: bool = Field(True, description="It can be spoken now.")
    reason: str | None = Field(
        None,
        description="Why not: ObjectMissing, HashMismatch, ConfigInvalid, Unreadable, Pending.",
    )
    resident: bool = Field(False, description="Its sessions are loaded (no fetch, no load).")
    allowed: bool = Field(True, description="The policy of ?policy= allows it (spec.voices).")


class VoiceList(BaseModel):
    default: str
    voices: list[Voice]


class PolicyQuotas(BaseModel):
    requests_per_minute: int | None = None
    audio_seconds_per_hour: int | None = None


class LexiconVersion(BaseModel):
    name: str
    version: str = Field(description="A digest of its entries: a new one after every edit.")


class Policy(BaseModel):
    name: str
    namespace: str
    ready: bool
    default: bool
    retention: str | None = Field(None, description="What new audio is promised, e.g. 24h.")
    bucket: str | None = None
    prefix: str | None = None
    table: str | None = None
    ttl_attribute: str | None = None
    generation: int | None = None
    repeat_cache: bool | None = Field(None, description="spec.repeatCache (served policies).")
    repeat_cache_scope: str | None = Field(
        None, description="spec.repeatCacheScope: Caller (each caller's own) or Policy (shared)."
    )
    key_schema: str | None = Field(
        None, description="spec.dynamodb.keySchema: DateAudioId (the seed's) or AudioId."
    )
    names_clients: bool | None = Field(
        None, description="spec.clients is set: only the callers it names may synthesize."
    )
    quotas: PolicyQuotas | None = Field(None, description="spec.quotas, per caller, shared.")
    lexicons: list[LexiconVersion] | None = Field(
        None, description="spec.lexicons as served: what every request is said with, in order."
    )
    reason: str | None = Field(None, description="Why it is not ready.")
    message: str | None = None


class PolicyList(BaseModel):
    default: str | None
    policies: list[Policy]


class ConsoleConfig(BaseModel):
    """What the web console needs to know before it speaks: which route a text takes."""

    max_text_chars: int = Field(description="The longest text POST /tts/sync takes.")
    jobs: bool = Field(description="The service has a job queue: POST /tts/jobs is served.")
    max_job_chars: int = Field(
        description="The longest text any policy lets a job say (spec.jobs.maxCharacters may "
        "hold it lower, or spec.jobs.enabled turn jobs off, under a policy)."
    )
