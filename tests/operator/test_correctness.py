"""Operator correctness on the real control plane: every policy ends in a status, one
policy's failure never blocks another, owned objects only, removals propagate."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from kubernetes import client

from tempaudio_operator.desired import cronjob_name
from tests.kube_fixtures import GROUP, PLURAL, VERSION, delete_policy, policy_manifest, wait_for
from tests.operator.test_operator import at_condition, condition, events, spec_for

pytestmark = [pytest.mark.k8s, pytest.mark.usefixtures("operator")]


def get(custom: client.CustomObjectsApi, namespace: str, name: str) -> Any:
    return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def settled(custom: client.CustomObjectsApi, namespace: str, name: str, status: str) -> Any:
    """The policy once its Ready condition has this status for its current generation."""
    return at_condition(custom, PLURAL, namespace, name, "Ready", status)


def read_cronjob(batch: client.BatchV1Api, namespace: str, name: str) -> Any:
    try:
        return batch.read_namespaced_cron_job(name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise


def create(custom: client.CustomObjectsApi, namespace: str, name: str, spec: Any) -> None:
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, policy_manifest(name, spec)
    )


@pytest.mark.parametrize(
    ("override", "says"),
    [
        # Each got a blank READY, no Event and a traceback every 60 s before.
        ({"timeZone": "Mars/Olympus"}, "the CronJob API refused the spec"),
        ({"timeZone": "Local"}, "the CronJob API refused the spec"),
        (
            {"jobTemplate": {"resources": {"limits": {"memory": "lots"}}}},
            "not a Kubernetes quantity",
        ),
    ],
    ids=["unknown-time-zone", "local-time-zone", "bad-quantity"],
)
def test_specs_the_cronjob_api_refuses_end_in_invalid_spec(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, namespace: str,
    aws: dict[str, Any], override: dict[str, Any], says: str,
) -> None:  # fmt: skip
    create(custom, namespace, "audio", {**spec_for(aws), **override})
    policy = settled(custom, namespace, "audio", "False")
    assert condition(policy, "Ready")["reason"] == "InvalidSpec"
    assert says in condition(policy, "Ready")["message"]
    wait_for(lambda: "InvalidSpec" in events(core, namespace), what="a Warning event")


def test_a_region_no_aws_client_accepts_is_refused_at_the_api(
    custom: client.CustomObjectsApi, namespace: str, aws: dict[str, Any]
) -> None:
    spec = spec_for(aws)
    spec["storage"]["region"] = "us-" + "east" * 17 + "-1"  # 74 characters, the CRD's pattern
    with pytest.raises(client.ApiException) as refused:
        create(custom, namespace, "audio", spec)
    assert refused.value.status == 422
    assert "spec.storage.region" in str(refused.value.body)


def test_a_policy_name_too_long_for_a_label_is_invalid_spec(
    custom: client.CustomObjectsApi, namespace: str, aws: dict[str, Any]
) -> None:
    name = "n" * 70
    create(custom, namespace, name, spec_for(aws))
    policy = settled(custom, namespace, name, "False")
    assert condition(policy, "Ready")["reason"] == "InvalidSpec"
    assert "at most 63" in condition(policy, "Ready")["message"]


def test_one_bad_policy_never_stops_drift_repair_of_the_others(
    custom: client.CustomObjectsApi, namespace: str, aws: dict[str, Any], dynamodb: Any
) -> None:
    # Listed first (names sort), and refused by the CronJob API in every resync round.
    create(custom, namespace, "a-bad", {**spec_for(aws), "timeZone": "Mars/Olympus"})
    create(custom, namespace, "b-good", spec_for(aws))
    settled(custom, namespace, "a-bad", "False")
    settled(custom, namespace, "b-good", "True")
    # Drift only the resync loop repairs: TTL switched off behind the operator's back.
    dynamodb.update_time_to_live(
        TableName=aws["table"], TimeToLiveSpecification={"Enabled": False, "AttributeName": "ttl"}
    )

    def ttl_enabled() -> bool:
        described = dynamodb.describe_time_to_live(TableName=aws["table"])
        return bool(described["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED")

    wait_for(ttl_enabled, what="b-good's TTL repaired despite a-bad", timeout=30)


def test_long_names_sharing_a_prefix_get_a_cronjob_each(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, namespace: str,
    aws: dict[str, Any],
) -> None:  # fmt: skip
    names = ["voicemail-for-the-customer-support-team-in-europe-" + s for s in ("east", "west")]
    for name, retention in zip(names, ("24h", "48h"), strict=True):
        create(custom, namespace, name, spec_for(aws, retention=retention))
    for name, retention in zip(names, ("24h", "48h"), strict=True):
        settled(custom, namespace, name, "True")
        cron = read_cronjob(batch, namespace, cronjob_name(name))
        assert cron.metadata.owner_references[0].name == name
        args = cron.spec.job_template.spec.template.spec.containers[0].args
        assert args[args.index("--retention") + 1] == retention
    # Before, both were cut to one 44-character name: one CronJob, its owner flipping.
    assert cronjob_name(names[0]) != cronjob_name(names[1])


def test_an_upgrade_removes_the_cronjob_an_older_operator_named_by_cutting(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, namespace: str,
    aws: dict[str, Any],
) -> None:  # fmt: skip
    name = "voicemail-for-the-customer-support-team-in-europe-east"
    create(custom, namespace, name, spec_for(aws))
    policy = settled(custom, namespace, name, "True")
    # What the operator before hashed names left: the name cut to 44 characters, owned.
    current = read_cronjob(batch, namespace, cronjob_name(name))
    old = client.V1CronJob(
        metadata=client.V1ObjectMeta(
            name=name[:44] + "-cleanup", labels=current.metadata.labels,
            owner_references=[client.V1OwnerReference(
                api_version=f"{GROUP}/{VERSION}", kind="TempAudioPolicy", name=name,
                uid=policy["metadata"]["uid"], controller=True)],
        ),
        spec=current.spec,
    )  # fmt: skip
    old.spec.job_template.metadata = current.spec.job_template.metadata
    batch.create_namespaced_cron_job(namespace, old)
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name,
                                          {"spec": {"retention": "48h"}})  # fmt: skip
    wait_for(lambda: read_cronjob(batch, namespace, name[:44] + "-cleanup") is None,
             what="the old CronJob deleted")  # fmt: skip
    assert read_cronjob(batch, namespace, cronjob_name(name)) is not None


def test_a_cronjob_the_policy_does_not_own_is_left_alone(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, core: client.CoreV1Api,
    namespace: str, aws: dict[str, Any],
) -> None:  # fmt: skip
    team = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "mine-cleanup"},
        "spec": {
            "schedule": "5 4 * * *",
            "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "team", "image": "team/tool:1", "args": ["tidy"]}],
            }}}},
        },
    }  # fmt: skip
    batch.create_namespaced_cron_job(namespace, team)
    create(custom, namespace, "mine", spec_for(aws))
    policy = settled(custom, namespace, "mine", "False")
    assert condition(policy, "Ready")["reason"] == "NameConflict"
    wait_for(lambda: "NameConflict" in events(core, namespace), what="a Warning event")
    cron = read_cronjob(batch, namespace, "mine-cleanup")
    assert cron.spec.schedule == "5 4 * * *"
    assert cron.spec.job_template.spec.template.spec.containers[0].image == "team/tool:1"
    assert not cron.metadata.owner_references
    # Deleting the policy once garbage-collected the team's job along with it.
    delete_policy(custom, namespace, "mine")
    assert read_cronjob(batch, namespace, "mine-cleanup") is not None


def test_fields_removed_from_the_policy_are_removed_from_the_cronjob(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, namespace: str,
    aws: dict[str, Any],
) -> None:  # fmt: skip
    job = {
        "nodeSelector": {"pool": "batch"},
        "tolerations": [{"key": "batch", "operator": "Exists"}],
        "serviceAccountName": "cleaner",
    }
    create(custom, namespace, "audio", spec_for(aws, jobTemplate=job))
    settled(custom, namespace, "audio", "True")
    pod = read_cronjob(batch, namespace, "audio-cleanup").spec.job_template.spec.template.spec
    assert (pod.node_selector, pod.service_account_name) == ({"pool": "batch"}, "cleaner")
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "audio", {"spec": {"jobTemplate": None}}
    )
    settled(custom, namespace, "audio", "True")

    def stripped() -> Any:
        spec = read_cronjob(batch, namespace, "audio-cleanup").spec.job_template.spec.template.spec
        gone = not spec.node_selector and not spec.tolerations
        gone = gone and spec.service_account_name == spec.service_account == "default"
        return spec if gone else None

    # A merge patch of the desired state never sent the removals before.
    wait_for(stripped, what="nodeSelector, tolerations and serviceAccountName removed")


def test_fields_an_operator_set_before_server_side_apply_are_removed_too(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, namespace: str,
    aws: dict[str, Any],
) -> None:  # fmt: skip
    create(custom, namespace, "audio", spec_for(aws))
    policy = settled(custom, namespace, "audio", "True")
    # What an operator before server-side apply left: the CronJob written by an update
    # (another field manager), with a nodeSelector the policy no longer has.
    batch.patch_namespaced_cron_job("audio-cleanup", namespace, {"spec": {"jobTemplate": {
        "spec": {"template": {"spec": {"nodeSelector": {"pool": "old"}}}}}}})  # fmt: skip
    cron = read_cronjob(batch, namespace, "audio-cleanup")
    assert any(f.operation == "Update" and not f.subresource for f in cron.metadata.managed_fields)
    custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "audio",
                                          {"spec": {"retention": "48h"}})  # fmt: skip
    settled(custom, namespace, "audio", "True")

    def stripped() -> Any:
        spec = read_cronjob(batch, namespace, "audio-cleanup").spec.job_template.spec.template.spec
        return spec if not spec.node_selector else None

    # Server-side apply removes only what its own manager set: it stayed before.
    wait_for(stripped, what="the old manager's nodeSelector removed")
    assert (
        policy["metadata"]["uid"]
        == read_cronjob(batch, namespace, "audio-cleanup").metadata.owner_references[0].uid
    )


@contextlib.contextmanager
def listener(answer: bytes | None, calls: list[bytes] | None = None) -> Iterator[str]:
    """A loopback HTTP listener that answers every request with ``answer``, or never;
    what it receives goes into ``calls``."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            if answer is None:
                held.append(connection)  # read nothing, answer nothing
                if calls is not None:
                    calls.append(b"")
                continue
            with connection:
                connection.settimeout(2)
                with contextlib.suppress(OSError):
                    received = connection.recv(65536)
                    if calls is not None:
                        calls.append(received)
                    connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in held:
            connection.close()
        server.close()


def test_policies_on_a_hung_endpoint_never_delay_another_policy(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, namespace: str,
    aws: dict[str, Any],
) -> None:  # fmt: skip
    with listener(None) as hung:
        stuck = [f"stuck-{i}" for i in range(9)]
        for name in stuck:
            spec = spec_for(aws)
            spec["storage"]["endpointURL"] = hung
            create(custom, namespace, name, spec)
        create(custom, namespace, "fresh", spec_for(aws))
        settled(custom, namespace, "fresh", "True")
        # Every stuck policy is still in its first reconcile, waiting on the listener: the
        # fresh one did not queue behind them (it waited 79 s behind 9 of them before).
        assert read_cronjob(batch, namespace, "fresh-cleanup") is not None
        waiting = [name for name in stuck if not get(custom, namespace, name).get("status")]
        assert len(waiting) == len(stuck)


ECHO_BODY = (
    b"<?xml version='1.0'?><Error><Code>Leak-Me please</Code><Message>secret listener text"
    b"</Message><RequestId>1</RequestId></Error>"
)
ECHO = (
    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
    b"Connection: close\r\nContent-Length: "
    + str(len(ECHO_BODY)).encode()
    + b"\r\n\r\n"
    + ECHO_BODY
)


def test_a_listeners_answer_is_never_echoed_into_status_or_events(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, namespace: str,
    aws: dict[str, Any],
) -> None:  # fmt: skip
    with listener(ECHO) as endpoint:
        spec = spec_for(aws)
        spec["storage"]["endpointURL"] = endpoint
        create(custom, namespace, "echo", spec)
        policy = settled(custom, namespace, "echo", "False")
        wait_for(lambda: events(core, namespace), what="events")
    shown = json.dumps(policy["status"]) + json.dumps(
        [e.message for e in core.list_namespaced_event(namespace).items]
    )
    # The status still says what failed and how: the call and the HTTP status.
    assert "DescribeTimeToLive" in shown
    assert "HTTP 500" in shown
    for leaked in ("secret listener text", "Leak-Me"):
        assert leaked not in shown


def test_dry_run_writes_nothing_anywhere(
    custom: client.CustomObjectsApi, namespace: str, aws: dict[str, Any], s3: Any, dynamodb: Any
) -> None:
    create(custom, namespace, "audio", spec_for(aws, dryRun=True, lifecycleSafetyNet=True))
    policy = settled(custom, namespace, "audio", "True")
    assert condition(policy, "TTLReady")["reason"] == "DryRun"
    ttl = dynamodb.describe_time_to_live(TableName=aws["table"])["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "DISABLED"
    # A real two-day expiry rule was written before.
    with pytest.raises(ClientError, match="NoSuchLifecycleConfiguration"):
        s3.get_bucket_lifecycle_configuration(Bucket=aws["bucket"])


def test_the_lifecycle_rule_leaves_with_its_policy(
    custom: client.CustomObjectsApi, namespace: str, aws: dict[str, Any], s3: Any
) -> None:
    theirs = {"ID": "logs", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
              "Expiration": {"Days": 30}}  # fmt: skip
    s3.put_bucket_lifecycle_configuration(
        Bucket=aws["bucket"], LifecycleConfiguration={"Rules": [theirs]}
    )
    create(custom, namespace, "audio", spec_for(aws, lifecycleSafetyNet=True))
    settled(custom, namespace, "audio", "True")

    def rule_ids() -> list[str]:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=aws["bucket"])["Rules"]
        return sorted(rule["ID"] for rule in rules)

    assert rule_ids() == sorted(["logs", f"tempaudio-{namespace}-audio"])
    finalizers = get(custom, namespace, "audio")["metadata"].get("finalizers")
    assert finalizers == ["tempaudio.dev/lifecycle-rule"]
    delete_policy(custom, namespace, "audio")
    # The rule outlived its policy before; the other team's rule stays.
    assert rule_ids() == ["logs"]


def test_dynamodb_calls_go_to_their_own_endpoint(
    custom: client.CustomObjectsApi, namespace: str, aws: dict[str, Any], dynamodb: Any
) -> None:
    with listener(ECHO) as s3_only:
        spec = spec_for(aws)
        spec["storage"]["endpointURL"] = s3_only  # an S3 store that knows no DynamoDB
        spec["dynamodb"]["endpointURL"] = aws["endpoint"]
        create(custom, namespace, "audio", spec)
        policy = settled(custom, namespace, "audio", "False")
    # TTL calls went to the S3 endpoint before, so TTLReady could never be True.
    assert condition(policy, "TTLReady")["status"] == "True"
    assert condition(policy, "LifecycleReady")["status"] == "False"
    ttl = dynamodb.describe_time_to_live(TableName=aws["table"])["TimeToLiveDescription"]
    assert ttl["TimeToLiveStatus"] == "ENABLED"


def test_an_endpoint_the_operator_does_not_allow_is_never_called(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, namespace: str,
    aws: dict[str, Any],
) -> None:  # fmt: skip
    calls: list[bytes] = []
    with listener(ECHO, calls) as endpoint:
        spec = spec_for(aws)
        # The operator allows http://127.0.0.1 (moto); "localhost" is another host to it.
        spec["storage"]["endpointURL"] = endpoint.replace("127.0.0.1", "localhost")
        create(custom, namespace, "audio", spec)
        policy = settled(custom, namespace, "audio", "False")
    assert condition(policy, "Ready")["reason"] == "NotAllowed"
    # Before, the listener got the operator's signed requests (access key id in the headers).
    assert calls == []
    assert read_cronjob(batch, namespace, "audio-cleanup") is None


@pytest.mark.parametrize(
    ("job", "says"),
    [
        ({"image": "attacker/tool:1"}, "jobTemplate.image"),
        ({"serviceAccountName": "cluster-admin-ish"}, "serviceAccountName"),
    ],
)
def test_job_image_and_account_need_the_operators_consent(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, namespace: str,
    aws: dict[str, Any], job: dict[str, str], says: str,
) -> None:  # fmt: skip
    create(custom, namespace, "audio", spec_for(aws, jobTemplate=job))
    policy = settled(custom, namespace, "audio", "False")
    assert condition(policy, "Ready")["reason"] == "NotAllowed"
    assert says in condition(policy, "Ready")["message"]
    assert read_cronjob(batch, namespace, "audio-cleanup") is None


def cleanup_retention(batch: client.BatchV1Api, namespace: str) -> str | None:
    cron = read_cronjob(batch, namespace, "audio-cleanup")
    if cron is None:
        return None
    args = cron.spec.job_template.spec.template.spec.containers[0].args
    return str(args[args.index("--retention") + 1])


def test_a_shrink_waits_until_earlier_urls_have_expired(
    custom: client.CustomObjectsApi, batch: client.BatchV1Api, core: client.CoreV1Api,
    namespace: str, aws: dict[str, Any],
) -> None:  # fmt: skip
    create(custom, namespace, "audio", spec_for(aws, retention="24h"))
    settled(custom, namespace, "audio", "True")
    edited = datetime.now(UTC)
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "audio", {"spec": {"retention": "1h"}}
    )
    policy = settled(custom, namespace, "audio", "True")
    # Before, the cleanup deleted after 1 hour at once: every URL issued in the last 23
    # hours pointed at deleted audio.
    assert policy["status"]["enforcedRetention"] == "1d"
    until = datetime.fromisoformat(policy["status"]["enforcedUntil"])
    assert edited + timedelta(hours=24) <= until <= edited + timedelta(hours=24, minutes=11)
    assert cleanup_retention(batch, namespace) == "1d"
    wait_for(lambda: "RetentionShrinkDeferred" in events(core, namespace), what="the Event")

    # The CronJob watch repairs with the enforced retention, not the spec's.
    uid = read_cronjob(batch, namespace, "audio-cleanup").metadata.uid
    batch.delete_namespaced_cron_job("audio-cleanup", namespace)
    wait_for(
        lambda: (c := read_cronjob(batch, namespace, "audio-cleanup")) and c.metadata.uid != uid,
        what="CronJob recreated",
    )
    assert cleanup_retention(batch, namespace) == "1d"

    # A team that must have data gone sooner says so.
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "audio", {"spec": {"retentionShrink": "Immediate"}}
    )
    policy = settled(custom, namespace, "audio", "True")
    assert policy["status"]["enforcedRetention"] == "1h"
    assert not policy["status"].get("enforcedUntil")
    wait_for(lambda: cleanup_retention(batch, namespace) == "1h", what="1h enforced")
    wait_for(lambda: "RetentionShrunkImmediately" in events(core, namespace), what="a Warning")
