"""The operator against the real control plane, with moto's server as AWS."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tempaudio_service.storage import layout
from tests.conftest import list_keys, put_object_created_at
from tests.kube_fixtures import GROUP, PLURAL, VERSION, policy_manifest, run_here, wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.usefixtures("operator")]


def spec_for(aws: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "retention": "24h",
        "schedule": "0 * * * *",
        "storage": {"bucket": aws["bucket"], "endpointURL": aws["endpoint"]},
        "dynamodb": {"table": aws["table"]},
        **extra,
    }


def get_policy(custom: client.CustomObjectsApi, namespace: str, name: str = "audio") -> Any:
    return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def condition(policy: dict[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in (policy.get("status") or {}).get("conditions") or [] if c["type"] == type_]
    return found[0] if found else {}


def at_condition(
    custom: client.CustomObjectsApi,
    plural: str,
    namespace: str,
    name: str,
    type_: str,
    status: str,
    timeout: float = 60,
) -> Any:
    """The object once its condition ``type_`` has ``status`` for its current generation
    (the operator has seen the latest spec)."""

    def check() -> Any:
        found = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
        ok = condition(found, type_).get("status") == status
        current = (found.get("status") or {}).get("observedGeneration") == found["metadata"][
            "generation"
        ]
        return found if ok and current else None

    return wait_for(check, timeout=timeout, what=f"{plural}/{name} {type_}={status}")


def ready(custom: client.CustomObjectsApi, namespace: str, status: str = "True") -> Any:
    return at_condition(custom, PLURAL, namespace, "audio", "Ready", status)


def cronjob(batch: client.BatchV1Api, namespace: str) -> client.V1CronJob | None:
    try:
        return batch.read_namespaced_cron_job("audio-cleanup", namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def args_of(cron: client.V1CronJob) -> list[str]:
    return list(cron.spec.job_template.spec.template.spec.containers[0].args)


def events(core: client.CoreV1Api, namespace: str) -> list[str]:
    return [e.reason for e in core.list_namespaced_event(namespace).items]


def test_policy_becomes_cronjob_ttl_and_events(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, core: client.CoreV1Api,
    namespace: str, aws: dict[str, Any], dynamodb: Any,
) -> None:  # fmt: skip
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, policy_manifest("audio", spec_for(aws))
    )
    policy = ready(custom, namespace)
    cron = wait_for(lambda: cronjob(batch, namespace), what="CronJob")
    assert cron.spec.schedule == "0 * * * *"
    assert cron.spec.concurrency_policy == "Forbid"
    assert cron.spec.time_zone == "Etc/UTC"
    assert args_of(cron) == [
        "--bucket", aws["bucket"], "--prefix", "temp-audio/", "--retention", "24h",
        "--region", "us-east-1", "--log-format", "json", "--endpoint-url", aws["endpoint"],
    ]  # fmt: skip
    owner = cron.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.controller) == ("TempAudioPolicy", "audio", True)
    ttl = dynamodb.describe_time_to_live(TableName=aws["table"])["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "ttl")
    assert {c["type"]: c["status"] for c in policy["status"]["conditions"]} == {
        "CronJobReady": "True", "TTLReady": "True", "LifecycleReady": "True", "Ready": "True",
    }  # fmt: skip
    assert policy["status"]["cronJobName"] == "audio-cleanup"
    reasons = wait_for(
        lambda: (r := events(core, namespace)) and {"CronJobCreated", "TTLEnabled"} <= set(r) and r,
        what="events",
    )
    assert reasons.count("TTLEnabled") == 1


def test_edits_propagate_and_drift_is_repaired(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, namespace: str, aws: dict[str, Any]
) -> None:
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, policy_manifest("audio", spec_for(aws))
    )
    ready(custom, namespace)
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "audio",
        {"spec": {"retention": "48h", "schedule": "*/30 * * * *", "suspend": True, "dryRun": True}},
    )  # fmt: skip
    cron = wait_for(
        lambda: (c := cronjob(batch, namespace)) and c.spec.schedule == "*/30 * * * *" and c,
        what="schedule update",
    )
    assert cron.spec.suspend is True
    assert args_of(cron)[args_of(cron).index("--retention") + 1] == "48h"
    assert "--dry-run" in args_of(cron)
    assert ready(custom, namespace)["status"]["observedGeneration"] == 2

    # Someone edits the CronJob: undone.
    batch.patch_namespaced_cron_job("audio-cleanup", namespace, {"spec": {"schedule": "* * * * *"}})
    wait_for(
        lambda: (c := cronjob(batch, namespace)) and c.spec.schedule == "*/30 * * * *",
        what="edited CronJob restored",
    )
    # Someone deletes it: recreated.
    uid = cronjob(batch, namespace).metadata.uid  # type: ignore[union-attr]
    batch.delete_namespaced_cron_job("audio-cleanup", namespace)
    wait_for(
        lambda: (c := cronjob(batch, namespace)) and c.metadata.uid != uid,
        what="deleted CronJob recreated",
    )


def test_deleting_the_policy_removes_the_cronjob_and_keeps_ttl(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, namespace: str,
    aws: dict[str, Any], dynamodb: Any,
) -> None:  # fmt: skip
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, policy_manifest("audio", spec_for(aws))
    )
    ready(custom, namespace)
    # Every policy: the operator leaves the final cleanup of its audio at deletion.
    assert get_policy(custom, namespace)["metadata"]["finalizers"] == [
        "tempaudio.dev/lifecycle-rule"
    ]
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "audio")
    wait_for(lambda: cronjob(batch, namespace) is None, what="CronJob garbage-collected")
    ttl = dynamodb.describe_time_to_live(TableName=aws["table"])["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"


def test_lifecycle_safety_net_merges_with_other_rules(
    custom: client.CustomObjectsApi, namespace: str, aws: dict[str, Any], s3: Any
) -> None:
    others = {
        "ID": "logs",
        "Filter": {"Prefix": "logs/"},
        "Status": "Enabled",
        "Expiration": {"Days": 30},
    }
    s3.put_bucket_lifecycle_configuration(
        Bucket=aws["bucket"], LifecycleConfiguration={"Rules": [others]}
    )
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL,
        policy_manifest("audio", spec_for(aws, retention="36h", lifecycleSafetyNet=True)),
    )  # fmt: skip
    ready(custom, namespace)
    rules = {
        r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=aws["bucket"])["Rules"]
    }
    assert set(rules) == {"logs", f"tempaudio-{namespace}-audio"}
    ours = rules[f"tempaudio-{namespace}-audio"]
    assert ours["Expiration"] == {"Days": 3}  # ceil(1.5) + 1
    # Only what the service wrote (tagged) expires: a shared prefix loses nothing else.
    assert ours["Filter"] == {
        "And": {"Prefix": "temp-audio/", "Tags": [{"Key": "tempaudio", "Value": "audio"}]}
    }

    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "audio", {"spec": {"lifecycleSafetyNet": False}}
    )
    wait_for(
        lambda: (
            [r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=aws["bucket"])["Rules"]]
            == ["logs"]
        ),
        what="our lifecycle rule removed, theirs kept",
    )


def test_ttl_on_another_attribute_is_reported_not_crashed_on(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, namespace: str,
    aws: dict[str, Any], dynamodb: Any,
) -> None:  # fmt: skip
    dynamodb.update_time_to_live(
        TableName=aws["table"],
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"},
    )
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, policy_manifest("audio", spec_for(aws))
    )
    policy = ready(custom, namespace, status="False")
    assert condition(policy, "TTLReady")["reason"] == "TTLAttributeMismatch"
    assert condition(policy, "Ready")["reason"] == "TTLAttributeMismatch"
    assert condition(policy, "CronJobReady")["status"] == "True"
    assert cronjob(batch, namespace) is not None
    # Once the table is fixed, the retry converges.
    dynamodb.update_time_to_live(
        TableName=aws["table"],
        TimeToLiveSpecification={"Enabled": False, "AttributeName": "expires"},
    )
    ready(custom, namespace)


def test_invalid_spec_past_the_schema_is_a_permanent_error(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, namespace: str, aws: dict[str, Any]
) -> None:
    # The CEL rule knows common schedule shapes only; the operator knows every cron.
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL,
        policy_manifest("audio", spec_for(aws, retention="2h", schedule="0 0 * * 1")),
    )  # fmt: skip
    policy = ready(custom, namespace, status="False")
    assert condition(policy, "Ready")["reason"] == "InvalidSpec"
    assert "schedule's period" in condition(policy, "Ready")["message"]
    assert cronjob(batch, namespace) is None


# Fixed instants, with what the cleanup lists: between 00:00 and 02:00 UTC the 2-hour-old
# object sits in yesterday's folder, which the cleanup scans (it failed CI there before
# the clock was injected); and one instant whose objects straddle a month end.
INSTANTS = [
    (datetime(2026, 6, 15, 0, 30, tzinfo=UTC), 4),
    (datetime(2026, 6, 15, 12, 0, tzinfo=UTC), 3),
    (datetime(2026, 6, 15, 23, 59, tzinfo=UTC), 3),
    (datetime(2026, 3, 1, 0, 30, tzinfo=UTC), 4),
]


@pytest.mark.parametrize(("now", "scanned"), INSTANTS, ids=lambda v: str(v))
def test_a_job_from_the_cronjob_runs_cleanup_and_reports_back(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, core: client.CoreV1Api,
    namespace: str, aws: dict[str, Any], s3: Any, tmp_path: Path, now: datetime, scanned: int,
) -> None:  # fmt: skip
    old = [
        layout.object_key("temp-audio/", now - timedelta(hours=30), str(uuid.uuid4()))
        for _ in range(3)
    ]
    young = layout.object_key("temp-audio/", now - timedelta(hours=2), str(uuid.uuid4()))
    for key in old:
        put_object_created_at(s3, aws["bucket"], key, now - timedelta(hours=30))
    put_object_created_at(s3, aws["bucket"], young, now - timedelta(hours=2))
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, policy_manifest("audio", spec_for(aws))
    )
    ready(custom, namespace)
    cron = wait_for(lambda: cronjob(batch, namespace), what="CronJob")

    # What `kubectl create job --from=cronjob/audio-cleanup` does.
    template = cron.spec.job_template
    job = client.V1Job(
        metadata=client.V1ObjectMeta(
            name="audio-cleanup-manual", labels=template.metadata.labels,
            owner_references=[client.V1OwnerReference(
                api_version="batch/v1", kind="CronJob", name=cron.metadata.name,
                uid=cron.metadata.uid, controller=True)],
        ),
        spec=template.spec,
    )  # fmt: skip
    batch.create_namespaced_job(namespace, job)
    pod = wait_for(
        lambda: (
            core.list_namespaced_pod(
                namespace, label_selector="job-name=audio-cleanup-manual"
            ).items
        ),
        what="the Job's pod",
    )[0]

    container = pod.spec.containers[0]
    termination_log = tmp_path / "termination-log"
    result = run_here(container, now, TEMPAUDIO_TERMINATION_LOG=str(termination_log))
    assert result.returncode == 0, result.stderr
    assert list_keys(s3, aws["bucket"]) == {young}
    message = termination_log.read_text()
    assert json.loads(message)["deleted"] == 3

    started = now.isoformat().replace("+00:00", "Z")
    core.patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": {
        "phase": "Succeeded",
        "containerStatuses": [{
            "name": "cleanup", "image": container.image, "imageID": "", "ready": False,
            "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "message": message,
                                     "startedAt": started, "finishedAt": started}},
        }],
    }})  # fmt: skip

    policy = wait_for(
        lambda: (p := get_policy(custom, namespace)).get("status", {}).get("lastCleanup") and p,
        what="status.lastCleanup",
        timeout=90,
    )
    last = policy["status"]["lastCleanup"]
    assert last["jobName"] == "audio-cleanup-manual"
    assert last["succeeded"] is True
    assert (last["scanned"], last["deleted"], last["errors"], last["dryRun"]) == (
        scanned, 3, 0, False,
    )  # fmt: skip
    # The operator posts the Event right after the status patch: wait for it too.
    wait_for(lambda: "CleanupSucceeded" in events(core, namespace), what="CleanupSucceeded")


def test_a_table_whose_keys_are_not_the_policys_is_reported(
    custom: client.CustomObjectsApi, namespace: str, aws: dict[str, Any]
) -> None:
    # The fixture's table has the seed's keys (date, audio_id); the policy says AudioId.
    spec = spec_for(aws)
    spec["dynamodb"]["keySchema"] = "AudioId"
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, policy_manifest("audio", spec)
    )
    policy = ready(custom, namespace, status="False")
    ttl = condition(policy, "TTLReady")
    assert ttl["reason"] == "KeySchemaMismatch"
    assert "keyed by date HASH, audio_id RANGE" in ttl["message"]
    assert condition(policy, "Ready")["reason"] == "KeySchemaMismatch"
