"""Every route as the OpenAPI document declares it (pure data): what it takes, what it
answers and what it may be refused with. ``openapi.py`` builds the document from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from tempaudio_service.core.formats import FORMATS
from tempaudio_service.wire import job_schemas, openai_schemas, schemas, status_schemas

UNAVAILABLE = (
    "overloaded (queue full), storage_unavailable (names S3 or DynamoDB), shutting_down "
    "(this replica is draining), policy_not_ready (the operator has not accepted the policy) "
    "or policy_stale (no current view of the policies); see Retry-After."
)
INVALID = (
    "invalid_request, text_too_long, unknown_voice, unknown_policy; no_speech (nothing to "
    "say); audio_too_long (over the per-request audio cap)."
)
UNAVAILABLE_AUTH = (
    "auth_unavailable (TEMPAUDIO_AUTH=serviceaccount: the Kubernetes API cannot vouch for "
    "the caller now)."
)
UNAUTHENTICATED = (
    "unauthenticated: with TEMPAUDIO_AUTH=serviceaccount, no ServiceAccount token for the "
    "audience, or one the API server does not vouch for (expired, revoked, another audience)."
)
FORBIDDEN = "forbidden: the policy's clients do not name the caller (spec.clients)."
QUOTA = "quota_exceeded: the caller used its share under the policy's quotas; see Retry-After."
BODY_ERRORS = {
    "400": "malformed_json: the body is not valid JSON.",
    "408": "body_timeout: the body did not arrive in time.",
    "413": "body_too_large: the body is larger than the configured limit.",
}
AUDIO_TYPES = sorted({fmt.content_type for fmt in FORMATS.values()})
STREAM_HEADERS = (
    "X-Tempaudio-Audio-Id",
    "X-Tempaudio-Date",
    "X-Tempaudio-Policy",
    "X-Tempaudio-Url",
    "X-Tempaudio-Expires-At",
    "X-Tempaudio-Audio-Expires-At",
)


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    operation_id: str
    summary: str
    body: type[BaseModel] | None = None
    answer: type[BaseModel] | None = None
    answer_description: str = "OK."
    audio: bool = False  # the answer is streamed audio, not JSON
    events: bool = False  # or, with stream_format "sse", OpenAI's server-sent events
    errors: tuple[tuple[str, str], ...] = ()
    openai: bool = False  # errors in OpenAI's shape
    query_policy: bool = False
    path_params: tuple[tuple[str, str], ...] = ()
    caller: bool = False  # takes the caller's ServiceAccount token (docs/concepts/tenancy.md)
    content: tuple[str, ...] = ()  # the answer's media types, when it is neither JSON nor audio
    console: bool = False  # the web console's (TEMPAUDIO_CONSOLE): gone when it is off
    status: str = "200"  # the status of its answer


# What a request that makes audio may be refused with besides its body's errors.
CALLER_ERRORS = (("401", UNAUTHENTICATED), ("403", FORBIDDEN), ("429", QUOTA))


def _openai_body_errors() -> tuple[tuple[str, str], ...]:
    """BODY_ERRORS as /v1 answers them: what OpenAI refuses is a 400 (invalid_request_error)."""
    return tuple(
        ("400" if status in ("413", "415") else status, text)
        for status, text in BODY_ERRORS.items()
    )


def _synthesis_errors() -> tuple[tuple[str, str], ...]:
    return (
        *BODY_ERRORS.items(),
        *CALLER_ERRORS,
        ("422", INVALID),
        ("503", UNAVAILABLE + " " + UNAVAILABLE_AUTH),
    )


JOB_UNAVAILABLE = (
    "jobs_unavailable (no job queue, or no key to sign a callback with), or " + UNAVAILABLE
)
JOB_MISSING = (
    "not_found: no such job under the policy, another caller's, or one that ended and expired."
)

OPERATIONS = (
    Operation(
        "/tts/jobs", "post", "createJob",
        "Queue long text (up to 200,000 characters) as a job that every replica works in "
        "parts; follow it at Location (docs/api/jobs.md).",
        job_schemas.JobRequestBody, job_schemas.Job,
        "Queued (or, with the same Idempotency-Key and body, the job made before: "
        "Idempotent-Replayed: true); Location names it.",
        status="202",
        errors=(
            *BODY_ERRORS.items(),
            *CALLER_ERRORS,
            ("403", "jobs_disabled: the policy takes no jobs (spec.jobs.enabled)."),
            ("409", "idempotency_conflict: the Idempotency-Key was used with another body."),
            ("422", INVALID + " callback_not_allowed: callback_url is under none of the "
                    "policy's spec.jobs.callbackUrlPrefixes."),
            ("503", JOB_UNAVAILABLE + " " + UNAVAILABLE_AUTH),
        ),
        caller=True,
    ),
    Operation(
        "/tts/jobs", "get", "listJobs", "The caller's jobs under the policy, newest first.",
        answer=job_schemas.JobList,
        errors=(
            ("401", UNAUTHENTICATED),
            ("422", "unknown_policy: the service serves no such policy."),
            ("503", UNAVAILABLE + " " + UNAVAILABLE_AUTH),
        ),
        query_policy=True, caller=True,
    ),
    Operation(
        "/tts/jobs/{job_id}", "get", "getJob",
        "A job: its status and progress; once completed, its audio with fresh URLs.",
        answer=job_schemas.Job,
        errors=(
            ("401", UNAUTHENTICATED),
            ("404", JOB_MISSING),
            ("422", "unknown_policy: the service serves no such policy."),
            ("503", UNAVAILABLE + " " + UNAVAILABLE_AUTH),
        ),
        query_policy=True, path_params=(("job_id", "uuid"),), caller=True,
    ),
    Operation(
        "/tts/jobs/{job_id}", "delete", "cancelJob",
        "Cancel a queued or running job: its parts are removed and no audio is kept.",
        answer=job_schemas.Job, answer_description="The job, cancelled.",
        errors=(
            ("401", UNAUTHENTICATED),
            ("404", JOB_MISSING),
            ("409", "job_conflict: the job has ended, or is being finished."),
            ("422", "unknown_policy: the service serves no such policy."),
            ("503", UNAVAILABLE + " " + UNAVAILABLE_AUTH),
        ),
        query_policy=True, path_params=(("job_id", "uuid"),), caller=True,
    ),
    Operation(
        "/tts/sync", "post", "synthesize",
        "Synthesize text, store the audio and return a presigned URL.",
        schemas.TtsRequestBody, schemas.TtsItem, "Stored audio.", errors=_synthesis_errors(),
        caller=True,
    ),
    Operation(
        "/tts/stream", "post", "synthesizeStream",
        "Synthesize text and stream the audio sentence by sentence as it is made; it is "
        "stored as well, and the X-Tempaudio-* headers carry its id and presigned URL.",
        schemas.TtsRequestBody, None,
        "Audio, chunked. If storing fails at the end, the connection is cut before the last "
        "chunk. WAV streams carry 0xFFFFFFFF as their sizes (length unknown).",
        audio=True, errors=_synthesis_errors(), caller=True,
    ),
    Operation(
        "/tts/{date}/{audio_id}", "get", "getAudio", "Look up stored audio and sign a fresh URL.",
        None, schemas.TtsItem, "The audio, with a freshly signed URL.",
        errors=(
            ("401", UNAUTHENTICATED),
            ("404", ("Unknown, malformed or expired audio, or audio the caller may not read "
                    "(made by another caller, who is not among the policy's readers).")),
            ("422", "unknown_policy: the service serves no such policy."),
            ("503", UNAVAILABLE + " " + UNAVAILABLE_AUTH),
        ),
        query_policy=True, path_params=(("date", "date"), ("audio_id", "uuid")), caller=True,
    ),
    Operation(
        "/tts/{date}/{audio_id}/speech-marks", "get", "getSpeechMarks",
        "The stored audio's speech marks (JSON lines, one mark a line), read through the "
        "service for pages of its own origin (the web console); same checks as getAudio.",
        None, None, "The marks, as at speech_marks_url.",
        errors=(
            ("401", UNAUTHENTICATED),
            ("404", ("Unknown, malformed or expired audio, audio the caller may not read, or "
                    "audio made without speech marks.")),
            ("422", "unknown_policy: the service serves no such policy."),
            ("502", ("object_too_large: the stored marks are larger than any the service "
                    "writes (something else put them there).")),
            ("503", UNAVAILABLE + " " + UNAVAILABLE_AUTH),
        ),
        query_policy=True, path_params=(("date", "date"), ("audio_id", "uuid")), caller=True,
        content=("application/x-json-stream",),
    ),
    Operation("/", "get", "console", "The web console (docs/console.md).",
              content=("text/html",), console=True),
    Operation(
        "/console/config", "get", "consoleConfig",
        "What the web console reads before it speaks: the sync limit, and whether longer "
        "text may go as a job.",
        answer=status_schemas.ConsoleConfig, console=True,
    ),
    Operation(
        "/console/{name}", "get", "consoleFile", "The web console's script, style and icon.",
        errors=(("404", "not_found: no such file."),), path_params=(("name", ""),),
        content=("text/javascript", "text/css", "image/svg+xml"), console=True,
    ),
    Operation(
        "/voices", "get", "listVoices",
        "Voices this service can speak with: every one (declared voices as namespace/name), "
        "or with ?policy= those a request under it may name, and whether it allows each.",
        answer=status_schemas.VoiceList, query_policy=True,
        errors=(("422", "unknown_policy: the service serves no such policy."),),
    ),
    Operation(
        "/policies", "get", "listPolicies",
        "The TempAudioPolicies this service serves, with their retention.",
        answer=status_schemas.PolicyList,
        answer_description="Every policy known, served or not (with why not).",
    ),
    Operation("/healthz", "get", "healthz", "Liveness: the process serves requests."),
    Operation(
        "/readyz", "get", "readyz", "Readiness: voices loaded, bucket and table reachable.",
        errors=(("503", "Not ready; the body names the failing dependency."),),
    ),
    Operation("/metrics", "get", "metrics", "Prometheus metrics (text exposition format)."),
    Operation("/openapi.json", "get", "openapi", "This document."),
    Operation(
        "/v1/audio/speech", "post", "createSpeech",
        "OpenAI-compatible speech: the audio, streamed as it is made, as itself or (with "
        "stream_format 'sse') as OpenAI's server-sent events. With 'policy', also stored (the "
        "audio itself, either way), with the X-Tempaudio-* headers of POST /tts/stream.",
        openai_schemas.SpeechRequestBody, None,
        "Audio, chunked; or with stream_format 'sse', text/event-stream: one 'data:' line of "
        "JSON per event, SpeechAudioDeltaEvent as audio is made, then one SpeechAudioDoneEvent "
        "(after the audio is stored, with 'policy').",
        audio=True, events=True,
        errors=(
            *_openai_body_errors(),
            ("400", "Invalid parameters (OpenAI answers them with 400; 'param' names the "
                    "field): " + INVALID),
            *CALLER_ERRORS,
            ("404", "model_not_found: the model is not in GET /v1/models."),
            ("503", UNAVAILABLE + " " + UNAVAILABLE_AUTH),
        ),
        openai=True, caller=True,
    ),
    Operation("/v1/models", "get", "listModels", "OpenAI-compatible model list.",
              answer=openai_schemas.ModelList, openai=True),
    Operation(
        "/v1/models/{model}", "get", "retrieveModel", "OpenAI-compatible model lookup.",
        answer=openai_schemas.Model, answer_description="The model.",
        errors=(("404", "model_not_found: the model is not in GET /v1/models."),),
        openai=True, path_params=(("model", ""),),
    ),
    Operation(
        "/v1/audio/voices", "get", "listOpenAIVoices",
        "The voice names POST /v1/audio/speech takes: OpenAI's, mapped to installed voices "
        "(TEMPAUDIO_OPENAI_VOICES), and every installed voice by its own name.",
        answer=openai_schemas.OpenAIVoiceList, openai=True,
    ),
)  # fmt: skip
