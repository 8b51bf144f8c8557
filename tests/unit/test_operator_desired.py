from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tempaudio_api.policy import Policy
from tempaudio_operator.desired import (
    POLICY_LABEL,
    RETIRED_LABEL,
    adopted_managed_fields,
    cleanup_args,
    cleanup_cronjob,
    cronjob_drift,
    cronjob_name,
    final_cleanup_cronjob,
    final_cleanup_done,
    final_run_at,
    inherited_period,
    is_subset,
)
from tempaudio_operator.desired_aws import (
    AUDIO_TAG,
    lifecycle_rule,
    merged_lifecycle_rules,
    ttl_in_place,
)
from tempaudio_operator.enforcement import Period
from tempaudio_operator.status import (
    job_outcome,
    last_cleanup,
    parse_cleanup_summary,
    set_condition,
)

SPEC: dict[str, Any] = {
    "retention": "24h",
    "schedule": "0 * * * *",
    "storage": {"bucket": "my-audio", "prefix": "tts/", "region": "eu-west-1"},
    "metadata": {"table": "audio"},
}


def policy(**spec: Any) -> Policy:
    return Policy.from_spec({**SPEC, **spec}, name="team-a", namespace="apps")


def test_cronjob_runs_cleanup_with_the_policy_arguments() -> None:
    cronjob = cleanup_cronjob(policy(), image="img:1")
    spec = cronjob["spec"]
    assert cronjob["metadata"] == {
        "name": "team-a-cleanup",
        "namespace": "apps",
        "labels": {
            "app.kubernetes.io/name": "tempaudio",
            "app.kubernetes.io/component": "cleanup",
            "app.kubernetes.io/managed-by": "tempaudio-operator",
            "tempaudio.dev/policy": "team-a",
        },
    }
    assert (spec["schedule"], spec["timeZone"], spec["suspend"]) == ("0 * * * *", "Etc/UTC", False)
    assert spec["concurrencyPolicy"] == "Forbid"
    container = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "img:1"
    assert container["command"] == ["tempaudio-cleanup"]
    assert container["args"] == [
        "--bucket", "my-audio", "--prefix", "tts/", "--retention", "24h",
        "--region", "eu-west-1", "--log-format", "json",
    ]  # fmt: skip
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["jobTemplate"]["metadata"]["labels"]["tempaudio.dev/policy"] == "team-a"


def test_overrides_reach_the_pod() -> None:
    cronjob = cleanup_cronjob(
        policy(
            dryRun=True,
            suspend=True,
            storage={**SPEC["storage"], "endpointURL": "http://minio:9000"},
            jobTemplate={
                "image": "custom:2",
                "serviceAccountName": "cleanup",
                "nodeSelector": {"pool": "batch"},
                "tolerations": [{"key": "batch", "operator": "Exists"}],
                "resources": {"limits": {"memory": "128Mi"}},
                "backoffLimit": 0,
                "successfulJobsHistoryLimit": 1,
            },
        ),
        image="img:1",
        service_account_name="default-cleanup",
    )
    spec = cronjob["spec"]
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert spec["suspend"] is True
    assert container["image"] == "custom:2"
    assert container["args"][-3:] == ["--endpoint-url", "http://minio:9000", "--dry-run"]
    assert container["resources"] == {"limits": {"memory": "128Mi"}}
    assert pod["serviceAccountName"] == "cleanup"
    assert pod["nodeSelector"] == {"pool": "batch"}
    assert pod["tolerations"] == [{"key": "batch", "operator": "Exists"}]
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0
    assert spec["successfulJobsHistoryLimit"] == 1


def test_cronjob_names_fit_the_52_character_limit_and_stay_unique() -> None:
    assert cronjob_name("audio") == "audio-cleanup"
    assert cronjob_name("x" * 44) == "x" * 44 + "-cleanup"
    long_a, long_b = "team-a-" + "x" * 50 + "-a", "team-a-" + "x" * 50 + "-b"
    assert len(cronjob_name(long_a)) == len(cronjob_name(long_b)) == 52
    # Cut to 44 characters, both names shared one CronJob whose owner flipped every round.
    assert cronjob_name(long_a) != cronjob_name(long_b)
    assert cronjob_name(long_a).startswith("team-a-xxx")
    assert cronjob_name(long_a) == cronjob_name(long_a)


def test_cleanup_args_dry_run() -> None:
    assert "--dry-run" in cleanup_args(policy(dryRun=True))
    assert "--dry-run" not in cleanup_args(policy())


def test_server_defaults_are_not_drift_but_edits_are() -> None:
    desired = cleanup_cronjob(policy(), image="img:1")
    actual = {
        **desired,
        "spec": {
            **desired["spec"],
            "extraDefault": True,
            "jobTemplate": desired["spec"]["jobTemplate"],
        },
    }
    assert not cronjob_drift(desired, actual)
    edited = {**actual, "spec": {**actual["spec"], "schedule": "* * * * *"}}
    assert cronjob_drift(desired, edited)
    relabelled = {**actual, "metadata": {**actual["metadata"], "labels": {}}}
    assert cronjob_drift(desired, relabelled)


@pytest.mark.parametrize(
    ("desired", "actual", "subset"),
    [
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": 1}, {"a": 2}, False),
        ({"a": [1, 2]}, {"a": [1, 2]}, True),
        ({"a": [1]}, {"a": [1, 2]}, False),
        ({"a": [{"x": 1}]}, {"a": [{"x": 1, "y": 2}]}, True),
        ({"a": {}}, {}, False),
    ],
)
def test_is_subset(desired: Any, actual: Any, subset: bool) -> None:
    assert is_subset(desired, actual) is subset


@pytest.mark.parametrize(
    ("description", "in_place"),
    [
        ({"TimeToLiveStatus": "ENABLED", "AttributeName": "ttl"}, True),
        ({"TimeToLiveStatus": "ENABLING", "AttributeName": "ttl"}, True),
        ({"TimeToLiveStatus": "ENABLED", "AttributeName": "expires"}, False),
        ({"TimeToLiveStatus": "DISABLED"}, False),
        ({}, False),
    ],
)
def test_ttl_in_place(description: dict[str, str], in_place: bool) -> None:
    assert ttl_in_place(description, "ttl") is in_place


def test_lifecycle_rule_merges_with_other_rules() -> None:
    rule = lifecycle_rule(policy())
    assert rule["Expiration"] == {"Days": 2}
    assert rule["Filter"] == {"And": {"Prefix": "tts/", "Tags": [AUDIO_TAG]}}
    other = {
        "ID": "logs",
        "Filter": {"Prefix": "logs/"},
        "Status": "Enabled",
        "Expiration": {"Days": 30},
    }
    merged = merged_lifecycle_rules([other], rule["ID"], rule)
    assert merged == [other, rule]
    assert merged_lifecycle_rules(merged, rule["ID"], rule) is None  # idempotent
    changed = lifecycle_rule(policy(retention="3d"))
    assert merged_lifecycle_rules(merged, rule["ID"], changed) == [other, changed]
    assert merged_lifecycle_rules(merged, rule["ID"], None) == [other]
    assert merged_lifecycle_rules([other], rule["ID"], None) is None


def test_conditions_keep_transition_time_while_status_holds() -> None:
    t1, t2 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    first = set_condition(
        [], type_="Ready", status=True, reason="R", message="m", now=t1, generation=1
    )
    same = set_condition(
        first, type_="Ready", status=True, reason="R2", message="m2", now=t2, generation=2
    )
    flipped = set_condition(
        same, type_="Ready", status=False, reason="X", message="x", now=t2, generation=2
    )
    assert first[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert same[0]["observedGeneration"] == 2
    assert flipped[0]["lastTransitionTime"] == "2026-01-02T00:00:00Z"
    assert len(flipped) == 1


def test_summary_and_job_outcome() -> None:
    line = '{"event": "tempaudio-cleanup-summary", "scanned": 5, "deleted": 3, "bytes": 9, "errors": 0, "dry_run": false}'
    assert parse_cleanup_summary(f"noise\n{line}\n")["deleted"] == 3  # type: ignore[index]
    assert parse_cleanup_summary("not json") is None
    running = {"metadata": {"name": "j"}, "status": {"active": 1}}
    assert job_outcome(running) is None
    done = {
        "metadata": {"name": "j"},
        "status": {"completionTime": "2026-01-01T00:00:00Z",
                   "conditions": [{"type": "Complete", "status": "True"}]},
    }  # fmt: skip
    outcome = job_outcome(done)
    assert outcome == {"jobName": "j", "completionTime": "2026-01-01T00:00:00Z", "succeeded": True}
    result = last_cleanup(outcome, parse_cleanup_summary(line))
    assert (result["deleted"], result["scanned"], result["dryRun"]) == (3, 5, False)
    failed = {"metadata": {"name": "k"}, "status": {"conditions": [
        {"type": "Failed", "status": "True", "lastTransitionTime": "2026-01-01T01:00:00Z"}]}}  # fmt: skip
    assert job_outcome(failed) == {
        "jobName": "k",
        "completionTime": "2026-01-01T01:00:00Z",
        "succeeded": False,
    }


# --- the final cleanup of a deleted policy ------------------------------------------------

DELETED = datetime(2026, 6, 15, 12, 0, 30, tzinfo=UTC)


@given(
    deleted=st.integers(0, 20 * 365 * 86400).map(
        lambda s: datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=s, microseconds=s % 997)
    ),
    retention=st.integers(60, 365 * 86400).map(lambda s: timedelta(seconds=s)),
    lag=st.integers(0, 3600).map(lambda s: timedelta(seconds=s)),
)
def test_the_final_run_is_never_before_a_promise_is_over(
    deleted: datetime, retention: timedelta, lag: timedelta
) -> None:
    run_at = final_run_at(deleted, retention, lag)
    assert run_at >= deleted + lag + retention + timedelta(minutes=1)
    assert run_at - (deleted + lag + retention) <= timedelta(minutes=3)
    assert (run_at.second, run_at.microsecond) == (0, 0)


def test_the_final_cleanup_outlives_its_policy_and_runs_once_at_its_time() -> None:
    run_at = final_run_at(DELETED, timedelta(hours=24), timedelta(minutes=10))
    cronjob = final_cleanup_cronjob(policy(), deleted=DELETED, run_at=run_at, image="img:1")
    meta = cronjob["metadata"]
    assert meta["name"] == "team-a-final"
    assert "ownerReferences" not in meta
    # Not the policy's label: the policy's CronJob watch and Job recorder leave it alone.
    assert POLICY_LABEL not in meta["labels"]
    assert meta["labels"][RETIRED_LABEL] == "team-a"
    assert meta["annotations"] == {
        "tempaudio.dev/promised-retention": "1d",
        "tempaudio.dev/deleted-at": "2026-06-15T12:00:30Z",
        "tempaudio.dev/run-after": "2026-06-16T12:12:00Z",
    }
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["timeZone"]) == ("12 12 16 6 *", "Etc/UTC")
    labels = spec["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    assert POLICY_LABEL not in labels
    args = spec["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--retention") + 1] == "24h"


def test_a_final_cleanup_is_done_after_a_successful_run_past_its_time() -> None:
    run_at = final_run_at(DELETED, timedelta(hours=1), timedelta(0))
    cronjob = final_cleanup_cronjob(policy(), deleted=DELETED, run_at=run_at, image="img:1")
    assert not final_cleanup_done(cronjob)
    early = {**cronjob, "status": {"lastSuccessfulTime": "2026-06-15T12:30:00Z"}}
    assert not final_cleanup_done(early)
    late = {**cronjob, "status": {"lastSuccessfulTime": "2026-06-15T13:05:00Z"}}
    assert final_cleanup_done(late)


def test_a_recreated_policy_inherits_the_promise_of_its_namesake() -> None:
    run_at = final_run_at(DELETED, timedelta(days=2), timedelta(0))
    cronjob = final_cleanup_cronjob(
        policy(retention="2d"), deleted=DELETED, run_at=run_at, image="img:1"
    )
    assert inherited_period(cronjob) == Period(timedelta(days=2), DELETED, DELETED)
    assert inherited_period(None) is None
    assert (
        inherited_period({"metadata": {"annotations": {"tempaudio.dev/deleted-at": "x"}}}) is None
    )


def test_jobs_get_credentials_without_irsa() -> None:
    """Static keys in a Secret (MinIO, Ceph, no IRSA): the CronJob had no way to pass them."""
    env = [{"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {"name": "k", "key": "id"}}}]
    env_from = [{"secretRef": {"name": "minio-keys"}}]
    cronjob = cleanup_cronjob(policy(jobTemplate={"env": env, "envFrom": env_from}), image="i:1")
    container = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["env"][1:] == env
    assert container["env"][0]["name"] == "TEMPAUDIO_TERMINATION_LOG"
    assert container["envFrom"] == env_from
    assert (
        "envFrom"
        not in cleanup_cronjob(policy(), image="i:1")["spec"]["jobTemplate"]["spec"]["template"][
            "spec"
        ]["containers"][0]
    )


def test_fields_set_before_server_side_apply_are_handed_to_the_operator() -> None:
    entries = [
        {"manager": "OpenAPI-Generator", "operation": "Update", "apiVersion": "batch/v1",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:schedule": {}, "f:suspend": {}}}},
        {"manager": "tempaudio-operator", "operation": "Apply", "apiVersion": "batch/v1",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:schedule": {}, "f:timeZone": {}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
         "apiVersion": "batch/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}},
    ]  # fmt: skip
    adopted = adopted_managed_fields(entries, "tempaudio-operator")
    assert adopted is not None
    assert [(e["manager"], e["operation"]) for e in adopted] == [
        ("kube-controller-manager", "Update"), ("tempaudio-operator", "Apply"),
    ]  # fmt: skip
    assert adopted[1]["fieldsV1"] == {
        "f:spec": {"f:schedule": {}, "f:timeZone": {}, "f:suspend": {}}
    }
    # Nothing left to hand over: no write.
    assert adopted_managed_fields(adopted, "tempaudio-operator") is None
