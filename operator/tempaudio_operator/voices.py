"""TempAudioVoices in the operator: a voice's own status (verified, or why not), and whether
the voices a policy names are there and Ready (its VoicesReady condition).

An ``s3`` voice is verified by reading what the service will load: both objects must exist,
the config must be one Piper can load (``tempaudio_api.voice_config``, the service's rule),
and the model's SHA-256 must be the spec's. A verification is kept by the ETags it read:
a re-check that finds the same objects (HeadObject) does not hash the model again. A
``path`` voice's file is in the service's pods, out of the operator's sight: it is Ready
with VerifiedByService, and the service verifies the hash when it loads the voice.

A policy naming a TempAudioVoice that is missing or not Ready keeps its cleanup and its
acceptedGeneration, but is not Ready. Names that cannot name an object (``en_US-joe-medium``)
are the service's own voices, which only the service knows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from kubernetes import client

from tempaudio_api.errors import VoiceError
from tempaudio_api.policy import Policy
from tempaudio_api.voice import PathSource, S3Source, Voice, voice_state
from tempaudio_api.voice_config import STATUS_FIELDS, VoiceConfig
from tempaudio_api.voice_rules import (
    CONFIG_INVALID,
    HASH_MISMATCH,
    INVALID_SPEC,
    MAX_MODEL_BYTES,
    NOT_ALLOWED,
    UNREADABLE,
    VERIFIED,
    VERIFIED_BY_SERVICE,
    VOICE_MISSING,
    VOICE_NOT_READY,
    is_resource_name,
)

from . import kube, tenancy
from .aws import AwsClients
from .outcome import Conditions, Event
from .voice_objects import VoiceUnverified, head, model_sha256, read_config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CONDITION = "VoicesReady"


@dataclass(frozen=True)
class VoiceCheck:
    """What one verification of a voice found: Ready or not, why, and what it read."""

    ready: bool
    reason: str
    message: str
    config: VoiceConfig | None = None
    sha256: str | None = None
    size: int | None = None


# namespace/name -> (the voice and the ETags of model and config it was verified at, the result)
Verified = MutableMapping[str, tuple[tuple[Voice, str, str], VoiceCheck]]


@dataclass
class VoiceOutcome:
    """A voice's status to write, the Events to post, and the error of an invalid spec."""

    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    invalid: VoiceError | None = None


def check_voice(
    voice: Voice, allowed: tenancy.Tenancy, aws: AwsClients, verified: Verified
) -> VoiceCheck:
    """Verify what the operator can see of ``voice``; ``verified`` keeps results by ETag."""
    source = voice.source
    if isinstance(source, PathSource):
        return VoiceCheck(
            True,
            VERIFIED_BY_SERVICE,
            f"{source.path} is a file of the service's voices volume; the service verifies"
            " its hash when it loads the voice",
        )
    refused = tenancy.voice_refusal(voice, allowed)
    if refused is not None:
        return VoiceCheck(False, NOT_ALLOWED, refused)
    s3 = aws.s3(source.region, source.endpoint_url)
    try:
        model = head(s3, source.bucket, source.key)
        config = head(s3, source.bucket, source.config_key)
        kept = verified.get(voice.key)
        if kept is not None and kept[0] == (voice, model.etag, config.etag):
            return kept[1]
        if model.size > MAX_MODEL_BYTES:
            where = f"s3://{source.bucket}/{source.key}"
            message = (
                f"{where} has {model.size} bytes; the operator reads at most {MAX_MODEL_BYTES}"
            )
            return VoiceCheck(False, UNREADABLE, message)
        seen, result = _verify(voice, source, s3, model.etag)
    except VoiceUnverified as error:
        verified.pop(voice.key, None)
        return VoiceCheck(False, error.reason, error.message)
    verified[voice.key] = (seen, result)
    return result


def _verify(
    voice: Voice, source: S3Source, s3: S3Client, model_etag: str
) -> tuple[tuple[Voice, str, str], VoiceCheck]:
    """Read the config and hash the model: (the versions read, what they were); an invalid
    config is found without reading the model (``model_etag``, its HeadObject's)."""
    data, config_seen = read_config(s3, source.bucket, source.config_key)
    try:
        config = VoiceConfig.from_bytes(data)
    except VoiceError as error:
        where = f"s3://{source.bucket}/{source.config_key}"
        result = VoiceCheck(False, CONFIG_INVALID, f"{where}: {error}")
        return (voice, model_etag, config_seen.etag), result
    digest, model_seen = model_sha256(s3, source.bucket, source.key, MAX_MODEL_BYTES)
    seen = (voice, model_seen.etag, config_seen.etag)
    if digest != voice.sha256:
        message = (
            f"s3://{source.bucket}/{source.key} has SHA-256 {digest} ({model_seen.size} bytes),"
            f" not the spec's {voice.sha256}"
        )
        return seen, VoiceCheck(False, HASH_MISMATCH, message)
    rate = f"{config.sample_rate} Hz"
    message = (
        f"{config.language}, {rate}: the model's SHA-256 is the spec's ({model_seen.size} bytes)"
    )
    return seen, VoiceCheck(True, VERIFIED, message, config, digest, model_seen.size)


def voice_outcome(
    body: Mapping[str, Any],
    allowed: tenancy.Tenancy,
    aws: AwsClients,
    verified: Verified,
    now: datetime,
) -> VoiceOutcome:
    """A voice's status (merged over the current one), its Events, and its spec's error."""
    meta = body["metadata"]
    invalid: VoiceError | None = None
    try:
        voice = Voice.from_spec(
            body.get("spec") or {}, name=meta["name"], namespace=meta["namespace"]
        )
    except VoiceError as error:
        invalid, check = error, VoiceCheck(False, INVALID_SPEC, str(error))
    else:
        check = check_voice(voice, allowed, aws, verified)
    conditions = Conditions.of(body, now)
    conditions.set("Ready", check.ready, check.reason, check.message)
    found = check.config.status_fields() if check.config else dict.fromkeys(STATUS_FIELDS)
    status = {
        "observedGeneration": meta.get("generation"),
        "conditions": conditions.items,
        "sha256": check.sha256,
        "sizeBytes": check.size,
        **found,
    }
    return VoiceOutcome(status, conditions.events, invalid)


# --- policies naming voices -------------------------------------------------------------------


def named_voices(policy: Policy) -> tuple[str, ...]:
    """The TempAudioVoices a policy names (spec.voices, defaultVoice, openaiVoices), each once."""
    named = [*(policy.voices or ()), policy.default_voice, *policy.openai_voices.values()]
    return tuple(dict.fromkeys(n for n in named if n is not None and is_resource_name(n)))


def voice_problem(
    custom: client.CustomObjectsApi, namespace: str, names: Iterable[str]
) -> tuple[str, str] | None:
    """(reason, message) for the first named voice that is missing or not Ready; None: all are."""
    for name in names:
        body = kube.get_voice(custom, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return VOICE_MISSING, f"voice {name} does not exist in namespace {namespace}"
        state = voice_state(body)
        if not state.ready:
            return VOICE_NOT_READY, f"voice {name} is not ready: {state.reason}: {state.message}"
    return None


def reconcile_voices(
    policy: Policy, custom: client.CustomObjectsApi, conditions: Conditions
) -> None:
    """Sets VoicesReady for a policy that names TempAudioVoices (or named some before)."""
    names = named_voices(policy)
    if not names:
        if CONDITION in conditions.previous:
            conditions.set(CONDITION, True, "NoVoices", "the policy names no TempAudioVoices")
        return
    problem = voice_problem(custom, policy.namespace, names)
    if problem is not None:
        conditions.set(CONDITION, False, *problem)
    else:
        conditions.set(
            CONDITION, True, "Resolved", f"voices {', '.join(names)} exist and are Ready"
        )


def naming(policies: Iterable[Mapping[str, Any]], voice: str) -> list[str]:
    """The names of the policies whose spec names ``voice`` (pure)."""
    found = []
    for policy in policies:
        spec = policy.get("spec") or {}
        listed = spec.get("voices")
        mapped = spec.get("openaiVoices")
        if (
            (isinstance(listed, list) and voice in listed)
            or voice == spec.get("defaultVoice")
            or (isinstance(mapped, Mapping) and voice in mapped.values())
        ):
            found.append(str(policy["metadata"]["name"]))
    return found
