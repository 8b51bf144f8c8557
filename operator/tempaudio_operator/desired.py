"""Desired state as plain dicts: the cleanup CronJob and the final cleanup a deleted policy
leaves (pure). The TTL and lifecycle rule are desired_aws.py's, the status status.py's."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tempaudio_api.durations import format_duration, parse_retention
from tempaudio_api.errors import PolicyError
from tempaudio_api.policy import Policy

from .enforcement import Period, parse_stamp, stamp

POLICY_LABEL = "tempaudio.dev/policy"
MANAGED_BY = "tempaudio-operator"
SUMMARY_EVENT = "tempaudio-cleanup-summary"
CLEANUP_CONTAINER = "cleanup"
# The final cleanup of a deleted policy: which policy, what its audio was promised, when
# it was deleted, and the moment after which its one run counts.
RETIRED_LABEL = "tempaudio.dev/retired-policy"
PROMISED_RETENTION = "tempaudio.dev/promised-retention"
DELETED_AT = "tempaudio.dev/deleted-at"
RUN_AFTER = "tempaudio.dev/run-after"
# CronJob names are limited to 52 characters (the controller appends a suffix to Job names).
_MAX_CRONJOB_NAME = 52


def cronjob_name(policy_name: str, suffix: str = "-cleanup") -> str:
    """``<policy>-cleanup``; a name too long for that is cut and gets a hash of the whole
    name, so two long names sharing a prefix never share a CronJob."""
    if len(policy_name) + len(suffix) <= _MAX_CRONJOB_NAME:
        return policy_name + suffix
    digest = hashlib.sha256(policy_name.encode()).hexdigest()[:8]
    head = policy_name[: _MAX_CRONJOB_NAME - len(suffix) - len(digest) - 1].rstrip("-.")
    return f"{head}-{digest}{suffix}"


def labels(policy: Policy) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "tempaudio",
        "app.kubernetes.io/component": "cleanup",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        POLICY_LABEL: policy.name,
    }


def cleanup_args(policy: Policy) -> list[str]:
    """The tempaudio-cleanup command line for a policy."""
    args = [
        "--bucket",
        policy.bucket,
        "--prefix",
        policy.prefix,
        "--retention",
        policy.retention_text,
        "--region",
        policy.region,
        "--log-format",
        "json",
    ]
    if policy.endpoint_url:
        args += ["--endpoint-url", policy.endpoint_url]
    if policy.dry_run:
        args.append("--dry-run")
    return args


def cleanup_cronjob(
    policy: Policy,
    *,
    image: str,
    image_pull_policy: str = "IfNotPresent",
    service_account_name: str | None = None,
) -> dict[str, Any]:
    """The CronJob that runs tempaudio-cleanup on the policy's schedule."""
    job = policy.job
    pod_labels = labels(policy)
    container: dict[str, Any] = {
        "name": CLEANUP_CONTAINER,
        "image": job.image or image,
        "imagePullPolicy": job.image_pull_policy or image_pull_policy,
        "command": ["tempaudio-cleanup"],
        "args": cleanup_args(policy),
        "env": [
            {"name": "TEMPAUDIO_TERMINATION_LOG", "value": "/dev/termination-log"},
            *(dict(e) for e in job.env),
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if job.env_from:
        # Credentials and configuration without IRSA, e.g. the chart's aws.existingSecret.
        container["envFrom"] = [dict(e) for e in job.env_from]
    if job.resources:
        container["resources"] = dict(job.resources)
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    }
    # Always set, and the deprecated twin too: the API server copies serviceAccountName into
    # serviceAccount and defaults one from the other, so a name once set would never go.
    account = job.service_account_name or service_account_name or "default"
    pod_spec["serviceAccountName"] = pod_spec["serviceAccount"] = account
    if job.node_selector:
        pod_spec["nodeSelector"] = dict(job.node_selector)
    if job.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in job.tolerations]
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": cronjob_name(policy.name),
            "namespace": policy.namespace,
            "labels": pod_labels,
        },
        "spec": {
            "schedule": policy.schedule,
            "timeZone": policy.time_zone,
            "suspend": policy.suspend,
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 300,
            "successfulJobsHistoryLimit": job.successful_jobs_history_limit,
            "failedJobsHistoryLimit": job.failed_jobs_history_limit,
            "jobTemplate": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "backoffLimit": job.backoff_limit,
                    "activeDeadlineSeconds": job.active_deadline_seconds,
                    "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
                },
            },
        },
    }


# --- the final cleanup of a deleted policy --------------------------------------------


def final_cleanup_name(policy_name: str) -> str:
    return cronjob_name(policy_name, "-final")


def final_run_at(deleted: datetime, retention: timedelta, lag: timedelta) -> datetime:
    """When every promise the deleted policy made has run out: audio created just before
    the deletion (or by a service that learned it ``lag`` late) is promised ``retention``,
    plus a minute, rounded up to a whole minute (the schedule's unit)."""
    moment = deleted + lag + retention + timedelta(minutes=1)
    return moment.replace(second=0, microsecond=0) + timedelta(minutes=1)


def final_cleanup_cronjob(
    policy: Policy,
    *,
    deleted: datetime,
    run_at: datetime,
    image: str,
    image_pull_policy: str = "IfNotPresent",
    service_account_name: str | None = None,
) -> dict[str, Any]:
    """The cleanup a deleted policy leaves behind: one run once its last promise is over.

    Owned by nobody, so it outlives the policy; ``policy`` carries the retention enforced at
    the deletion. It runs the same program with the same arguments, so it deletes what is
    older than that retention and nothing younger, whenever it runs. The operator deletes
    it after a successful run past ``run_at``, or when a policy of the same name returns
    (which then inherits the promise, see ``inherited_period``).
    """
    cronjob = cleanup_cronjob(
        policy,
        image=image,
        image_pull_policy=image_pull_policy,
        service_account_name=service_account_name,
    )
    final_labels = {k: v for k, v in labels(policy).items() if k != POLICY_LABEL}
    final_labels[RETIRED_LABEL] = policy.name
    cronjob["metadata"] = {
        "name": final_cleanup_name(policy.name),
        "namespace": policy.namespace,
        "labels": final_labels,
        "annotations": {
            PROMISED_RETENTION: format_duration(policy.retention),
            DELETED_AT: stamp(deleted),
            RUN_AFTER: stamp(run_at),
        },
    }
    spec = cronjob["spec"]
    at = run_at.astimezone(UTC)
    spec.update(
        schedule=f"{at.minute} {at.hour} {at.day} {at.month} *",
        timeZone="Etc/UTC",
        suspend=False,
        # A controller that was down at that minute still starts it within a day.
        startingDeadlineSeconds=86400,
        successfulJobsHistoryLimit=1,
        failedJobsHistoryLimit=1,
    )
    template = spec["jobTemplate"]
    template["metadata"]["labels"] = final_labels
    template["spec"]["template"]["metadata"]["labels"] = final_labels
    return cronjob


def final_cleanup_done(cronjob: Mapping[str, Any]) -> bool:
    """A run succeeded at or after the moment every promise was over."""
    succeeded = (cronjob.get("status") or {}).get("lastSuccessfulTime")
    run_after = ((cronjob.get("metadata") or {}).get("annotations") or {}).get(RUN_AFTER)
    if not succeeded or not run_after:
        return False
    try:
        return parse_stamp(str(succeeded)) >= parse_stamp(str(run_after))
    except ValueError:
        return False


def inherited_period(cronjob: Mapping[str, Any] | None) -> Period | None:
    """What a deleted policy of the same name promised, as a period that ended at its
    deletion: a policy recreated under that name keeps enforcing it while it matters."""
    annotations = ((cronjob or {}).get("metadata") or {}).get("annotations") or {}
    try:
        deleted = parse_stamp(str(annotations[DELETED_AT]))
        retention = parse_retention(str(annotations[PROMISED_RETENTION]))
    except (KeyError, ValueError, PolicyError):
        return None
    return Period(retention, since=deleted, ended=deleted)


def _merged_fields(into: dict[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    """Union of two managedFields field sets (FieldsV1: nested {"f:name": {...}})."""
    for key, value in more.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merged_fields(into[key], value)
        else:
            into[key] = json.loads(json.dumps(value))
    return into


def adopted_managed_fields(
    entries: Sequence[Mapping[str, Any]], manager: str
) -> list[dict[str, Any]] | None:
    """managedFields with every Update entry on the object itself handed to ``manager``'s
    Apply entry, as client-go's csaupgrade does; None when there is none to hand over.

    Fields a create or merge patch set before the operator used server-side apply (or that
    an edit added) belong to those managers, so an apply that no longer sets them would
    never remove them. Once they are the operator's, it does. Status entries stay.
    """
    legacy = [e for e in entries if e.get("operation") == "Update" and not e.get("subresource")]
    if not legacy:
        return None
    ours = [
        e
        for e in entries
        if e.get("manager") == manager
        and e.get("operation") == "Apply"
        and not e.get("subresource")
    ]
    rest = [dict(e) for e in entries if e not in legacy and e not in ours]
    fields: dict[str, Any] = {}
    for entry in [*ours, *legacy]:
        _merged_fields(fields, entry.get("fieldsV1") or {})
    first = (ours or legacy)[0]
    adopted = {
        "manager": manager,
        "operation": "Apply",
        "apiVersion": first.get("apiVersion"),
        "time": first.get("time"),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
    }
    return [*rest, adopted]


def is_subset(desired: Any, actual: Any) -> bool:
    """True when every field in ``desired`` has the same value in ``actual``.

    The API server fills in defaults (dnsPolicy, terminationMessagePath, ...); those are
    not drift. Lists must match item by item.
    """
    if isinstance(desired, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and is_subset(value, actual[key]) for key, value in desired.items()
        )
    if isinstance(desired, list):
        return (
            isinstance(actual, list)
            and len(desired) == len(actual)
            and all(is_subset(d, a) for d, a in zip(desired, actual, strict=True))
        )
    return bool(desired == actual)


def cronjob_drift(desired: Mapping[str, Any], actual: Mapping[str, Any]) -> bool:
    return not (
        is_subset(desired["spec"], actual.get("spec", {}))
        and is_subset(desired["metadata"]["labels"], actual.get("metadata", {}).get("labels", {}))
    )
