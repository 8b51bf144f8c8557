"""OpenAI's speech API: ``POST /v1/audio/speech``, ``GET /v1/models``, ``GET /v1/audio/voices``.

A client of the official ``openai`` package points its ``base_url`` at ``…/v1`` and gets
speech. The audio is always streamed as it is made (OpenAI's endpoint answers chunked too);
naming a ``policy`` also keeps it, like ``POST /tts/stream``. Errors have OpenAI's shape, so
the client raises its usual ``APIStatusError`` subclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import callers
from .errors import ModelNotFound, TempAudioError
from .schemas import (
    OPENAI_MODELS,
    Model,
    ModelList,
    OpenAIError,
    OpenAIErrorDetail,
    OpenAIVoice,
    OpenAIVoiceList,
)
from .services import read_json, services_of
from .tts_request import parse_speech_request

PREFIX = "/v1/"
# OpenAI's voices; each speaks with the voice TEMPAUDIO_OPENAI_VOICES maps it to, else the
# default voice.
OPENAI_VOICES = (
    "alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer",
    "verse", "marin", "cedar",
)  # fmt: skip


def voice_aliases(configured: Mapping[str, str], default_voice: str) -> dict[str, str]:
    """OpenAI voice name -> installed Piper voice (pure)."""
    return {name: default_voice for name in OPENAI_VOICES} | dict(configured)


async def speech(request: Request) -> Response:
    services = services_of(request)
    settings = services.settings
    caller = await callers.caller_of(services, request)
    body = await read_json(request, settings.max_body_bytes, settings.body_timeout_seconds)
    _check_model(body)
    tts = parse_speech_request(
        body,
        voices=services.synth.voices,
        aliases=voice_aliases(settings.openai_voices, settings.default_voice),
        max_text_chars=settings.max_text_chars,
    )
    keep = tts.policy is not None
    # Refused before any work. Audio that is not kept answers to the default policy's
    # clients and quotas when callers are authenticated and there is a default.
    policy = None
    if keep or (services.authenticator is not None and services.book().default):
        policy = services.served(tts.policy)[0]
    await callers.admit_synthesis(services, request, caller, policy, tts.text)
    return callers.stream(services, request, tts, caller, policy, keep=keep)


def _check_model(body: Any) -> None:
    model = body.get("model") if isinstance(body, dict) else None
    if isinstance(model, str) and model not in OPENAI_MODELS:
        raise ModelNotFound(
            f"the model {model!r} does not exist; available: {', '.join(OPENAI_MODELS)}"
        )


async def models(request: Request) -> JSONResponse:
    listing = ModelList(data=[Model(id=name) for name in OPENAI_MODELS])
    return JSONResponse(listing.model_dump())


async def voices(request: Request) -> JSONResponse:
    services = services_of(request)
    settings = services.settings
    aliases = voice_aliases(settings.openai_voices, settings.default_voice)
    installed = sorted(services.synth.voices)
    listing = OpenAIVoiceList(
        voices=[
            OpenAIVoice(id=name, name=name, piper_voice=voice) for name, voice in aliases.items()
        ]
        + [OpenAIVoice(id=name, name=name, piper_voice=name) for name in installed]
    )
    return JSONResponse(listing.model_dump())


ROUTES = [
    Route("/v1/audio/speech", speech, methods=["POST"]),
    Route("/v1/models", models, methods=["GET"]),
    Route("/v1/audio/voices", voices, methods=["GET"]),
]

# tempaudio's codes as OpenAI's status and error type: 422 becomes 400, as OpenAI answers
# bad parameters (openai.BadRequestError).
_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """An error in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""
    status = 400 if status == 422 else status
    param = _param(message)
    detail = OpenAIErrorDetail(
        message=message, type=_TYPES.get(status, "server_error"), param=param, code=code
    )
    return JSONResponse(
        OpenAIError(error=detail).model_dump(), status_code=status, headers=dict(headers or {})
    )


def domain_error_response(error: TempAudioError) -> JSONResponse:
    return error_response(error.status_code, error.code, error.message, error.headers)


def _param(message: str) -> str | None:
    """The field a message names first (``'voice' must …``), as OpenAI's ``param``."""
    if message.startswith("'") and "'" in message[1:]:
        return message[1 : message.index("'", 1)]
    return "voice" if message.startswith("unknown voice") else None


def is_openai_path(path: str) -> bool:
    return path.startswith(PREFIX)
