"""The voices a request may name under its policy, and the checks of the one it names.

Under a policy, a request names a voice by its plain name: the service's own voices (the
bundled one, the voices volume's) and the TempAudioVoices of the policy's namespace (each
also by ``namespace/name``, as the synthesizer holds it and the item records it). Another
namespace's declared voices are not there: a tenant's voices are its own.

The policy's ``spec.voices`` says which of them it allows (absent: all), ``spec.defaultVoice``
which one a request that names none gets, and ``spec.openaiVoices`` which OpenAI names map
to which (over the service's ``TEMPAUDIO_OPENAI_VOICES``). A voice outside the allowlist is
``403 voice_not_allowed``; a declared voice that is not ready is ``503 voice_not_ready``
with its reason; an unknown one stays ``422 unknown_voice``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tempaudio_service.audio.services import Services
from tempaudio_service.core.errors import VoiceNotAllowed, VoiceNotReady, cut
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.speech.voices import VoiceInfo
from tempaudio_service.wire.schemas import parse_policy_name

# OpenAI's voice names; each speaks with the voice the service (or the policy) maps it to,
# else the default voice.
OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "fable",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)


@dataclass(frozen=True)
class VoiceView:
    voices: Mapping[str, VoiceInfo]
    default_voice: str
    aliases: Mapping[str, str]
    # spec.voices: plain names; None: every voice in ``voices``.
    allowed: frozenset[str] | None = None

    def check(self, voice: str) -> None:
        """Refuse the voice (as the synthesizer holds it) the request resolved to."""
        info = self.voices.get(voice)
        name = plain_name(voice)
        if self.allowed is not None and name not in self.allowed:
            raise VoiceNotAllowed(
                f"voice {cut(name)!r} is not among this policy's voices"
                f" ({', '.join(sorted(self.allowed)) or 'none'})"
            )
        if info is not None and not info.ready:
            why = f": {info.message}" if info.message else ""
            raise VoiceNotReady(
                f"voice {name} is not ready ({info.reason}){why}", info.reason or "Unreadable"
            )


def plain_name(voice: str) -> str:
    """A declared voice's name without its namespace."""
    return voice.rpartition("/")[2]


def voice_view(services: Services, policy: ServedPolicy | None) -> VoiceView:
    settings = services.settings
    namespace = None if policy is None else policy.namespace
    voices: dict[str, VoiceInfo] = {}
    for key, info in services.synth.voices.items():
        if info.source != "resource":
            voices[key] = info
        elif key.partition("/")[0] == namespace:
            voices[key] = info
            voices.setdefault(plain_name(key), info)
    spec = None if policy is None else policy.spec
    default = settings.default_voice
    aliases = dict(settings.openai_voices)
    allowed = None
    if spec is not None:
        default = spec.default_voice or default
        aliases.update(spec.openai_voices)
        if spec.voices is not None:
            allowed = frozenset(spec.voices)
    resolved = {alias: _key(voices, voice) for alias, voice in aliases.items()}
    every = {name: _key(voices, default) for name in OPENAI_VOICES}
    return VoiceView(voices, _key(voices, default), every | resolved, allowed)


def _key(voices: Mapping[str, VoiceInfo], name: str) -> str:
    """A plain name as the synthesizer holds the voice (itself when unknown: the parser
    refuses it as it refuses any unknown voice)."""
    info = voices.get(name)
    return name if info is None else info.name


def requested_policy(services: Services, body: Any) -> ServedPolicy | None:
    """The policy a body names (else the default), to read its voices before the body is
    parsed; None when it names none and there is no default (OpenAI speech kept nowhere).
    A policy that is not served is refused here as it is after the parse."""
    name = parse_policy_name(body.get("policy")) if isinstance(body, dict) else None
    if name is None and services.book().default is None:
        return None
    policy, _ = services.served(name)
    return policy
