"""A validated synthesis request: the declared body (schemas.py) checked against what this
service has loaded and allows (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tempaudio_api.lexicon import Lexicon
from tempaudio_service.core.errors import InvalidRequest, TextTooLong, UnknownVoice, cut
from tempaudio_service.core.formats import FORMATS, AudioFormat
from tempaudio_service.speech.pronounce import with_lexicons
from tempaudio_service.speech.script import Script, plain
from tempaudio_service.speech.ssml import parse_ssml
from tempaudio_service.speech.voices import SynthesisOptions, VoiceInfo
from tempaudio_service.wire.openai_schemas import OPENAI_MAX_INPUT_CHARS, SpeechRequestBody
from tempaudio_service.wire.schemas import TtsRequestBody


@dataclass(frozen=True)
class TtsRequest:
    text: str
    voice: str
    options: SynthesisOptions
    # The TempAudioPolicy named by the request; None: the service's default.
    policy: str | None = None
    format: str = "wav"
    # The rate the audio is encoded at.
    sample_rate: int = 22050
    # The request allows the repeat cache (repeat_cache.py).
    cache: bool = True
    # How a stream goes on the wire: "audio" (itself) or "sse" (OpenAI's events, sse.py).
    stream_format: str = "audio"
    # "text" or "ssml" (Polly's TextType): how ``text`` is read.
    text_type: str = "text"
    # What is said, parsed (SSML); None: ``text`` as written.
    script: Script | None = None
    # The policy's lexicons, in order: applied on the synthesis worker (``spoken``).
    lexicons: tuple[Lexicon, ...] = ()
    # The most characters the request may say with its lexicons' aliases (the limit on its
    # text: TEMPAUDIO_MAX_TEXT_CHARS, or OpenAI's), and the field that holds its text.
    max_said_chars: int | None = None
    text_field: str = "text"
    # Speech marks (marks.MARK_TYPES) and captions ("vtt", "srt") to make with the audio.
    speech_marks: tuple[str, ...] = ()
    captions: str | None = None
    # A declared voice's version (its model's SHA-256): the repeat cache keys on it.
    voice_version: str | None = None

    @property
    def audio_format(self) -> AudioFormat:
        return FORMATS[self.format]

    @property
    def said(self) -> Script:
        return self.script if self.script is not None else plain(self.text)

    def spoken(self) -> Script:
        """What the voice says: the script with the lexicons (linear in the text, but not
        free: call it on a synthesis worker, not on the event loop). ``TextTooLong``, before
        anything is phonemized, when the aliases make it say more than ``max_said_chars``."""
        return with_lexicons(
            self.said, self.lexicons, max_chars=self.max_said_chars, field=self.text_field
        )

    @property
    def timed(self) -> bool:
        """Word timings are needed: for marks, or to place captions."""
        return bool(self.speech_marks or self.captions)


def _speaker(value: int | str | None, voice: VoiceInfo) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in voice.speakers:
            known = ", ".join(sorted(voice.speakers)) or "none"
            raise InvalidRequest(
                f"voice {voice.name} has no speaker {cut(value)!r} (known: {known})",
                param="speaker",
            )
        return voice.speakers[value]
    if not 0 <= value < voice.num_speakers:
        shown = value if abs(value) < 10**15 else "a huge integer"
        raise InvalidRequest(
            f"voice {voice.name} has {voice.num_speakers} speaker(s); 'speaker' {shown} is out of range",
            param="speaker",
        )
    return value


def _voice(name: str, voices: Mapping[str, VoiceInfo]) -> VoiceInfo:
    voice = voices.get(name)
    if voice is None:
        raise UnknownVoice(f"unknown voice {cut(name)!r}; available: {', '.join(sorted(voices))}")
    return voice


def _text(text: str, field: str, max_text_chars: int) -> str:
    if len(text) > max_text_chars:
        raise TextTooLong(
            f"'{field}' has {len(text)} characters; the limit is {max_text_chars}", param=field
        )
    return text


def _rate(fmt: AudioFormat, voice: VoiceInfo, requested: int | None) -> int:
    rate = fmt.output_rate(voice.sample_rate, requested)
    problem = fmt.rate_problem(rate)
    if problem:
        raise InvalidRequest(problem, param="sample_rate")
    return rate


def _script(text: str, text_type: str) -> Script:
    return parse_ssml(text) if text_type == "ssml" else plain(text)


def _timings(voice: VoiceInfo, marks: Sequence[str], captions: str | None) -> None:
    if (marks or captions) and not voice.word_timings:
        raise InvalidRequest(
            f"voice {voice.name} cannot give word timings (speech marks, captions)",
            param="speech_marks" if marks else "captions",
        )


def parse_tts_request(
    body: Any, *, voices: Mapping[str, VoiceInfo], default_voice: str, max_text_chars: int
) -> TtsRequest:
    parsed: TtsRequestBody = TtsRequestBody.parse(body)
    text = _text(parsed.text, "text", max_text_chars)
    voice = _voice(parsed.voice or default_voice, voices)
    options = SynthesisOptions(
        speaker=_speaker(parsed.speaker, voice),
        length_scale=parsed.length_scale,
        noise_scale=parsed.noise_scale,
        noise_w=parsed.noise_w,
        sentence_silence=parsed.sentence_silence or 0.0,
    )
    fmt = FORMATS[parsed.response_format]
    _timings(voice, parsed.speech_marks, parsed.captions)
    return TtsRequest(
        text=text,
        voice=voice.name,
        options=options,
        policy=parsed.policy,
        format=fmt.name,
        sample_rate=_rate(fmt, voice, parsed.sample_rate),
        cache=parsed.cache,
        text_type=parsed.text_type,
        script=_script(text, parsed.text_type),
        speech_marks=tuple(parsed.speech_marks),
        captions=parsed.captions,
        max_said_chars=max_text_chars,
        voice_version=voice.version,
    )


def parse_speech_request(
    body: Any,
    *,
    voices: Mapping[str, VoiceInfo],
    aliases: Mapping[str, str],
    max_text_chars: int,
) -> TtsRequest:
    """An OpenAI ``/v1/audio/speech`` body; ``aliases`` maps OpenAI voice names to Piper's.
    The input is held to OpenAI's limit when ``max_text_chars`` (the service's) is higher."""
    parsed: SpeechRequestBody = SpeechRequestBody.parse(body)
    limit = min(OPENAI_MAX_INPUT_CHARS, max_text_chars)
    text = _text(parsed.input, "input", limit)
    name = parsed.voice if isinstance(parsed.voice, str) else parsed.voice.id
    voice = _voice(aliases.get(name, name), voices)
    fmt = FORMATS[parsed.response_format]
    # OpenAI's pcm is 24 kHz: a client that plays it as such gets the right pitch.
    requested = parsed.sample_rate or (24000 if fmt.name == "pcm" else None)
    if parsed.speech_marks and parsed.stream_format != "sse":
        raise InvalidRequest(
            "'speech_marks' come as events: they need stream_format sse", param="speech_marks"
        )
    _timings(voice, parsed.speech_marks, None)
    return TtsRequest(
        text=text,
        voice=voice.name,
        # Piper's length_scale is time per phoneme: the inverse of a speed.
        options=SynthesisOptions(length_scale=None if parsed.speed == 1.0 else 1 / parsed.speed),
        policy=parsed.policy,
        format=fmt.name,
        sample_rate=_rate(fmt, voice, requested),
        stream_format=parsed.stream_format,
        text_type=parsed.text_type,
        script=_script(text, parsed.text_type),
        speech_marks=tuple(parsed.speech_marks),
        max_said_chars=limit,
        text_field="input",
        voice_version=voice.version,
    )
