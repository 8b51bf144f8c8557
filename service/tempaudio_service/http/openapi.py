"""The OpenAPI document served at /openapi.json (pure).

Bodies come from schemas.py (the classes that also validate); operations.py says which
route takes and answers which; this module builds the document and fills in the limits
that are settings.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from tempaudio_api.jobs import MAX_JOB_CHARACTERS
from tempaudio_service import __version__
from tempaudio_service.http.openapi_operations import (
    AUDIO_TYPES,
    OPERATIONS,
    STREAM_HEADERS,
    Operation,
)
from tempaudio_service.wire import job_schemas, openai_schemas, schemas, status_schemas

# Every body the service declares, in the document whether or not a route names it.
DOCUMENTED: tuple[type[BaseModel], ...] = (
    schemas.TtsRequestBody,
    schemas.TtsItem,
    job_schemas.JobRequestBody,
    job_schemas.Job,
    job_schemas.JobList,
    status_schemas.VoiceList,
    status_schemas.PolicyList,
    status_schemas.ConsoleConfig,
    schemas.Error,
    openai_schemas.SpeechRequestBody,
    openai_schemas.Model,
    openai_schemas.ModelList,
    openai_schemas.OpenAIVoiceList,
    openai_schemas.OpenAIError,
    openai_schemas.SpeechAudioDeltaEvent,
    openai_schemas.SpeechAudioDoneEvent,
    openai_schemas.SpeechErrorEvent,
)


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _answer(op: Operation) -> dict[str, Any]:
    """The 200 response: streamed audio (or events), a JSON body, another media type."""
    if op.audio:
        headers = {name: {"schema": {"type": "string"}} for name in STREAM_HEADERS}
        content: dict[str, Any] = {
            media: {"schema": {"type": "string", "format": "binary"}} for media in AUDIO_TYPES
        }
        if op.events:
            events = [
                _ref(openai_schemas.SpeechAudioDeltaEvent),
                _ref(openai_schemas.SpeechAudioDoneEvent),
                _ref(openai_schemas.SpeechErrorEvent),
            ]
            content["text/event-stream"] = {"schema": {"oneOf": events}}
        return {"description": op.answer_description, "headers": headers, "content": content}
    if op.answer is not None:
        return _json(op.answer, op.answer_description)
    if op.content:
        text = {"schema": {"type": "string"}}
        return {"description": op.answer_description, "content": dict.fromkeys(op.content, text)}
    return {"description": op.answer_description}


def _operation(op: Operation) -> dict[str, Any]:
    error_model = openai_schemas.OpenAIError if op.openai else schemas.Error
    responses: dict[str, Any] = {op.status: _answer(op)}
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


def openapi_document(
    *, max_text_chars: int, default_voice: str, console: bool = True
) -> dict[str, Any]:
    """The document of the routes served: the console's only when it is on."""
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
    components["JobRequestBody"]["properties"]["text"] |= {
        "minLength": 1,
        "maxLength": MAX_JOB_CHARACTERS,
    }
    for name in ("TtsRequestBody", "JobRequestBody"):
        components[name]["properties"]["voice"]["default"] = default_voice
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        if op.console and not console:
            continue
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
                        "'tempaudio' (TEMPAUDIO_AUTH=serviceaccount; docs/concepts/tenancy.md)."
                    ),
                }
            },
        },
    }
