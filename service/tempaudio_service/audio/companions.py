"""Objects kept beside the audio (speech marks, captions): their keys, bodies and copies.

They share the audio's key stem (``<prefix><date>/<id>.marks``, ``.vtt``, ``.srt``), so
the cleanup and the lifecycle rule, which go by prefix and age, remove them with it; the
item names each (``speech_marks_s3_url``, ``captions_s3_url``) and the repository writes
them before the audio and undoes them with it."""

from __future__ import annotations

from collections.abc import Sequence

from tempaudio_service.audio.rendering import RenderStream
from tempaudio_service.speech import marks
from tempaudio_service.speech.voices import Timing
from tempaudio_service.storage import layout
from tempaudio_service.storage.layout import AudioItem
from tempaudio_service.storage.repository import Companion, CompanionCopy
from tempaudio_service.wire import sse
from tempaudio_service.wire.tts_request import TtsRequest

# Objects an item may name beside its audio.
NAMES = layout.COMPANION_NAMES


def keys_for(tts: TtsRequest, key: str) -> dict[str, str]:
    """Name -> key of what ``tts`` asks to keep beside the audio at ``key``."""
    keys: dict[str, str] = {}
    if tts.speech_marks:
        keys["speech_marks"] = layout.companion_key(key, marks.MARKS_EXTENSION)
    if tts.captions:
        keys["captions"] = layout.companion_key(key, marks.CAPTIONS[tts.captions][0])
    return keys


def files(
    tts: TtsRequest,
    item: AudioItem,
    timings: Sequence[Timing],
    num_frames: int,
    voice_rate: int,
) -> tuple[Companion, ...]:
    """The speech marks and captions ``item`` names, made from ``timings``."""
    found = marks.speech_marks(timings, tts.text, voice_rate)
    keys = item.companions
    made: list[Companion] = []
    if "speech_marks" in keys:
        body = marks.json_lines(found, tts.speech_marks)
        made.append((keys["speech_marks"], body, marks.MARKS_CONTENT_TYPE))
    if "captions" in keys and tts.captions:
        duration_ms = (num_frames * 1000) // voice_rate
        cues = marks.cues(found, duration_ms, tts.text, verbatim=tts.text_type == "text")
        body = marks.caption_file(cues, tts.captions)
        made.append((keys["captions"], body, marks.CAPTIONS[tts.captions][1]))
    return tuple(made)


def copies(source_key: str, item: AudioItem) -> tuple[CompanionCopy, ...]:
    """A repeat's companion copies: the source has the same ones (what a request keeps
    beside its audio is part of the repeat cache's key)."""
    return tuple(
        (layout.companion_key(source_key, key.rsplit(".", 1)[-1]), key, _content_type(key))
        for key in item.companions.values()
    )


def _content_type(key: str) -> str:
    extension = key.rsplit(".", 1)[-1]
    if extension == marks.MARKS_EXTENSION:
        return marks.MARKS_CONTENT_TYPE
    return next(ctype for ext, ctype in marks.CAPTIONS.values() if ext == extension)


class MarkEvents:
    """OpenAI's audio deltas, each after the speech marks found for its audio;
    ``rest(stream)`` sends the marks found after the last audio (a trailing ``<mark>``)."""

    def __init__(self, tts: TtsRequest) -> None:
        self._tts = tts
        self._sent = 0

    def _new(self, stream: RenderStream) -> bytes:
        found = marks.speech_marks(stream.timings[self._sent :], self._tts.text, stream.voice_rate)
        self._sent = len(stream.timings)
        return b"".join(sse.mark(mark) for mark in found if mark.type in self._tts.speech_marks)

    def frame(self, stream: RenderStream, chunk: bytes) -> bytes:
        return self._new(stream) + sse.audio_delta(chunk)

    def rest(self, stream: RenderStream) -> bytes:
        return self._new(stream)
