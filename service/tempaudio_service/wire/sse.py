"""OpenAI's speech events (``stream_format: "sse"``) on the wire (pure).

Each event is one ``data:`` line of JSON and a blank line, without ``event:`` lines, as
OpenAI sends them: ``speech.audio.delta`` with the next bytes of the audio in base64, as they
are made, then one ``speech.audio.done`` with the usage. With ``speech_marks``, each mark is a
``speech.mark`` event before the delta that holds its audio. A stream the service cannot
finish ends with an ``error`` event in OpenAI's error shape instead of ``speech.audio.done``.
The shapes are declared in openai_schemas.py.
"""

from __future__ import annotations

import base64

from pydantic import BaseModel

from tempaudio_service.core.errors import TempAudioError
from tempaudio_service.speech.marks import SpeechMark
from tempaudio_service.wire.openai_schemas import (
    SpeechAudioDeltaEvent,
    SpeechAudioDoneEvent,
    SpeechErrorEvent,
    SpeechMarkEvent,
    SpeechUsage,
    openai_error,
)
from tempaudio_service.wire.openai_schemas import SpeechMark as SpeechMarkBody

MEDIA_TYPE = "text/event-stream"


def event(payload: BaseModel) -> bytes:
    return b"data: " + payload.model_dump_json().encode() + b"\n\n"


def audio_delta(audio: bytes) -> bytes:
    """The event carrying ``audio``, the next bytes of the audio file."""
    return event(SpeechAudioDeltaEvent(audio=base64.b64encode(audio).decode("ascii")))


def mark(speech_mark: SpeechMark) -> bytes:
    """A ``speech.mark`` event (tempaudio's: requests with ``speech_marks``)."""
    return event(SpeechMarkEvent(mark=SpeechMarkBody.model_validate(speech_mark.as_json())))


def usage(characters: int, audio_seconds: float) -> SpeechUsage:
    """Piper has no tokens: the input counts its characters, the output its milliseconds."""
    milliseconds = round(audio_seconds * 1000)
    return SpeechUsage(
        input_tokens=characters, output_tokens=milliseconds, total_tokens=characters + milliseconds
    )


def audio_done(characters: int, audio_seconds: float) -> bytes:
    """The last event, for ``characters`` of input that made ``audio_seconds`` of audio."""
    return event(SpeechAudioDoneEvent(usage=usage(characters, audio_seconds)))


def error(failure: TempAudioError) -> bytes:
    """The last event of a stream cut by ``failure``, in OpenAI's error shape."""
    _, detail = openai_error(failure.status_code, failure.code, failure.message, failure.param)
    return event(SpeechErrorEvent(error=detail))
