"""Voices declared as TempAudioVoice resources (or documents of a ``--policy`` file): what
the service knows of one before it has its bytes, and where the bytes are (pure).

A declared voice is pinned: its ``sha256`` is the model's, and the service never loads
bytes that do not match it. Its files are kept by hash, so an object that changes without
changing its hash (a new ETag, the same bytes) is the same voice, and a new hash in the
resource is a new version of it (the repeat cache keys on the version).

Where the bytes come from is a ``ModelFetcher``: the composition root gives the S3 one
(storage/voice_objects.py) to the synthesizer (speech/resident_voices.py); a ``path``
source reads the mounted voices volume. The policy room reads declarations from the API
or a file. These values are what the three rooms share, hence here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tempaudio_service.core.errors import VoiceNotReady

# Why a declared voice cannot be used (the operator's reasons, and the service's own).
OBJECT_MISSING = "ObjectMissing"
HASH_MISMATCH = "HashMismatch"
CONFIG_INVALID = "ConfigInvalid"
UNREADABLE = "Unreadable"


VoiceUnusable = VoiceNotReady


@dataclass(frozen=True)
class ObjectSource:
    """The model at ``s3://bucket/key``, its config at ``config_key``."""

    bucket: str
    key: str
    config_key: str
    endpoint_url: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class VolumeSource:
    """The model at ``path`` in the voices volume (``TEMPAUDIO_VOICES_DIR``), its config
    beside it (``path`` + ``.json``)."""

    path: str


@dataclass(frozen=True)
class DeclaredVoice:
    namespace: str
    name: str
    sha256: str
    source: ObjectSource | VolumeSource
    # The operator's verdict (Kubernetes); None: not judged (a file: the service checks).
    ready: bool | None = None
    reason: str | None = None
    message: str | None = None
    # What the operator read from the config (Kubernetes), before any byte is here.
    described: Mapping[str, object] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        """The voice as requests name it under a policy of its namespace, and as the
        synthesizer holds it: ``namespace/name``."""
        return f"{self.namespace}/{self.name}"

    @property
    def version(self) -> str:
        return self.sha256


class ModelFetcher(Protocol):
    def fetch(self, voice: DeclaredVoice, model: Path, config: Path) -> None:
        """Write the voice's model and config to ``model`` and ``config``, the model only
        if its bytes hash to ``voice.sha256``; ``VoiceUnusable`` names what is wrong."""
        ...
