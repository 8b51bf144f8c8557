"""The API server itself validates TempAudioPolicy specs (schema + CEL)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from kubernetes import client

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
