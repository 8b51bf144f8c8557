"""Asynchronous jobs in the chart: the queue and webhook settings reach the service, and the
KEDA ScaledObject that scales it on the queue is one KEDA accepts.

The ScaledObject is checked against KEDA itself, vendored from one release under
``tests/chart/fixtures/``: the CRD's schema, and the metadata names its scalers read (the CRD
types a trigger's metadata as any strings, so a misspelt key would be ignored by KEDA, not
refused). ``scripts/keda-crd.sh [VERSION]`` takes both from the Go module
``github.com/kedacore/keda/v2`` through the module proxy; run it again to move to a newer KEDA
(the files' headers name the release).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft7Validator

from tempaudio_api.generate import json_schema
from tests.chart import keda
from tests.chart.helm import CHART, by_kind, env_of, helm, one, render

QUEUE = "https://sqs.eu-west-1.amazonaws.com/123456789012/tempaudio-parts"


def sets(*overrides: str) -> tuple[str, ...]:
    """``--set`` before each override."""
    return tuple(arg for override in overrides for arg in ("--set", override))


KEDA = sets(
    "service.autoscaling.keda.enabled=true",
    f"jobs.queueUrl={QUEUE}",
    "service.autoscaling.keda.authenticationRef=keda-aws",
)
# The one CEL rule of the CRD's spec, which JSON Schema cannot say: checked by hand below.
MIN_AT_MOST_MAX = (
    "!has(self.minReplicaCount) || self.minReplicaCount <= (has(self.maxReplicaCount)"
    " ? self.maxReplicaCount : 100)"
)


def scaled_object(*args: str) -> dict[str, Any]:
    return one(render(*KEDA, *args), "ScaledObject")


def triggers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {trigger["type"]: trigger for trigger in obj["spec"]["triggers"]}


def service_env(*args: str) -> list[dict[str, Any]]:
    deployment = one(render(*args), "Deployment", "service")
    env: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    return env


def refusal(*args: str) -> str:
    result = helm("template", "rel", str(CHART), "--namespace", "tempaudio", *args, check=False)
    assert result.returncode != 0
    return result.stderr


def test_the_hpa_is_the_default_and_keda_renders_only_when_enabled() -> None:
    default = render()
    assert not by_kind(default, "ScaledObject")
    assert not by_kind(default, "HorizontalPodAutoscaler")
    assert one(default, "Deployment", "service")["spec"]["replicas"] == 2
    hpa = render("--set", "service.autoscaling.enabled=true")
    assert not by_kind(hpa, "ScaledObject")
    assert one(hpa, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    # Jobs on a queue change nothing about scaling until KEDA is asked for.
    assert not by_kind(render("--set", f"jobs.queueUrl={QUEUE}"), "ScaledObject")

    objects = render(*KEDA)
    assert not by_kind(objects, "HorizontalPodAutoscaler")  # KEDA makes its own
    deployment = one(objects, "Deployment", "service")
    # KEDA's HPA owns the replicas: an upgrade must not set them back.
    assert "replicas" not in deployment["spec"]
    target = one(objects, "ScaledObject")["spec"]["scaleTargetRef"]
    assert target == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }


def validator() -> Draft7Validator:
    """KEDA's schema as the API server applies it: an unknown field is not kept (pruned), so
    here it is an error (objects closed, as ``json_schema`` does for the chart's values)."""
    return Draft7Validator(json_schema(keda.openapi_schema("v1alpha1")))


def test_the_scaled_object_is_valid_for_kedas_crd() -> None:
    endpoint_no_cpu = sets(
        "jobs.sqsEndpointUrl=http://localstack:4566", "service.autoscaling.keda.cpu.enabled=false"
    )
    for args in ((), endpoint_no_cpu):
        obj = scaled_object(*args)
        errors = [error.message for error in validator().iter_errors(obj)]
        assert not errors, errors
        assert obj["apiVersion"] == "keda.sh/v1alpha1"
        spec = obj["spec"]
        rules = keda.openapi_schema()["properties"]["spec"]["x-kubernetes-validations"]
        assert [rule["rule"] for rule in rules] == [MIN_AT_MOST_MAX]
        assert spec["minReplicaCount"] <= spec["maxReplicaCount"]


def test_the_validation_refuses_what_keda_would_drop_or_refuse() -> None:
    obj = scaled_object()
    misspelt = copy.deepcopy(obj)
    misspelt["spec"]["pollingIntervall"] = misspelt["spec"].pop("pollingInterval")
    numeric = copy.deepcopy(obj)
    numeric["spec"]["triggers"][0]["metadata"]["queueLength"] = 4
    for bad in (misspelt, numeric):
        assert not validator().is_valid(bad)


def test_trigger_metadata_is_what_kedas_scalers_read() -> None:
    assert keda.release(keda.CRD) == keda.release(keda.SCALER_METADATA)
    scalers = keda.scalers()
    obj = scaled_object("--set", "jobs.sqsEndpointUrl=http://localstack:4566")
    found = triggers(obj)
    assert set(found) == {"aws-sqs-queue", "cpu"}
    for trigger, body in found.items():
        unread = set(body["metadata"]) - scalers[trigger].names
        assert not unread, f"{trigger} reads no {sorted(unread)}"
    rendered = {"queueURL", "queueLength", "awsRegion", "awsEndpoint", "identityOwner"}
    assert set(found["aws-sqs-queue"]["metadata"]) == rendered


def test_the_values_reach_the_triggers() -> None:
    found = triggers(scaled_object())
    sqs = found["aws-sqs-queue"]
    assert sqs["metadata"] == {
        "queueURL": QUEUE,
        "queueLength": "4",  # partsPerReplica
        "awsRegion": "us-east-1",  # aws.region
        "identityOwner": "pod",
    }
    assert sqs["authenticationRef"] == {"name": "keda-aws"}
    assert found["cpu"] == {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}

    obj = scaled_object(
        *sets(
            "service.autoscaling.keda.partsPerReplica=8",
            "service.autoscaling.keda.awsRegion=eu-west-1",
            "service.autoscaling.keda.identityOwner=operator",
            "service.autoscaling.keda.authenticationRef=",
            "service.autoscaling.keda.cpu.targetUtilization=55",
            "service.autoscaling.keda.minReplicaCount=3",
            "service.autoscaling.keda.maxReplicaCount=12",
            "service.autoscaling.keda.pollingInterval=5",
            "service.autoscaling.keda.cooldownPeriod=60",
            "jobs.sqsEndpointUrl=http://localstack:4566",
        )
    )
    spec = obj["spec"]
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (3, 12)
    assert (spec["pollingInterval"], spec["cooldownPeriod"]) == (5, 60)
    found = triggers(obj)
    assert found["aws-sqs-queue"]["metadata"] == {
        "queueURL": QUEUE,
        "queueLength": "8",
        "awsRegion": "eu-west-1",
        "awsEndpoint": "http://localstack:4566",
        "identityOwner": "operator",
    }
    assert "authenticationRef" not in found["aws-sqs-queue"]
    assert found["cpu"]["metadata"] == {"value": "55"}
    no_cpu = scaled_object("--set", "service.autoscaling.keda.cpu.enabled=false")
    assert set(triggers(no_cpu)) == {"aws-sqs-queue"}


@pytest.mark.parametrize(
    ("minimum", "expected"), [(1, {"maxUnavailable": 1}), (3, {"minAvailable": 1})]
)
def test_the_disruption_budget_follows_kedas_fewest_replicas(
    minimum: int, expected: dict[str, int]
) -> None:
    objects = render(*KEDA, "--set", f"service.autoscaling.keda.minReplicaCount={minimum}")
    budget = one(objects, "PodDisruptionBudget")["spec"]
    assert {k: v for k, v in budget.items() if k != "selector"} == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--set", "service.autoscaling.enabled=true"),
            "service.autoscaling.enabled and service.autoscaling.keda.enabled are both true",
        ),
        (("--set", "jobs.queueUrl="), "service.autoscaling.keda.enabled needs jobs.queueUrl"),
        (
            ("--set", "service.autoscaling.keda.authenticationRef="),
            "identityOwner pod needs service.autoscaling.keda.authenticationRef",
        ),
    ],
    ids=["both-autoscalers", "no-queue", "pod-identity-without-authentication"],
)
def test_a_scaled_object_that_cannot_work_fails_the_render(
    args: tuple[str, ...], message: str
) -> None:
    stderr = refusal(*KEDA, *args)
    assert message in stderr
    if "both" in message:
        assert "Pick one" in stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # The same pods answer synchronous requests: never none of them.
        ("service.autoscaling.keda.minReplicaCount=0", "minimum: got 0, want 1"),
        ("service.autoscaling.keda.identityOwner=keda", "value must be one of"),
        ("service.autoscaling.keda.partsPerReplica=0", "minimum: got 0, want 1"),
        # KEDA takes the queue's name from the URL's path: /<account>/<name>.
        ("jobs.queueUrl=tempaudio-parts", "does not match pattern"),
        ("jobs.queueUrl=https://sqs.eu-west-1.amazonaws.com/tempaudio-parts", "does not match"),
        ("jobs.workers=0", "minimum: got 0, want 1"),
        ("jobs.webhookSecret.existingSecrets=x", "additional properties 'existingSecrets'"),
    ],
)
def test_the_schema_refuses_bad_job_and_keda_values(override: str, message: str) -> None:
    assert message in refusal("--set", override)


JOB_VARIABLES = frozenset(
    {
        "TEMPAUDIO_JOBS_QUEUE_URL",
        "TEMPAUDIO_SQS_ENDPOINT_URL",
        "TEMPAUDIO_WEBHOOK_SECRET",
        "TEMPAUDIO_JOBS_WORKERS",
    }
)


def test_job_settings_reach_the_service_only_when_set() -> None:
    assert not JOB_VARIABLES & {entry["name"] for entry in service_env()}
    env = service_env(
        *sets(
            f"jobs.queueUrl={QUEUE}",
            "jobs.sqsEndpointUrl=http://localstack:4566",
            "jobs.workers=3",
            "jobs.webhookSecret.existingSecret=tempaudio-webhook",
        )
    )
    values = {entry["name"]: entry.get("value") for entry in env}
    assert values["TEMPAUDIO_JOBS_QUEUE_URL"] == QUEUE
    assert values["TEMPAUDIO_SQS_ENDPOINT_URL"] == "http://localstack:4566"
    assert values["TEMPAUDIO_JOBS_WORKERS"] == "3"
    # The signing secret is never a value in the chart: the kubelet reads it from the Secret.
    (secret,) = [entry for entry in env if entry["name"] == "TEMPAUDIO_WEBHOOK_SECRET"]
    assert secret == {
        "name": "TEMPAUDIO_WEBHOOK_SECRET",
        "valueFrom": {
            "secretKeyRef": {
                "name": "tempaudio-webhook",
                "key": "webhook-secret",
                "optional": False,
            }
        },
    }
    # Each alone: one set is no reason to render the others.
    only_queue = {entry["name"] for entry in service_env("--set", f"jobs.queueUrl={QUEUE}")}
    assert JOB_VARIABLES & only_queue == {"TEMPAUDIO_JOBS_QUEUE_URL"}
    keyed = service_env(
        "--set", "jobs.webhookSecret.existingSecret=hooks", "--set", "jobs.webhookSecret.key=whsec"
    )
    (secret,) = [entry for entry in keyed if entry["name"] == "TEMPAUDIO_WEBHOOK_SECRET"]
    assert secret["valueFrom"]["secretKeyRef"]["key"] == "whsec"
    assert JOB_VARIABLES & set(env_of({"env": keyed})) == {"TEMPAUDIO_WEBHOOK_SECRET"}
