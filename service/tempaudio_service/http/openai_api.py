"""OpenAI's speech API: ``POST /v1/audio/speech``, ``GET /v1/models[/{model}]``,
``GET /v1/audio/voices``.

A client of the official ``openai`` package points its ``base_url`` at ``…/v1`` and gets
speech. The audio is always streamed as it is made (OpenAI's endpoint answers chunked too),
as itself or, with ``stream_format: "sse"``, as OpenAI's server-sent events (sse.py);
naming a ``policy`` also keeps it, like ``POST /tts/stream``. Errors have OpenAI's shape,
type and ``param``, so the client raises its usual ``APIStatusError`` subclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tempaudio_service.audio.resolved import resolve
from tempaudio_service.audio.services import read_json, services_of
from tempaudio_service.audio.voice_view import requested_policy, voice_view
from tempaudio_service.core.errors import ModelNotFound, TempAudioError, cut
from tempaudio_service.http import admission
from tempaudio_service.wire.openai_schemas import (
    OPENAI_MODELS,
    Model,
    ModelList,
    OpenAIError,
    OpenAIVoice,
    OpenAIVoiceList,
    openai_error,
)
from tempaudio_service.wire.tts_request import parse_speech_request

PREFIX = "/v1/"


async def speech(request: Request) -> Response:
    services = services_of(request)
    settings = services.settings
    caller = await admission.caller_of(services, request)
    body = await read_json(request, settings.max_body_bytes, settings.body_timeout_seconds)
    _check_model(body)
    view = voice_view(services, requested_policy(services, body))
    tts = parse_speech_request(
        body, voices=view.voices, aliases=view.aliases, max_text_chars=settings.max_text_chars
    )
    view.check(tts.voice)
    keep = tts.policy is not None
    # Refused before any work, by the rule of every synthesis route in every auth mode:
    # the named policy's clients and quotas, else the default policy's. Audio that is not
    # kept answers to no policy only when there is no default (authentication aside).
    audio = None
    if keep or services.book().default is not None:
        audio = resolve(services, tts, caller)
        tts = audio.tts
    policy = None if audio is None else audio.policy
    await admission.admit_synthesis(services, request, caller, policy, tts.text)
    return admission.stream(services, request, tts, caller, audio, keep=keep)


def _check_model(body: Any) -> None:
    model = body.get("model") if isinstance(body, dict) else None
    if isinstance(model, str) and model not in OPENAI_MODELS:
        raise _model_not_found(model)


def _model_not_found(model: str) -> ModelNotFound:
    return ModelNotFound(
        f"the model {cut(model)!r} does not exist; available: {', '.join(OPENAI_MODELS)}"
    )


async def models(request: Request) -> JSONResponse:
    listing = ModelList(data=[Model(id=name) for name in OPENAI_MODELS])
    return JSONResponse(listing.model_dump())


async def model(request: Request) -> JSONResponse:
    name = str(request.path_params["model"])
    if name not in OPENAI_MODELS:
        raise _model_not_found(name)
    return JSONResponse(Model(id=name).model_dump())


async def voices(request: Request) -> JSONResponse:
    """The names ``/v1/audio/speech`` takes under the policy of ``?policy=`` (else the
    default): OpenAI's, mapped by the service and the policy, and every voice the policy
    allows by its own name."""
    services = services_of(request)
    view = voice_view(
        services, requested_policy(services, {"policy": request.query_params.get("policy")})
    )
    allowed = sorted(
        name
        for name in view.voices
        if "/" not in name and (view.allowed is None or name in view.allowed)
    )
    listing = OpenAIVoiceList(
        voices=[
            OpenAIVoice(id=name, name=name, piper_voice=voice)
            for name, voice in view.aliases.items()
        ]
        + [OpenAIVoice(id=name, name=name, piper_voice=view.voices[name].name) for name in allowed]
    )
    return JSONResponse(listing.model_dump())


ROUTES = [
    Route("/v1/audio/speech", speech, methods=["POST"]),
    Route("/v1/models", models, methods=["GET"]),
    Route("/v1/models/{model}", model, methods=["GET"]),
    Route("/v1/audio/voices", voices, methods=["GET"]),
]


def error_response(
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    param: str | None = None,
) -> JSONResponse:
    """An error in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""
    status, detail = openai_error(status, code, message, param)
    return JSONResponse(
        OpenAIError(error=detail).model_dump(), status_code=status, headers=dict(headers or {})
    )


def domain_error_response(error: TempAudioError) -> JSONResponse:
    return error_response(
        error.status_code, error.code, error.message, error.headers, param=error.param
    )


def is_openai_path(path: str) -> bool:
    return path.startswith(PREFIX)
