"""TempAudioVoice spec -> validated Voice: where a voice's model and config are, and the hash
every byte of the model must have (pure).

The CRD's schema and CEL rules refuse most bad input at the API server; this parser is the
rule both programs apply (the operator verifies what it accepts, the service loads only
what it accepts), and the one a ``--policy`` file's TempAudioVoice documents get, which no
API server has seen: unknown fields included (``voice_documents``).

A voice's ``spec.source`` is a one-of, so that another kind of source (an OCI image
volume) is one more key: ``s3`` (an object and its config beside it) or ``path`` (a file
of the voices volume mounted into the service's pods).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import storage
from .errors import PolicyError, VoiceError
from .schema import VOICE_FILE, check_fields
from .voice_config import VoiceConfig
from .voice_rules import (
    CONFIG_SUFFIX,
    ENDPOINT_PATTERN,
    KIND,
    MAX_ENDPOINT,
    MAX_KEY,
    MAX_PATH,
    PATH,
    PATH_PATTERN,
    PENDING,
    S3,
    SHA256_PATTERN,
    SOURCES,
    check_resource_name,
)

_SHA256 = re.compile(SHA256_PATTERN)
_PATH = re.compile(PATH_PATTERN)
_ENDPOINT = re.compile(ENDPOINT_PATTERN)


def config_key(model_key: str) -> str:
    """The key of a model's config when ``configKey`` is not set: beside it, ``.json`` added."""
    return model_key + CONFIG_SUFFIX


def config_path(model_path: str) -> str:
    """The file of a model's config in the voices volume: beside it, ``.json`` added."""
    return model_path + CONFIG_SUFFIX


@dataclass(frozen=True)
class S3Source:
    """A model in S3 (or an S3-compatible store) and its config, ``config_key`` resolved."""

    bucket: str
    key: str
    config_key: str
    endpoint_url: str | None = None
    region: str = storage.DEFAULT_REGION


@dataclass(frozen=True)
class PathSource:
    """A model in the voices volume, relative to its root."""

    path: str

    @property
    def config_path(self) -> str:
        return config_path(self.path)


@dataclass(frozen=True)
class Voice:
    name: str
    namespace: str
    source: S3Source | PathSource
    sha256: str  # of the model (.onnx) file, lower-case hex

    @property
    def key(self) -> str:
        """``namespace/name``, as policies and lexicons are keyed."""
        return f"{self.namespace}/{self.name}"

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any], *, name: str, namespace: str) -> Voice:
        """A TempAudioVoice's spec, validated: ``VoiceError`` (a ``PolicyError``) says why not."""
        check_resource_name(name)
        if not isinstance(spec, Mapping):
            raise VoiceError("the voice's spec must be an object with source and sha256")
        try:
            check_fields(spec, VOICE_FILE)
        except PolicyError as error:
            raise VoiceError(str(error)) from None
        sha256 = spec.get("sha256")
        if not isinstance(sha256, str) or not _SHA256.match(sha256):
            raise VoiceError(
                f"sha256 {str(sha256)[:70]!r} must be the model's SHA-256: 64 lower-case hex digits"
            )
        return cls(
            name=name, namespace=namespace, source=_source(spec.get("source")), sha256=sha256
        )


def _source(source: Any) -> S3Source | PathSource:
    """Exactly one kind of source."""
    chosen = [kind for kind in SOURCES if isinstance(source, Mapping) and kind in source]
    if len(chosen) != 1:
        raise VoiceError(f"source must set exactly one of {' and '.join(SOURCES)}")
    assert isinstance(source, Mapping)
    if chosen[0] == S3:
        return _s3(source[S3])
    return _path(source[PATH])


def _text(value: Any, field: str, limit: int) -> str:
    if not isinstance(value, str) or not value or len(value.encode("utf-8")) > limit:
        raise VoiceError(f"{field} must be a string of 1 to {limit} bytes")
    return value


def _s3(s3: Any) -> S3Source:
    if not isinstance(s3, Mapping):
        raise VoiceError("source.s3 must be an object with bucket and key")
    bucket = str(s3.get("bucket") or "")
    try:
        storage.check_bucket(bucket)
    except PolicyError:
        raise VoiceError(
            f"source.s3.bucket {bucket[:70]!r} is not a valid S3 bucket name"
        ) from None
    key = _text(s3.get("key"), "source.s3.key", MAX_KEY)
    config = _text(s3.get("configKey", config_key(key)), "source.s3.configKey", MAX_KEY)
    if config == key:
        raise VoiceError("source.s3.configKey must differ from key (the model's own key)")
    endpoint = s3.get("endpointURL")
    if endpoint is not None and (
        not isinstance(endpoint, str)
        or len(endpoint) > MAX_ENDPOINT
        or not _ENDPOINT.match(endpoint)
    ):
        raise VoiceError(f"source.s3.endpointURL {str(endpoint)[:70]!r} is not an http(s) URL")
    region = str(s3.get("region", storage.DEFAULT_REGION))
    if not storage.REGION.match(region):
        raise VoiceError(f"source.s3.region {region[:40]!r} is not an AWS region name")
    return S3Source(bucket, key, config, endpoint or None, region)


def _path(path: Any) -> PathSource:
    if not isinstance(path, str) or len(path) > MAX_PATH or not _PATH.match(path):
        raise VoiceError(
            f"source.path {str(path)[:70]!r} must be a model file of the voices volume, relative"
            " to it, ending in .onnx: no leading '/', no '..' or hidden segment"
            f" (letters, digits, '_', '+', '-', '.'; at most {MAX_PATH} characters)"
        )
    return PathSource(path)


# --- what the operator found ------------------------------------------------------------------


@dataclass(frozen=True)
class VoiceState:
    """What a TempAudioVoice's status says of its current spec: whether the voice may be
    used, why not, and what the operator read from its config (None for a path voice)."""

    ready: bool
    reason: str
    message: str
    sha256: str | None = None
    config: VoiceConfig | None = None


def voice_state(document: Mapping[str, Any]) -> VoiceState:
    """A TempAudioVoice as the API server shows it: Ready only when the operator's status is
    of the current generation (an edit of ``sha256`` is unverified until then) and, for a
    voice whose hash it computed, that hash is the spec's."""
    generation = (document.get("metadata") or {}).get("generation")
    status = document.get("status") or {}
    ready = next(
        (
            c
            for c in status.get("conditions") or ()
            if isinstance(c, Mapping) and c.get("type") == "Ready"
        ),
        None,
    )
    if ready is None or status.get("observedGeneration") != generation:
        return VoiceState(False, PENDING, f"the operator has not verified generation {generation}")
    reason, message = str(ready.get("reason") or ""), str(ready.get("message") or "")
    if ready.get("status") != "True":
        return VoiceState(False, reason, message)
    verified = status.get("sha256")
    wanted = (document.get("spec") or {}).get("sha256")
    if verified is not None and verified != wanted:
        return VoiceState(False, PENDING, "the operator verified another sha256 than the spec's")
    return VoiceState(True, reason, message, verified, VoiceConfig.from_status(status))


# --- documents of a --policy file -----------------------------------------------------------


def is_voice(document: Mapping[str, Any]) -> bool:
    return document.get("kind") == KIND


def voice_from_document(document: Mapping[str, Any], default_namespace: str) -> Voice:
    """A TempAudioVoice document taken as written (a file): its namespace, else
    ``default_namespace``."""
    meta = document.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, Mapping) else None
    if not isinstance(name, str) or not name:
        raise VoiceError("the voice has no metadata.name")
    namespace = str(meta.get("namespace") or default_namespace)
    return Voice.from_spec(document.get("spec") or {}, name=name, namespace=namespace)


def voice_documents(
    documents: Iterable[Mapping[str, Any]], default_namespace: str
) -> dict[str, Voice]:
    """The TempAudioVoice documents among ``documents`` (others are skipped), by
    ``namespace/name``; ``VoiceError`` names the first that is invalid or declared twice."""
    voices: dict[str, Voice] = {}
    for index, document in enumerate(documents):
        if not is_voice(document):
            continue
        try:
            voice = voice_from_document(document, default_namespace)
        except VoiceError as error:
            raise VoiceError(f"document {index + 1} ({KIND}): {error}") from None
        if voice.key in voices:
            raise VoiceError(f"document {index + 1}: voice {voice.key} is declared twice")
        voices[voice.key] = voice
    return voices
