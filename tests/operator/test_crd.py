"""The API server itself validates TempAudioPolicy and TempAudioVoice specs (schema + CEL)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from kubernetes import client

from tempaudio_api.voice import Voice
from tests.conftest import undescribed
from tests.controlplane import REPO
from tests.kube_fixtures import GROUP, PLURAL, VERSION, policy_manifest

pytestmark = pytest.mark.k8s
VALID: dict[str, Any] = {"storage": {"bucket": "my-audio"}, "dynamodb": {"table": "audio"}}


def create(custom: client.CustomObjectsApi, namespace: str, spec: dict[str, Any]) -> Any:
    return custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, policy_manifest("p", spec)
    )


def test_defaults_are_applied(custom: client.CustomObjectsApi, namespace: str) -> None:
    created = create(custom, namespace, VALID)
    assert created["spec"] == {
        "retention": "24h",
        "retentionShrink": "Deferred",
        "schedule": "*/15 * * * *",
        "timeZone": "Etc/UTC",
        "suspend": False,
        "dryRun": False,
        "lifecycleSafetyNet": False,
        "repeatCache": True,
        "repeatCacheScope": "Caller",
        "storage": {"bucket": "my-audio", "prefix": "temp-audio/", "region": "us-east-1"},
        "dynamodb": {"table": "audio", "ttlAttribute": "ttl", "keySchema": "DateAudioId"},
    }


def test_the_deprecated_name_of_the_dynamodb_block_is_still_accepted(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    old = {"storage": {"bucket": "my-audio"}, "metadata": {"table": "audio"}}
    assert create(custom, namespace, old)["spec"]["metadata"]["table"] == "audio"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"retention": "tomorrow"}, "should match"),
        ({"retention": "0h"}, "retention must be a duration greater than zero"),
        ({"retention": "30s", "schedule": "* * * * *"}, "retention must be at least 1m"),
        # Ready before, while every cleanup Job crashed with OverflowError.
        ({"retention": "999999d"}, "retention must be at most 365d"),
        ({"retention": "10m", "schedule": "0 * * * *"}, "at least the schedule's period"),
        ({"retention": "2h", "schedule": "0 */3 * * *"}, "at least the schedule's period"),
        ({"retention": "12h", "schedule": "@daily"}, "at least the schedule's period"),
        ({"schedule": ""}, "schedule must not be empty"),
        ({"schedule": "every hour"}, "should match"),
        # Kubernetes runs it hourly, the CRD read it as 90 minutes, the operator refused it.
        ({"retention": "2h", "schedule": "*/90 * * * *"}, "longer than its field"),
        ({"retention": "2d", "schedule": "0 */30 * * *"}, "longer than its field"),
        ({"storage": {"bucket": "My_Bucket"}}, "should match"),
        ({"storage": {"bucket": "10.0.0.1"}}, "must not look like an IP address"),
        ({"storage": {"bucket": "a..b"}}, "must not contain '..'"),
        ({"storage": {"bucket": "xn--audio"}}, "must not start with 'xn--'"),
        ({"storage": {"bucket": "audio-s3alias"}}, "must not end with '-s3alias'"),
        ({"storage": {"bucket": "ab"}}, "at least 3 chars"),
        ({"storage": {"bucket": "ok-bucket", "prefix": "noslash"}}, "should match"),
        ({"storage": {"bucket": "ok-bucket", "endpointURL": "minio:9000"}}, "should match"),
        ({"dynamodb": {"table": "x"}}, "should match"),
        ({"dynamodb": {}}, "Required value"),
        # spec.metadata, its deprecated name, is still read: one of the two, never both.
        ({"metadata": {"table": "other"}}, "exactly one of them"),
        ({"jobTemplate": {"backoffLimit": -1}}, "should be greater than or equal to 0"),
    ],
)
def test_bad_specs_are_rejected_with_a_reason(
    custom: client.CustomObjectsApi, namespace: str, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(client.ApiException) as rejected:
        create(custom, namespace, {**VALID, **change})
    assert rejected.value.status == 422
    assert message in json.loads(rejected.value.body)["message"]


def test_printer_columns(control_plane: object) -> None:
    crd = client.ApiextensionsV1Api().read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    columns = [c.name for c in crd.spec.versions[0].additional_printer_columns]
    assert columns == [
        "Retention",
        "Enforced",
        "Schedule",
        "Ready",
        "Reason",
        "Last Cleanup",
        "Age",
    ]
    assert crd.spec.versions[0].subresources.status is not None


def test_kubectl_explain_has_a_description_for_every_field() -> None:
    crd = yaml.safe_load((REPO / "crds" / "tempaudiopolicies.yaml").read_text())
    assert undescribed(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]) == []


def test_the_example_policy_is_accepted(custom: client.CustomObjectsApi, namespace: str) -> None:
    example = yaml.safe_load((REPO / "examples" / "policy.yaml").read_text())
    example["metadata"]["namespace"] = namespace
    accepted = custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, example, dry_run="All"
    )
    assert accepted["spec"]["retentionShrink"] == "Deferred"


# --- the policy's voices --------------------------------------------------------------------


def test_a_policy_names_voices_of_either_kind(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    spec = {
        **VALID,
        "voices": ["de-thorsten", "en_US-joe-medium"],
        "defaultVoice": "de-thorsten",
        "openaiVoices": {"alloy": "de-thorsten", "nova": "en_US-joe-medium"},
    }
    created = create(custom, namespace, spec)
    assert created["spec"]["openaiVoices"] == spec["openaiVoices"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"voices": ["a"], "defaultVoice": "b"}, "defaultVoice must be one of spec.voices"),
        ({"voices": [], "defaultVoice": "b"}, "defaultVoice must be one of spec.voices"),
        (
            {"voices": ["a"], "openaiVoices": {"alloy": "b"}},
            "every voice of openaiVoices must be one of spec.voices",
        ),
        ({"voices": ["a", "a"]}, "Duplicate value"),
        ({"voices": ["../a"]}, "should match"),
        ({"voices": [f"v{i}" for i in range(65)]}, "must have at most 64 items"),
        ({"defaultVoice": "a b"}, "should match"),
        ({"openaiVoices": {"alloy": "a b"}}, "should match"),
        ({"openaiVoices": {"al loy": "a"}}, "an OpenAI voice name is a letter or digit"),
        ({"openaiVoices": {f"n{i}": "a" for i in range(33)}}, "must have at most 32 items"),
    ],
)
def test_bad_voice_fields_of_a_policy_are_rejected(
    custom: client.CustomObjectsApi, namespace: str, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(client.ApiException) as rejected:
        create(custom, namespace, {**VALID, **change})
    assert rejected.value.status == 422
    assert message in json.loads(rejected.value.body)["message"]


# --- TempAudioVoice -------------------------------------------------------------------------

VOICES = "tempaudiovoices"
HASH = "0123456789abcdef" * 4
VOICE: dict[str, Any] = {"source": {"s3": {"bucket": "voices", "key": "joe.onnx"}}, "sha256": HASH}


def create_voice(
    custom: client.CustomObjectsApi, namespace: str, spec: Any, name: str = "joe"
) -> Any:
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TempAudioVoice",
        "metadata": {"name": name},
        "spec": spec,
    }
    return custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, VOICES, manifest, field_validation="Strict"
    )


def test_a_voice_from_s3_or_the_volume_is_accepted(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    created = create_voice(custom, namespace, VOICE)
    assert created["spec"]["source"]["s3"]["region"] == "us-east-1"  # the policy's default
    path = {"source": {"path": "de/de_DE-thorsten-medium.onnx"}, "sha256": HASH}
    assert create_voice(custom, namespace, path, "de-thorsten")["spec"] == path


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {**VOICE, "source": {**VOICE["source"], "path": "joe.onnx"}},
            "a voice's source is exactly one of s3 and path",
        ),
        ({**VOICE, "source": {}}, "a voice's source is exactly one of s3 and path"),
        ({"sha256": HASH}, "Required value"),
        ({"source": VOICE["source"]}, "Required value"),
        ({**VOICE, "sha256": HASH.upper()}, "should match"),
        ({**VOICE, "sha256": HASH[:-1]}, "should match"),
        ({**VOICE, "sha256": "sha256:" + HASH}, "should match"),
        ({**VOICE, "source": {"path": "../joe.onnx"}}, "should match"),
        ({**VOICE, "source": {"path": "/voices/joe.onnx"}}, "should match"),
        ({**VOICE, "source": {"path": "joe.onnx.json"}}, "should match"),
        ({**VOICE, "source": {"s3": {"bucket": "a..b", "key": "k"}}}, "must not contain '..'"),
        ({**VOICE, "source": {"s3": {"bucket": "voices"}}}, "Required value"),
        (
            {**VOICE, "source": {"s3": {"bucket": "voices", "key": "k", "configKey": "k"}}},
            "configKey must differ from key",
        ),
        (
            {**VOICE, "source": {"s3": {"bucket": "voices", "key": "k", "endpointURL": "x:1"}}},
            "should match",
        ),
    ],
)
def test_a_malformed_voice_is_rejected_with_a_reason(
    custom: client.CustomObjectsApi, namespace: str, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(client.ApiException) as rejected:
        create_voice(custom, namespace, spec)
    assert rejected.value.status == 422
    assert message in json.loads(rejected.value.body)["message"]


@pytest.mark.parametrize(
    "spec",
    [
        {**VOICE, "size": 3},
        {**VOICE, "source": {**VOICE["source"], "oci": {"image": "voices:1"}}},
        {**VOICE, "source": {"s3": {**VOICE["source"]["s3"], "acl": "private"}}},
    ],
)
def test_an_unknown_voice_field_is_rejected(
    custom: client.CustomObjectsApi, namespace: str, spec: dict[str, Any]
) -> None:
    # kubectl's strict field validation (its default): no field is dropped silently.
    with pytest.raises(client.ApiException) as rejected:
        create_voice(custom, namespace, spec)
    assert rejected.value.status == 400
    assert "unknown field" in json.loads(rejected.value.body)["message"]


@pytest.mark.parametrize("name", ["de.thorsten", "x" * 64])
def test_a_voice_is_named_so_that_a_policy_can_name_it(
    custom: client.CustomObjectsApi, namespace: str, name: str
) -> None:
    with pytest.raises(client.ApiException) as rejected:
        create_voice(custom, namespace, VOICE, name)
    assert rejected.value.status == 422
    assert "a voice's name is a DNS-1123 label" in json.loads(rejected.value.body)["message"]


def test_voice_printer_columns(control_plane: object) -> None:
    crd = client.ApiextensionsV1Api().read_custom_resource_definition(f"{VOICES}.{GROUP}")
    columns = [c.name for c in crd.spec.versions[0].additional_printer_columns]
    assert columns == ["Ready", "Reason", "Language", "Quality", "Rate", "Age"]
    assert crd.spec.versions[0].subresources.status is not None


def test_the_example_voice_is_accepted(custom: client.CustomObjectsApi, namespace: str) -> None:
    example = yaml.safe_load((REPO / "examples" / "voice.yaml").read_text())
    assert Voice.from_spec(example["spec"], name="de-thorsten", namespace="tempaudio")
    example["metadata"]["namespace"] = namespace
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, VOICES, example, dry_run="All", field_validation="Strict"
    )
