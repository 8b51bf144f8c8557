"""What a Piper voice's config (``<model>.onnx.json``) says about the voice, read once by
the rule both programs apply (pure): the operator judges a TempAudioVoice's config with it
and writes what it found into the voice's status, the service reads that status back (or
the config itself) for its catalog.

A config that Piper could not load is refused (``VoiceError``, the ConfigInvalid reason):
not a JSON object, or without the fields Piper reads unconditionally (``audio.sample_rate``,
``espeak.voice``, ``num_symbols``, ``num_speakers``, ``phoneme_id_map``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import VoiceError
from .voice_rules import MAX_CONFIG_BYTES

# A bound no voice comes near (Piper's are 16000 or 22050 Hz): a typo, not a voice.
MAX_SAMPLE_RATE = 192_000


@dataclass(frozen=True)
class VoiceConfig:
    """A voice as its config describes it; field names as the status spells them below."""

    language: str  # language.code (en_US), else the espeak voice (en-us)
    sample_rate: int
    num_speakers: int = 1
    speakers: tuple[str, ...] = ()  # by speaker id, when the voice names them
    quality: str | None = None  # x_low, low, medium, high
    phoneme_type: str = "espeak"

    @classmethod
    def from_bytes(cls, data: bytes) -> VoiceConfig:
        """The config's bytes, as read from a file or an object (at most MAX_CONFIG_BYTES)."""
        if len(data) > MAX_CONFIG_BYTES:
            raise VoiceError(f"the config has more than {MAX_CONFIG_BYTES} bytes")
        try:
            document = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise VoiceError(f"the config is not JSON: {str(error)[:120]}") from None
        return cls.from_mapping(document)

    @classmethod
    def from_mapping(cls, config: Any) -> VoiceConfig:
        if not isinstance(config, Mapping):
            raise VoiceError("the config is not a JSON object")
        rate = _integer(_at(config, "audio", "sample_rate"), "audio.sample_rate")
        if not 1 <= rate <= MAX_SAMPLE_RATE:
            raise VoiceError(f"audio.sample_rate {rate} is not from 1 to {MAX_SAMPLE_RATE}")
        espeak = _at(config, "espeak", "voice")
        if not isinstance(espeak, str) or not espeak:
            raise VoiceError("the config has no espeak.voice (Piper's phonemizer voice)")
        _integer(config.get("num_symbols"), "num_symbols")
        speakers = _integer(config.get("num_speakers"), "num_speakers")
        if speakers < 1:
            raise VoiceError(f"num_speakers {speakers} must be at least 1")
        if not isinstance(config.get("phoneme_id_map"), Mapping):
            raise VoiceError("the config has no phoneme_id_map")
        code = _at(config, "language", "code")
        quality = _at(config, "audio", "quality")
        phoneme_type = config.get("phoneme_type", "espeak")
        return cls(
            language=code if isinstance(code, str) and code else espeak,
            sample_rate=rate,
            num_speakers=speakers,
            speakers=_speaker_names(config.get("speaker_id_map")),
            quality=quality if isinstance(quality, str) and quality else None,
            phoneme_type=phoneme_type if isinstance(phoneme_type, str) else "espeak",
        )

    def status_fields(self) -> dict[str, Any]:
        """The TempAudioVoice status fields this config fills (None: none, to be removed)."""
        return {
            "language": self.language,
            "quality": self.quality,
            "sampleRate": self.sample_rate,
            "numSpeakers": self.num_speakers,
            "speakers": list(self.speakers) or None,
            "phonemeType": self.phoneme_type,
        }

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> VoiceConfig | None:
        """What a TempAudioVoice's status says of its config; None when it says nothing
        (a path voice, or a voice the operator has not verified)."""
        language, rate = status.get("language"), status.get("sampleRate")
        if not isinstance(language, str) or not isinstance(rate, int):
            return None
        speakers = status.get("speakers") or ()
        return cls(
            language=language,
            sample_rate=rate,
            num_speakers=int(status.get("numSpeakers") or 1),
            speakers=tuple(str(name) for name in speakers),
            quality=status.get("quality") or None,
            phoneme_type=str(status.get("phonemeType") or "espeak"),
        )


# The status fields a config fills, each removed when the voice is not verified.
STATUS_FIELDS = ("language", "quality", "sampleRate", "numSpeakers", "speakers", "phonemeType")


def _at(config: Mapping[str, Any], section: str, field: str) -> Any:
    inner = config.get(section)
    return inner.get(field) if isinstance(inner, Mapping) else None


def _integer(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise VoiceError(f"the config's {field} must be an integer")
    return value


def _speaker_names(id_map: Any) -> tuple[str, ...]:
    """Speaker names in the order of their ids (a multi-speaker voice's speaker_id_map)."""
    if not isinstance(id_map, Mapping) or not id_map:
        return ()
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in id_map.values()):
        raise VoiceError("speaker_id_map must map speaker names to integer ids")
    return tuple(str(name) for name, _ in sorted(id_map.items(), key=lambda item: item[1]))
