"""What a voice is and what a synthesizer does (pure): the Synthesizer protocol, a voice's
description and the knobs of one synthesis. Request validation reads these, never Piper
(synth.py is the Piper implementation)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tempaudio_service.core.declared_voices import DeclaredVoice
from tempaudio_service.core.errors import VoiceNotReady
from tempaudio_service.speech.script import Script, plain


@dataclass(frozen=True)
class VoiceInfo:
    name: str
    sample_rate: int
    language: str
    quality: str | None
    num_speakers: int
    speakers: Mapping[str, int] = field(default_factory=dict)
    # The model gives its phoneme durations: word timings (speech marks) are available.
    word_timings: bool = False
    # bundled (the package's), volume (TEMPAUDIO_VOICES_DIR) or resource (a TempAudioVoice).
    source: str = "bundled"
    # A declared voice's version: its model's SHA-256 (the repeat cache keys on it).
    version: str | None = None
    # A declared voice may be known and not usable (the operator's or the service's
    # verdict: ObjectMissing, HashMismatch, ConfigInvalid, Unreadable).
    ready: bool = True
    reason: str | None = None
    message: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sample_rate": self.sample_rate,
            "language": self.language,
            "quality": self.quality,
            "num_speakers": self.num_speakers,
            "speakers": dict(self.speakers),
            "word_timings": self.word_timings,
            "source": self.source,
            "version": self.version,
            "ready": self.ready,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class SynthesisOptions:
    """Piper's synthesis knobs; None means the voice's own default."""

    speaker: int | None = None
    length_scale: float | None = None
    noise_scale: float | None = None
    noise_w: float | None = None
    sentence_silence: float = 0.0


@dataclass(frozen=True)
class Timing:
    """A speech mark as the synthesizer finds it: a ``word``, ``sentence`` or ``ssml``
    (``<mark>``, ``name``) at ``frame`` (at the voice's rate, from the start of the audio),
    saying ``request[start:end]``. A word's ``end_frame`` is where its last sound ends
    (None: not known); captions end there."""

    kind: str
    frame: int
    start: int
    end: int
    name: str | None = None
    end_frame: int | None = None


@dataclass(frozen=True)
class SynthesisResult:
    """A whole synthesis: 16-bit mono PCM at the voice's rate."""

    pcm: bytes
    sample_rate: int

    @property
    def num_frames(self) -> int:
        return len(self.pcm) // 2

    @property
    def duration_seconds(self) -> float:
        return self.num_frames / self.sample_rate


class Synthesizer(Protocol):
    @property
    def voices(self) -> Mapping[str, VoiceInfo]: ...

    def declare(self, voices: Mapping[str, DeclaredVoice]) -> None:
        """The declared voices (TempAudioVoice) as the policy view has them now: they join
        ``voices``; a withdrawn or re-hashed one stops being resident."""
        ...

    def resident(self) -> set[str]:
        """The voices whose sessions are loaded now."""
        ...

    def failed(self) -> Mapping[str, VoiceNotReady]:
        """Declared voices whose last load failed (refused for a while, for this)."""
        ...

    def speak(
        self,
        script: Script,
        voice: str,
        options: SynthesisOptions,
        *,
        timings: list[Timing] | None = None,
        early: bool = False,
        background: bool = False,
    ) -> Iterator[bytes]:
        """16-bit mono PCM at the voice's rate, in pieces as they are made (a sentence, or a
        stretch of a long one, with the silence before it).

        Refusals of the whole script (``NoSpeech``, ``AudioTooLong`` by estimate, bad text)
        come from the first ``next()``, before any audio; closing the iterator stops work.
        With ``timings``, each speech mark is appended as its audio is made (the voice must
        have ``word_timings``). With ``early``, the first sentence's first words are sent
        ahead of the rest of it (a stream's first audio). With ``background`` (a job's
        part), the synthesis takes one thread and is not counted as running: a request that
        starts meanwhile is still served as on a quiet service.
        """
        ...


def synthesize(
    synth: Synthesizer, text: str, voice: str, options: SynthesisOptions
) -> SynthesisResult:
    """The whole audio at once."""
    pcm = b"".join(synth.speak(plain(text), voice, options))
    return SynthesisResult(pcm=pcm, sample_rate=synth.voices[voice].sample_rate)


def voice_info_from_config(name: str, config: Mapping[str, Any]) -> VoiceInfo:
    """Describe a voice from its ``.onnx.json`` config (pure)."""
    audio = config.get("audio", {})
    language = config.get("language", {})
    code = language.get("code") if isinstance(language, Mapping) else None
    if not code:
        code = config.get("espeak", {}).get("voice", "unknown")
    speakers = config.get("speaker_id_map") or {}
    return VoiceInfo(
        name=name,
        sample_rate=int(audio.get("sample_rate", 22050)),
        language=str(code),
        quality=audio.get("quality"),
        num_speakers=int(config.get("num_speakers", 1)),
        speakers={str(k): int(v) for k, v in speakers.items()},
    )
