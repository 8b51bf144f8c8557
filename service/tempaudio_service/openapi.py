"""The OpenAPI document served at /openapi.json (pure).

Bodies come from schemas.py (the classes that also validate); this module only says which
route takes and answers which, and fills in the limits that are settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import __version__, openai_schemas, schemas
from .formats import FORMATS

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
    caller: bool = False  # takes the caller's ServiceAccount token (README "Callers")


# What a request that makes audio may be refused with besides its body's errors.
CALLER_ERRORS = (("401", UNAUTHENTICATED), ("403", FORBIDDEN), ("429", QUOTA))


# Every body the service declares, in the document whether or not a route names it.
DOCUMENTED: tuple[type[BaseModel], ...] = (
    schemas.TtsRequestBody, schemas.TtsItem, schemas.VoiceList, schemas.PolicyList, schemas.Error,
    openai_schemas.SpeechRequestBody, openai_schemas.Model, openai_schemas.ModelList, openai_schemas.OpenAIVoiceList,
    openai_schemas.OpenAIError, openai_schemas.SpeechAudioDeltaEvent, openai_schemas.SpeechAudioDoneEvent,
)  # fmt: skip


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


OPERATIONS = (
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
    Operation("/voices", "get", "listVoices", "Voices this service can speak with.",
              answer=schemas.VoiceList),
    Operation(
        "/policies", "get", "listPolicies",
        "The TempAudioPolicies this service serves, with their retention.",
        answer=schemas.PolicyList,
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


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _operation(op: Operation) -> dict[str, Any]:
    error_model = openai_schemas.OpenAIError if op.openai else schemas.Error
    responses: dict[str, Any] = {}
    if op.audio:
        headers = {name: {"schema": {"type": "string"}} for name in STREAM_HEADERS}
        content: dict[str, Any] = {
            media: {"schema": {"type": "string", "format": "binary"}} for media in AUDIO_TYPES
        }
        if op.events:
            events = [
                _ref(openai_schemas.SpeechAudioDeltaEvent),
                _ref(openai_schemas.SpeechAudioDoneEvent),
            ]
            content["text/event-stream"] = {"schema": {"oneOf": events}}
        responses["200"] = {
            "description": op.answer_description,
            "headers": headers,
            "content": content,
        }
    elif op.answer is not None:
        responses["200"] = _json(op.answer, op.answer_description)
    else:
        responses["200"] = {"description": op.answer_description}
    merged: dict[str, list[str]] = {}
    for status, description in op.errors:
        merged.setdefault(status, []).append(description)
    for status, descriptions in merged.items():
        responses[status] = _json(error_model, " ".join(descriptions))
    document: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.operation_id,
        "responses": responses,
    }
    if op.caller:
        # The token, or none when the service authenticates no one (TEMPAUDIO_AUTH=none).
        document["security"] = [{"serviceAccountToken": []}, {}]
    if op.body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(op.body)}},
        }
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"} | ({"format": f} if f else {}),
        }
        for name, f in op.path_params
    ]
    if op.query_policy:
        parameters.append(
            {
                "name": "policy",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "maxLength": schemas.MAX_POLICY_CHARS},
                "description": "The policy the audio was stored under; default: the default.",
            }
        )
    if parameters:
        document["parameters"] = parameters
    return document


def openapi_document(*, max_text_chars: int, default_voice: str) -> dict[str, Any]:
    _, definitions = models_json_schema(
        [(model, "validation") for model in DOCUMENTED],
        ref_template="#/components/schemas/{model}",
    )
    components: dict[str, Any] = definitions["$defs"]
    # The limits that are settings.
    for name, field, limit in (
        ("TtsRequestBody", "text", max_text_chars),
        ("SpeechRequestBody", "input", min(openai_schemas.OPENAI_MAX_INPUT_CHARS, max_text_chars)),
    ):
        components[name]["properties"][field] |= {"minLength": 1, "maxLength": limit}
    components["TtsRequestBody"]["properties"]["voice"]["default"] = default_voice
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tempaudio",
            "version": __version__,
            "description": (
                "Text to short-lived audio in S3, answered with a presigned URL or streamed; "
                "and OpenAI's speech API under /v1."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "serviceAccountToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": (
                        "A projected Kubernetes ServiceAccount token for the audience "
                        "'tempaudio' (TEMPAUDIO_AUTH=serviceaccount; README \"Callers\")."
                    ),
                }
            },
        },
    }
