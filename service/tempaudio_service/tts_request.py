"""Validation of ``POST /tts/sync`` bodies (pure)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequest, TextTooLong, UnknownVoice
from .synth import SynthesisOptions, VoiceInfo

# name -> (minimum, maximum), inclusive; Piper's own defaults sit well inside.
KNOB_RANGES: dict[str, tuple[float, float]] = {
    "length_scale": (0.1, 5.0),
    "noise_scale": (0.0, 2.0),
    "noise_w": (0.0, 2.0),
    "sentence_silence": (0.0, 5.0),
}
_FIELDS = {"text", "voice", "speaker", "policy", *KNOB_RANGES}
# namespace/name of a TempAudioPolicy: 63 + 1 + 253 characters at most.
MAX_POLICY_CHARS = 317
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class TtsRequest:
    text: str
    voice: str
    options: SynthesisOptions
    # The TempAudioPolicy named by the request; None: the service's default.
    policy: str | None = None


def _knob(body: Mapping[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"'{name}' must be a number")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRequest(f"'{name}' must be a finite number")
    low, high = KNOB_RANGES[name]
    # Compared before any conversion: a 400-digit integer overflows float().
    if not low <= value <= high:
        shown = value if isinstance(value, float) or abs(value) < 10**15 else "a huge integer"
        raise InvalidRequest(f"'{name}' must be between {low} and {high}, got {shown}")
    return float(value)


def _text_problem(text: str) -> str | None:
    """Why espeak cannot take this text (it reads C strings of UTF-8), or None."""
    if "\x00" in text:
        return "'text' must not contain NUL characters"
    if _SURROGATE.search(text):
        return "'text' must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff)"
    return None


def _speaker(value: Any, voice: VoiceInfo) -> int | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in voice.speakers:
            known = ", ".join(sorted(voice.speakers)) or "none"
            raise InvalidRequest(f"voice {voice.name} has no speaker {value!r} (known: {known})")
        return voice.speakers[value]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest("'speaker' must be a speaker id (integer) or name (string)")
    if not 0 <= value < voice.num_speakers:
        raise InvalidRequest(
            f"voice {voice.name} has {voice.num_speakers} speaker(s); 'speaker' {value} is out of range"
        )
    return value


def parse_tts_request(
    body: Any, *, voices: Mapping[str, VoiceInfo], default_voice: str, max_text_chars: int
) -> TtsRequest:
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidRequest(f"unknown field(s): {', '.join(unknown)}")
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("'text' must be a non-empty string")
    if len(text) > max_text_chars:
        raise TextTooLong(f"'text' has {len(text)} characters; the limit is {max_text_chars}")
    problem = _text_problem(text)
    if problem:
        raise InvalidRequest(problem)
    voice_name = body.get("voice")
    if voice_name is None:
        voice_name = default_voice
    if not isinstance(voice_name, str) or not voice_name:
        raise InvalidRequest("'voice' must be a non-empty string")
    voice = voices.get(voice_name)
    if voice is None:
        raise UnknownVoice(f"unknown voice {voice_name!r}; available: {', '.join(sorted(voices))}")
    options = SynthesisOptions(
        speaker=_speaker(body.get("speaker"), voice),
        length_scale=_knob(body, "length_scale"),
        noise_scale=_knob(body, "noise_scale"),
        noise_w=_knob(body, "noise_w"),
        sentence_silence=_knob(body, "sentence_silence") or 0.0,
    )
    return TtsRequest(
        text=text, voice=voice_name, options=options, policy=parse_policy_name(body.get("policy"))
    )


def parse_policy_name(value: Any) -> str | None:
    """``name`` or ``namespace/name``; None when absent."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_POLICY_CHARS:
        raise InvalidRequest(
            f"'policy' must be a policy name or namespace/name of at most {MAX_POLICY_CHARS}"
            " characters"
        )
    return value.strip()
