"""The names, bounds and reasons of TempAudioVoices, and a policy's voice fields
(``spec.voices``, ``spec.defaultVoice``, ``spec.openaiVoices``): the parsers (``voice.py``,
``policy.py``) and the declared schemas (``schema.py`` fills them in) take them from here,
so the API server and a policy file refuse the same names (pure).

A policy names voices by what the service serves them as. A TempAudioVoice is an object, so
its name is a DNS-1123 label; the bundled voice and the voices of a mounted volume are
named by their files (``en_US-joe-medium``: upper case, an underscore), which no object can
be named. So a name that could be an object's is a TempAudioVoice's, checked by the
operator; any other is the service's own, which only the service knows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .errors import VoiceError

KIND = "TempAudioVoice"
PLURAL = "tempaudiovoices"
SHORT_NAME = "tav"
# Where a voice's model comes from: exactly one of these keys of spec.source. A new kind
# of source (an OCI image volume) is one more key here and in tempaudiovoice.yaml.
S3 = "s3"
PATH = "path"
SOURCES = (S3, PATH)
# The model's SHA-256, lower-case hex: what the service verifies every byte against.
SHA256_PATTERN = r"^[0-9a-f]{64}$"
MODEL_SUFFIX = ".onnx"
# A model's Piper config is beside it: the same key or file name with this appended.
CONFIG_SUFFIX = ".json"
# S3's longest key, in bytes (UTF-8).
MAX_KEY = 1024
MAX_PATH = 512
# A file of the mounted voices volume, relative to it: segments that start with neither '.'
# nor '/' (so no '..', no hidden file, no absolute path), the last one a model (.onnx).
_SEGMENT = r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]*"
PATH_PATTERN = rf"^({_SEGMENT}/)*{_SEGMENT}\.onnx$"
ENDPOINT_PATTERN = r"^https?://[^\s]+$"
MAX_ENDPOINT = 2048
# What the operator (and the service) read at most: a config is a small JSON document;
# Piper voices are 5 to 120 MB.
MAX_CONFIG_BYTES = 1 << 20
MAX_MODEL_BYTES = 1 << 30

# A TempAudioVoice's own name: a DNS-1123 label (a policy's voice names are at most 63).
MAX_RESOURCE_NAME = 63
RESOURCE_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A voice name in a policy: a TempAudioVoice's, or a voice the service has of its own.
MAX_VOICE_NAME = 63
VOICE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
# spec.voices and spec.openaiVoices of one policy.
MAX_VOICES = 64
MAX_OPENAI_VOICES = 32

# A voice's Ready condition: its reason when True ...
VERIFIED = "Verified"  # the operator read the config and hashed the model
VERIFIED_BY_SERVICE = "VerifiedByService"  # a path voice: the operator cannot see the volume
# ... and when False.
OBJECT_MISSING = "ObjectMissing"
HASH_MISMATCH = "HashMismatch"
CONFIG_INVALID = "ConfigInvalid"
UNREADABLE = "Unreadable"
INVALID_SPEC = "InvalidSpec"  # the parser refuses what an older schema let in
NOT_ALLOWED = "NotAllowed"  # the operator's configuration does not allow the endpoint or bucket
# What a voice whose status is not of its current generation is, to its readers.
PENDING = "Pending"
# A policy's VoicesReady condition, when a TempAudioVoice it names is not usable.
VOICE_MISSING = "VoiceMissing"
VOICE_NOT_READY = "VoiceNotReady"

_RESOURCE_NAME = re.compile(RESOURCE_NAME_PATTERN)
_VOICE_NAME = re.compile(VOICE_NAME_PATTERN)


def is_resource_name(name: str) -> bool:
    """Whether ``name`` can name a TempAudioVoice (else it is one of the service's own)."""
    return len(name) <= MAX_RESOURCE_NAME and _RESOURCE_NAME.match(name) is not None


def check_resource_name(name: str) -> str:
    """A TempAudioVoice's own name: a DNS-1123 label, so a policy can name it."""
    if not is_resource_name(name):
        raise VoiceError(
            f"voice name {name[:70]!r} must be a DNS-1123 label (lower case letters, digits"
            f" and '-', at most {MAX_RESOURCE_NAME} characters)"
        )
    return name


def check_voice_name(name: Any, at: str) -> str:
    """A voice name in a policy: a TempAudioVoice's or one the service serves itself."""
    if not isinstance(name, str) or not _VOICE_NAME.match(name):
        raise VoiceError(
            f"{at} {str(name)[:70]!r} is not a voice name (a letter or digit, then letters,"
            f" digits, '_', '.' or '-', at most {MAX_VOICE_NAME} characters)"
        )
    return name


def voice_names(value: Any) -> tuple[str, ...] | None:
    """A policy's ``spec.voices``: the voices it may use, each once. None (absent): every
    voice the service serves; empty: none."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise VoiceError("voices must be a list of voice names")
    if len(value) > MAX_VOICES:
        raise VoiceError(f"voices names {len(value)}; at most {MAX_VOICES}")
    names = tuple(check_voice_name(v, "voices:") for v in value)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise VoiceError(f"voices names {', '.join(twice)} more than once")
    return names


def _allowed(name: str, voices: tuple[str, ...] | None, at: str) -> str:
    if voices is not None and name not in voices:
        raise VoiceError(f"{at} {name} is not among spec.voices ({', '.join(voices) or 'none'})")
    return name


def default_voice(value: Any, voices: tuple[str, ...] | None) -> str | None:
    """A policy's ``spec.defaultVoice``: the voice of its requests that name none; with
    ``spec.voices``, one of them."""
    if value is None:
        return None
    return _allowed(check_voice_name(value, "defaultVoice"), voices, "defaultVoice")


def openai_voices(value: Any, voices: tuple[str, ...] | None) -> Mapping[str, str]:
    """A policy's ``spec.openaiVoices``: OpenAI voice name -> voice, over the service's
    mapping; with ``spec.voices``, every voice one of them."""
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise VoiceError("openaiVoices must map OpenAI voice names to voice names")
    if len(value) > MAX_OPENAI_VOICES:
        raise VoiceError(f"openaiVoices maps {len(value)} names; at most {MAX_OPENAI_VOICES}")
    mapped = {
        check_voice_name(alias, "openaiVoices:"): _allowed(
            check_voice_name(voice, f"openaiVoices.{alias}:"), voices, f"openaiVoices.{alias}:"
        )
        for alias, voice in value.items()
    }
    return MappingProxyType(mapped)
