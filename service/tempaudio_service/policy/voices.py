"""The TempAudioVoices the service may speak with, as the synthesizer holds them (pure).

From a ``--policy`` file a voice is taken as written and verified by the service when it is
first used (its bytes against its ``sha256``). On Kubernetes the operator is the gate, as
for policies and lexicons: a voice is usable only once the operator verified its current
generation (``tempaudio_api.voice.voice_state``); until then, or when it found the object
missing, tampered with or unreadable, a request for it is refused with that reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tempaudio_api.voice import PathSource, S3Source, Voice, VoiceState, voice_state
from tempaudio_service.core.declared_voices import DeclaredVoice, ObjectSource, VolumeSource


def declared_voice(voice: Voice, state: VoiceState | None = None) -> DeclaredVoice:
    """``voice`` as the synthesizer holds it; ``state`` None: no operator judged it."""
    source: ObjectSource | VolumeSource
    if isinstance(voice.source, S3Source):
        source = ObjectSource(
            bucket=voice.source.bucket,
            key=voice.source.key,
            config_key=voice.source.config_key,
            endpoint_url=voice.source.endpoint_url,
            region=voice.source.region,
        )
    else:
        assert isinstance(voice.source, PathSource)
        source = VolumeSource(voice.source.path)
    described: dict[str, object] = {}
    if state is not None and state.config is not None:
        config = state.config
        described = {
            "language": config.language,
            "quality": config.quality,
            "sampleRate": config.sample_rate,
            "numSpeakers": config.num_speakers,
            "speakers": list(config.speakers),
        }
    return DeclaredVoice(
        namespace=voice.namespace,
        name=voice.name,
        sha256=voice.sha256,
        source=source,
        ready=None if state is None else state.ready,
        reason=None if state is None or state.ready else state.reason,
        message=None if state is None or state.ready else state.message,
        described=described,
    )


def admitted_voice(document: Mapping[str, Any]) -> DeclaredVoice:
    """A TempAudioVoice as the API server holds it, with the operator's verdict."""
    meta = document.get("metadata") or {}
    voice = Voice.from_spec(
        document.get("spec") or {},
        name=str(meta.get("name") or ""),
        namespace=str(meta.get("namespace") or ""),
    )
    return declared_voice(voice, voice_state(document))
