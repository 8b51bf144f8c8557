"""The OpenAI-compatible API's bodies (``/v1``), declared once as schemas.py's are: OpenAI's
request, its server-sent events, its model and voice listings and its error shape."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from tempaudio_service.wire.schemas import (
    POLICY_MUST_BE,
    SPEECH_MARKS_MUST_BE,
    Body,
    MarkType,
    PolicyName,
    ResponseFormat,
    SpeakableText,
    SpeechMarkTypes,
    TextType,
)

OPENAI_MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "piper")
# OpenAI's limit on 'input'; /v1 takes the lower of it and TEMPAUDIO_MAX_TEXT_CHARS.
OPENAI_MAX_INPUT_CHARS = 4096


class VoiceReference(BaseModel):
    """A voice named by an object, as newer OpenAI clients send custom voices."""

    model_config = ConfigDict(strict=True, extra="ignore")

    id: str = Field(min_length=1, description="A voice name, as 'voice' takes it as a string.")


class SpeechRequestBody(Body):
    """``POST /v1/audio/speech``, as OpenAI declares it, plus tempaudio's own fields.

    Unknown fields are ignored, as clients send newer OpenAI parameters.
    """

    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)
    MUST_BE: ClassVar[dict[str, str]] = {
        "model": "a model id from GET /v1/models",
        "input": "a non-empty string",
        "voice": 'a voice name (GET /v1/audio/voices) or {"id": <a voice name>}',
        "speed": "a number",
        "instructions": "a string",
        "sample_rate": "an integer",
        "policy": POLICY_MUST_BE,
        "speech_marks": SPEECH_MARKS_MUST_BE,
    }

    model: str = Field(description=f"One of {', '.join(OPENAI_MODELS)}: all are Piper.")
    input: SpeakableText = Field(description="What to say.")
    voice: str | VoiceReference = Field(
        description=(
            "An OpenAI voice name (mapped, see GET /v1/audio/voices) or a Piper voice; or "
            'either as {"id": name}, the object OpenAI takes for custom voices.'
        )
    )
    response_format: ResponseFormat = Field("mp3", description="Audio format of the stream.")
    speed: float = Field(1.0, ge=0.25, le=4.0, description="0.25 to 4.0; 1.0 is the voice's own.")
    instructions: str | None = Field(None, description="Accepted and ignored (Piper has none).")
    stream_format: Literal["audio", "sse"] = Field(
        "audio",
        description=(
            "audio: the audio itself, chunked. sse: server-sent events (text/event-stream), "
            "SpeechAudioDeltaEvent as audio is made, then one SpeechAudioDoneEvent."
        ),
    )
    sample_rate: int | None = Field(
        None, ge=8000, le=48000, description="tempaudio: resample to this rate (Hz)."
    )
    policy: PolicyName | None = Field(
        None,
        description=(
            "tempaudio: also store the audio under this TempAudioPolicy; the response headers "
            "then carry its presigned URL (X-Tempaudio-Url) and id."
        ),
    )
    text_type: TextType = Field("text", description="tempaudio: ssml: 'input' is SSML.")
    speech_marks: SpeechMarkTypes = Field(
        default_factory=list,
        description=(
            "tempaudio, with stream_format sse: speech marks as speech.mark events beside "
            "the audio deltas (word, sentence, ssml)."
        ),
    )


class SpeechMark(BaseModel):
    """Amazon Polly's speech mark: ``start``/``end`` are character offsets into the input."""

    time: int = Field(description="Milliseconds from the start of the audio.")
    type: MarkType
    start: int
    end: int
    value: str


class SpeechMarkEvent(BaseModel):
    """tempaudio, ``stream_format: "sse"`` with ``speech_marks``: a mark, sent before the
    delta that holds the audio it marks."""

    type: Literal["speech.mark"] = "speech.mark"
    mark: SpeechMark


class SpeechAudioDeltaEvent(BaseModel):
    """``stream_format: "sse"``: a piece of the audio, in order; the pieces decoded and joined
    are the audio file."""

    type: Literal["speech.audio.delta"] = "speech.audio.delta"
    audio: str = Field(description="The next bytes of the audio, base64.")


class SpeechUsage(BaseModel):
    """OpenAI counts tokens; Piper has none, so tempaudio counts what it has."""

    input_tokens: int = Field(description="Characters of 'input'.")
    output_tokens: int = Field(description="Milliseconds of audio made.")
    total_tokens: int = Field(description="input_tokens + output_tokens, as OpenAI sums them.")


class SpeechAudioDoneEvent(BaseModel):
    """``stream_format: "sse"``: the last event, sent once all of the audio was (and, with
    'policy', once it is stored)."""

    type: Literal["speech.audio.done"] = "speech.audio.done"
    usage: SpeechUsage


class Model(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "tempaudio"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class OpenAIVoice(BaseModel):
    id: str = Field(description="The name a request may use.")
    name: str
    piper_voice: str = Field(description="The installed Piper voice it speaks with.")


class OpenAIVoiceList(BaseModel):
    voices: list[OpenAIVoice]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, not_found_error, server_error, …")
    param: str | None = None
    code: str | None = Field(None, description="tempaudio's error code.")


class OpenAIError(BaseModel):
    error: OpenAIErrorDetail


class SpeechErrorEvent(BaseModel):
    """``stream_format: "sse"``: the last event of a stream the service could not finish (its
    audio went over the cap, could not be stored, the service shut down), in place of
    ``speech.audio.done``. It carries OpenAI's error shape, which the ``openai`` client's
    event reader raises as an ``APIError``."""

    type: Literal["error"] = "error"
    error: OpenAIErrorDetail


# Statuses OpenAI answers as 400 for a request it will not take (openai.BadRequestError).
_BAD_REQUEST = frozenset({400, 413, 415, 422})
# OpenAI's error type by status; any other 4xx is an invalid_request_error, a 5xx a
# server_error.
_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    429: "rate_limit_error",
}
# tempaudio's field names where /v1 names the field otherwise.
_FIELDS = {"text": "input"}


def openai_status(status: int) -> tuple[int, str]:
    """tempaudio's status as OpenAI's status and error type (pure)."""
    if status >= 500:
        return status, "server_error"
    if status in _BAD_REQUEST:
        return 400, "invalid_request_error"
    return status, _TYPES.get(status, "invalid_request_error")


def openai_error(
    status: int, code: str, message: str, param: str | None = None
) -> tuple[int, OpenAIErrorDetail]:
    """tempaudio's error as OpenAI's status and error (pure)."""
    status, kind = openai_status(status)
    detail = OpenAIErrorDetail(
        message=message, type=kind, param=_FIELDS.get(param or "", param), code=code
    )
    return status, detail
