"""reconcile() and its CronJob, TTL and lifecycle parts, called directly with stub clients."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from kubernetes.client.exceptions import ApiException

from tempaudio_api.policy import Policy
from tempaudio_operator.reconcile import (
    Conditions,
    reconcile,
    reconcile_cronjob,
    reconcile_lifecycle,
    reconcile_ttl,
)
from tempaudio_operator.retirement import retire
from tempaudio_operator.settings import OperatorSettings

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
SPEC = {"retention": "24h", "schedule": "0 * * * *", "storage": {"bucket": "audio"},
        "metadata": {"table": "audio"}}  # fmt: skip


def body(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None) -> Any:
    return {
        "apiVersion": "tempaudio.dev/v1alpha1", "kind": "TempAudioPolicy",
        "metadata": {"name": "audio", "namespace": "ns", "uid": "u-1", "generation": 3},
        "spec": spec or SPEC, "status": status or {},
    }  # fmt: skip


class Custom:
    """The generic object API as apply_cronjob uses it."""

    def __init__(self, existing: dict[str, Any] | None = None, fail: ApiException | None = None):
        self.existing, self.fail, self.applied = existing, fail, []
        self.owned: list[dict[str, Any]] = []

    def get_namespaced_custom_object(self, *args: Any) -> Any:
        if self.existing is None:
            raise ApiException(status=404)
        return self.existing

    def list_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        return {"items": self.owned}

    def patch_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
        if self.fail is not None:
            raise self.fail
        self.applied.append(args[5])
        return {**args[5], "metadata": {**args[5]["metadata"], "resourceVersion": "2"}}


class Core:
    def read_namespaced_service_account(self, name: str, namespace: str) -> Any:
        raise ApiException(status=404)


class Dynamo:
    def __init__(self, status: str = "DISABLED", attribute: str = "ttl") -> None:
        self.description = {"TimeToLiveStatus": status, "AttributeName": attribute}
        self.updates: list[Any] = []

    def describe_time_to_live(self, TableName: str) -> Any:
        return {"TimeToLiveDescription": self.description}

    def describe_table(self, TableName: str) -> Any:  # the seed's keys
        keys = [{"AttributeName": "date", "KeyType": "HASH"},
                {"AttributeName": "audio_id", "KeyType": "RANGE"}]  # fmt: skip
        return {"Table": {"KeySchema": keys}}

    def update_time_to_live(self, **kwargs: Any) -> None:
        self.updates.append(kwargs)


class S3:
    def __init__(self) -> None:
        self.rules: list[Any] | None = None

    def get_bucket_lifecycle_configuration(self, Bucket: str) -> Any:
        if self.rules is None:
            raise ClientError({"Error": {"Code": "NoSuchLifecycleConfiguration"}}, "Get")
        return {"Rules": self.rules}

    def put_bucket_lifecycle_configuration(self, Bucket: str, LifecycleConfiguration: Any) -> None:
        self.rules = LifecycleConfiguration["Rules"]

    def delete_bucket_lifecycle(self, Bucket: str) -> None:
        self.rules = None


class Aws:
    def __init__(self, dynamo: Dynamo, s3: S3) -> None:
        self._dynamo, self._s3 = dynamo, s3

    def dynamodb(self, region: str, endpoint: str | None) -> Dynamo:
        return self._dynamo

    def s3(self, region: str, endpoint: str | None) -> S3:
        return self._s3


class Batch:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete_namespaced_cron_job(self, name: str, namespace: str, **kwargs: Any) -> None:
        self.deleted.append(name)


class Clients:
    def __init__(self, custom: Custom | None = None, dynamo: Dynamo | None = None) -> None:
        self.custom, self.core, self.batch = custom or Custom(), Core(), Batch()
        self.dynamo, self.s3_stub = dynamo or Dynamo(), S3()
        self.aws = Aws(self.dynamo, self.s3_stub)


def policy(**spec: Any) -> Policy:
    return Policy.from_spec({**SPEC, **spec}, name="audio", namespace="ns")


def fresh() -> Conditions:
    return Conditions([], 3, NOW)


def test_reconcile_builds_status_and_events_from_its_parts() -> None:
    clients = Clients()
    outcome = reconcile(body(), OperatorSettings(), clients, NOW)  # type: ignore[arg-type]
    assert {c["type"]: c["status"] for c in outcome.status["conditions"]} == {
        "CronJobReady": "True", "TTLReady": "True", "LifecycleReady": "True", "Ready": "True",
    }  # fmt: skip
    assert outcome.status["enforcedRetention"] == "24h"
    assert [e.reason for e in outcome.events] == ["CronJobCreated", "TTLEnabled"]
    assert clients.dynamo.updates  # TTL enabled
    # Twice is idempotent for the AWS side: nothing more to change.
    clients.dynamo.description = {"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}
    again = reconcile(body(status=outcome.status), OperatorSettings(), clients, NOW)  # type: ignore[arg-type]
    assert "TTLEnabled" not in [e.reason for e in again.events]


def test_reconcile_defers_a_shrink_through_its_status() -> None:
    first = reconcile(body(), OperatorSettings(), Clients(), NOW)  # type: ignore[arg-type]
    clients = Clients()
    later = NOW + timedelta(hours=1)
    shrunk = reconcile(
        body({**SPEC, "retention": "1h"}, first.status),
        OperatorSettings(),
        clients,
        later,  # type: ignore[arg-type]
    )
    assert shrunk.status["enforcedRetention"] == "1d"
    args = clients.custom.applied[0]["spec"]["jobTemplate"]["spec"]["template"]["spec"][
        "containers"
    ][0]["args"]
    assert args[args.index("--retention") + 1] == "1d"
    assert "RetentionShrinkDeferred" in [e.reason for e in shrunk.events]


@pytest.mark.parametrize(
    ("failure", "reason", "invalid", "blocked"),
    [
        (ApiException(status=422, reason="Invalid"), "InvalidSpec", True, False),
        (ApiException(status=500, reason="boom"), "ApplyFailed", False, True),
    ],
)
def test_reconcile_cronjob_turns_api_refusals_into_conditions(
    failure: ApiException, reason: str, invalid: bool, blocked: bool
) -> None:
    conditions = fresh()
    stopped = reconcile_cronjob(
        policy(),
        body(),
        OperatorSettings(),
        Clients(Custom(fail=failure)),
        conditions,  # type: ignore[arg-type]
    )
    assert not isinstance(stopped, tuple)
    assert (stopped.invalid is not None, stopped.blocked is not None) == (invalid, blocked)
    ready = next(c for c in stopped.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", reason)


def test_reconcile_cronjob_leaves_a_foreign_cronjob_alone() -> None:
    foreign = {"metadata": {"name": "audio-cleanup", "resourceVersion": "1"}}
    custom = Custom(existing=foreign)
    stopped = reconcile_cronjob(policy(), body(), OperatorSettings(), Clients(custom), fresh())  # type: ignore[arg-type]
    assert not isinstance(stopped, tuple)
    assert stopped.blocked is not None
    assert custom.applied == []


def test_reconcile_ttl_reports_an_attribute_mismatch_without_changing_it() -> None:
    clients, conditions = Clients(dynamo=Dynamo("ENABLED", "expires")), fresh()
    assert reconcile_ttl(policy(), clients, conditions) == []  # type: ignore[arg-type]
    ttl = next(c for c in conditions.items if c["type"] == "TTLReady")
    assert (ttl["status"], ttl["reason"]) == ("False", "TTLAttributeMismatch")
    assert conditions.not_ready is not None
    assert clients.dynamo.updates == []


def test_reconcile_lifecycle_sets_then_removes_the_rule() -> None:
    clients = Clients()
    events = reconcile_lifecycle(policy(lifecycleSafetyNet=True), clients, fresh())  # type: ignore[arg-type]
    assert [e.reason for e in events] == ["LifecycleRuleUpdated"]
    assert clients.s3_stub.rules is not None
    assert clients.s3_stub.rules[0]["Expiration"] == {"Days": 2}
    conditions = fresh()
    reconcile_lifecycle(policy(), clients, conditions)  # type: ignore[arg-type]
    assert clients.s3_stub.rules is None
    lifecycle = next(c for c in conditions.items if c["type"] == "LifecycleReady")
    assert lifecycle["reason"] == "NotRequested"


def test_a_deleted_policy_that_promised_nothing_leaves_nothing() -> None:
    clients = Clients()
    assert retire(body(), OperatorSettings(), clients, NOW) == []  # type: ignore[arg-type]
    assert clients.custom.applied == []


def test_a_deleted_policy_leaves_a_final_cleanup_for_its_longest_promise() -> None:
    clients = Clients()
    clients.s3_stub.rules = [{"ID": "tempaudio-ns-audio"}, {"ID": "logs"}]
    status = {"retentionHistory": [{"retention": "1h", "since": "2026-06-15T11:00:00Z"}],
              "enforcedRetention": "1d"}  # fmt: skip
    spec = {**SPEC, "retention": "1h", "lifecycleSafetyNet": True}
    events = retire(body(spec, status), OperatorSettings(), clients, NOW)  # type: ignore[arg-type]
    assert [e.reason for e in events] == ["FinalCleanupScheduled"]
    (final,) = clients.custom.applied
    assert final["metadata"]["name"] == "audio-final"
    args = final["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    # A shrink was still deferred: the audio was promised a day, not an hour.
    assert args[args.index("--retention") + 1] == "1d"
    assert final["metadata"]["annotations"]["tempaudio.dev/run-after"] == "2026-06-16T12:12:00Z"
    assert [r["ID"] for r in clients.s3_stub.rules or []] == ["logs"]


def test_a_final_cleanup_that_cannot_be_scheduled_keeps_the_lifecycle_rule() -> None:
    taken = {"metadata": {"name": "audio-final", "labels": {}}}
    clients = Clients(Custom(existing=taken))
    clients.s3_stub.rules = [{"ID": "tempaudio-ns-audio"}]
    status = {"retentionHistory": [{"retention": "1d", "since": "2026-06-15T11:00:00Z"}]}
    spec = {**SPEC, "lifecycleSafetyNet": True}
    events = retire(body(spec, status), OperatorSettings(), clients, NOW)  # type: ignore[arg-type]
    assert [e.reason for e in events] == ["FinalCleanupNotScheduled"]
    assert clients.s3_stub.rules == [{"ID": "tempaudio-ns-audio"}]


def test_a_cronjob_the_policy_owns_under_an_older_name_is_deleted() -> None:
    """Before names got a hash, a long name was cut: after an upgrade both CronJobs ran."""
    owner = [{"uid": "u-1", "controller": True}]
    clients = Clients()
    clients.custom.owned = [
        {"metadata": {"name": "audio-cleanup", "ownerReferences": owner}},
        {"metadata": {"name": "audio-cleanu", "ownerReferences": owner}},
        {
            "metadata": {
                "name": "someone-elses",
                "ownerReferences": [{"uid": "x", "controller": True}],
            }
        },
    ]
    reconcile_cronjob(policy(), body(), OperatorSettings(), clients, fresh())  # type: ignore[arg-type]
    assert clients.batch.deleted == ["audio-cleanu"]
