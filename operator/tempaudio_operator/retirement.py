"""A deleted policy's last reconcile: the final cleanup of the audio it promised (a one-shot
CronJob that outlives the policy), and its lifecycle rule taken off the bucket."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from tempaudio_api.errors import PolicyError
from tempaudio_api.policy import Policy

from . import aws, enforcement, kube, tenancy
from .desired import final_cleanup_cronjob, final_run_at
from .desired_aws import lifecycle_rule_id
from .outcome import Event
from .reconcile import Clients, cleanup_account
from .settings import OperatorSettings


def retire(
    body: Mapping[str, Any], settings: OperatorSettings, clients: Clients, now: datetime
) -> list[Event]:
    """What a deleted policy leaves behind, so that its audio is neither orphaned nor
    deleted early: a final cleanup that runs once every promise it made is over. Then the
    lifecycle rule can go with the policy. Raises ``ApiException`` and ``AwsNotReady``
    (kopf retries); returns the Events to post.
    """
    meta = body["metadata"]
    try:
        policy = Policy.from_spec(
            body.get("spec") or {}, name=meta["name"], namespace=meta["namespace"]
        )
    except PolicyError:
        return []  # never reconciled: no CronJob, no rule, no audio promised under it
    if tenancy.refusal(policy, settings.tenancy) is not None:
        return []  # likewise, and its endpoint is not one to call
    status = body.get("status") or {}
    events: list[Event] = []
    if enforcement.parse_history(
        status.get("retentionHistory")
    ):  # the service may have promised audio
        promised = enforcement.enforced_retention(policy, status)
        lag = timedelta(seconds=settings.retention_lag_seconds)
        run_at = final_run_at(now, promised.retention, lag)
        desired = final_cleanup_cronjob(
            promised,
            deleted=now,
            run_at=run_at,
            image=settings.cleanup_image,
            image_pull_policy=settings.cleanup_image_pull_policy,
            service_account_name=cleanup_account(policy, settings, clients),
        )
        try:
            kube.apply_final_cleanup(clients.custom, desired)
        except kube.NameConflict as error:
            # The lifecycle rule, if any, stays: S3 still expires the audio.
            return [Event("Warning", "FinalCleanupNotScheduled", str(error))]
        events.append(
            Event(
                "Normal",
                "FinalCleanupScheduled",
                f"CronJob {desired['metadata']['name']} deletes this policy's audio at"
                f" {enforcement.stamp(run_at)}, once the {promised.retention_text} it was promised is over",
            )
        )
    if settings.manage_aws and policy.writes_lifecycle_rule:
        remove_lifecycle_rule(policy, clients)
    return events


def remove_lifecycle_rule(policy: Policy, clients: Clients) -> bool:
    """Take the policy's safety-net rule off its bucket (other rules stay); True if removed."""
    s3 = clients.aws.s3(policy.region, policy.endpoint_url)
    return aws.ensure_lifecycle_rule(s3, policy.bucket, lifecycle_rule_id(policy), None)
