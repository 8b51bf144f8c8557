"""One level-based reconcile of a TempAudioPolicy: parse -> build -> apply -> status.

Used by the kopf handlers (which apply the status through kopf's patch) and by the
resync loop and the owned-object watches (which patch the status themselves).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, cast

import kopf
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tempaudio_api.durations import format_duration
from tempaudio_api.errors import PolicyError
from tempaudio_api.policy import Policy

from . import aws, enforcement, kube, tenancy
from .desired import (
    RETIRED_LABEL,
    cleanup_cronjob,
    final_cleanup_name,
    inherited_period,
)
from .desired_aws import lifecycle_rule, lifecycle_rule_id
from .lexicons import reconcile_lexicons
from .outcome import Conditions, Event, Outcome, stopped
from .settings import OperatorSettings
from .voices import reconcile_voices

logger = logging.getLogger(__name__)


class Clients:
    """API clients, made on first use (after kopf has logged in)."""

    def __init__(self) -> None:
        self.aws = aws.AwsClients()

    @cached_property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api()

    @cached_property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi()

    @cached_property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api()


def cleanup_account(policy: Policy, settings: OperatorSettings, clients: Clients) -> str | None:
    """The default cleanup account where it exists (the chart creates it in the release and
    the watched namespaces); elsewhere a pod naming it would be refused while the policy
    said Ready, so the Jobs run as "default" unless the policy names an account."""
    account = settings.cleanup_service_account
    if account and not kube.service_account_exists(clients.core, policy.namespace, account):
        return None
    return account


def ensure_cronjob(
    policy: Policy, body: Mapping[str, Any], settings: OperatorSettings, clients: Clients
) -> tuple[str, str]:
    """The policy's cleanup CronJob, owned by the policy: (name, created|updated|unchanged)."""
    desired = cleanup_cronjob(
        policy,
        image=settings.cleanup_image,
        image_pull_policy=settings.cleanup_image_pull_policy,
        service_account_name=cleanup_account(policy, settings, clients),
    )
    kopf.adopt(desired, owner=as_body(body))
    uid = body["metadata"]["uid"]
    name = desired["metadata"]["name"]
    action = kube.apply_cronjob(clients.custom, desired, uid)
    # A CronJob this policy owns under another name (one cut to fit before names got a
    # hash) would go on running beside the new one until the policy is deleted.
    for stale in kube.owned_cronjobs(clients.custom, policy.namespace, policy.name, uid):
        if stale != name:
            kube.delete_cronjob(clients.batch, policy.namespace, stale)
            logger.info(
                "policy %s/%s: deleted its old CronJob %s", policy.namespace, policy.name, stale
            )
    return name, action


def reconcile(
    body: Mapping[str, Any],
    settings: OperatorSettings,
    clients: Clients,
    now: datetime | None = None,
) -> Outcome:
    meta = body["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    conditions = Conditions.of(body, now)
    try:
        policy = Policy.from_spec(body.get("spec") or {}, name=name, namespace=namespace)
    except PolicyError as error:
        conditions.set("Ready", False, "InvalidSpec", str(error))
        status = {"observedGeneration": meta.get("generation"), "conditions": conditions.items}
        return Outcome(status=status, events=conditions.events, invalid=error)

    refused = tenancy.refusal(policy, settings.tenancy)
    if refused is not None:
        invalid = PolicyError(refused)
        return stopped(conditions, meta, "NotAllowed", refused, invalid=invalid)
    # A policy recreated under the name of a deleted one inherits what that one promised.
    status = body.get("status") or {}
    final = (
        None
        if enforcement.parse_history(status.get("retentionHistory"))
        else _final_cleanup(policy, clients)
    )
    # The cleanup and the safety net run with the retention in force for promises made.
    policy, retention_status, retention_events = enforced(
        policy, status, settings, conditions.now, inherited=inherited_period(final)
    )
    # Valid and allowed: tempaudio-service may serve this generation, with the retention
    # just recorded (it never signs one the cleanup does not enforce yet).
    retention_status["acceptedGeneration"] = meta.get("generation")
    events: list[Event] = list(retention_events)
    applied = reconcile_cronjob(policy, body, settings, clients, conditions)
    if isinstance(applied, Outcome):
        return applied
    cronjob, cronjob_events = applied
    events += cronjob_events
    if final is not None:
        # Its promise now lives in this policy's history, which the CronJob enforces.
        kube.delete_cronjob(clients.batch, policy.namespace, final["metadata"]["name"])
    not_ready: aws.AwsNotReady | None = None
    if not settings.manage_aws:
        conditions.set("TTLReady", True, "NotManaged", "the operator does not manage AWS")
        conditions.set("LifecycleReady", True, "NotManaged", "the operator does not manage AWS")
    elif policy.dry_run:
        conditions.set("TTLReady", True, "DryRun", "dryRun: TTL is left as it is")
        conditions.set("LifecycleReady", True, "DryRun", "dryRun: no lifecycle rule is written")
    else:
        events += reconcile_ttl(policy, clients, conditions)
        events += reconcile_lifecycle(policy, clients, conditions)
        not_ready = conditions.not_ready
    reconcile_lexicons(policy, clients.custom, conditions)  # LexiconsReady
    reconcile_voices(policy, clients.custom, conditions)  # VoicesReady
    failing = [c for c in conditions.items if c["type"] != "Ready" and c["status"] != "True"]
    if failing:
        conditions.set("Ready", False, failing[0]["reason"], failing[0]["message"])
    else:
        conditions.set(
            "Ready", True, "Reconciled", "cleanup CronJob, TTL and lifecycle match the policy"
        )
    status = {
        "observedGeneration": meta.get("generation"),
        "cronJobName": cronjob,
        "conditions": conditions.items,
        **retention_status,
    }
    return Outcome(status=status, events=events + conditions.events, not_ready=not_ready)


def reconcile_cronjob(
    policy: Policy,
    body: Mapping[str, Any],
    settings: OperatorSettings,
    clients: Clients,
    conditions: Conditions,
) -> tuple[str, list[Event]] | Outcome:
    """Apply the CronJob: (its name, Events), or the Outcome that stops the reconcile."""
    meta = body["metadata"]
    try:
        cronjob, action = ensure_cronjob(policy, body, settings, clients)
    except kube.NameConflict as error:
        return stopped(conditions, meta, "NameConflict", str(error), blocked=True)
    except ApiException as error:
        if kube.namespace_terminating(error):
            # The namespace is going, and the policy with it: nothing to report or retry.
            return Outcome(status={}, terminating=True)
        message = kube.api_error_message(error)
        if error.status in {400, 422}:  # the API refused what the spec asks for
            invalid = PolicyError(f"the CronJob API refused the spec: {message}")
            return stopped(conditions, meta, "InvalidSpec", str(invalid), invalid=invalid)
        return stopped(conditions, meta, "ApplyFailed", message, blocked=True)
    conditions.set("CronJobReady", True, "Reconciled", f"CronJob {cronjob} matches the policy")
    if action == "unchanged":
        return cronjob, []
    return cronjob, [
        Event(
            "Normal",
            f"CronJob{action.capitalize()}",
            f"{action} CronJob {cronjob}"
            f" (schedule {policy.schedule!r}, retention {policy.retention_text})",
        )
    ]


def reconcile_ttl(policy: Policy, clients: Clients, conditions: Conditions) -> list[Event]:
    """DynamoDB TTL on the policy's attribute; sets TTLReady."""
    try:
        dynamodb = clients.aws.dynamodb(policy.region, policy.dynamodb_endpoint_url)
        changed = aws.ensure_ttl(dynamodb, policy.table, policy.ttl_attribute)
        aws.check_key_schema(dynamodb, policy.table, policy.key_schema)
    except aws.AwsNotReady as error:
        conditions.set("TTLReady", False, error.reason, error.message, not_ready=error)
        return []
    where = f"{policy.table}.{policy.ttl_attribute}"
    conditions.set("TTLReady", True, "Enabled", f"TTL on {where}")
    return [Event("Normal", "TTLEnabled", f"enabled TTL on {where}")] if changed else []


def reconcile_lifecycle(policy: Policy, clients: Clients, conditions: Conditions) -> list[Event]:
    """The safety-net rule set, or removed when not wanted; sets LifecycleReady."""
    rule = lifecycle_rule(policy) if policy.writes_lifecycle_rule else None
    try:
        s3 = clients.aws.s3(policy.region, policy.endpoint_url)
        changed = aws.ensure_lifecycle_rule(s3, policy.bucket, lifecycle_rule_id(policy), rule)
    except aws.AwsNotReady as error:
        conditions.set("LifecycleReady", False, error.reason, error.message, not_ready=error)
        return []
    if rule:
        conditions.set(
            "LifecycleReady",
            True,
            "Enabled",
            f"objects under {policy.prefix} expire after {policy.lifecycle_days} days",
        )
    else:
        conditions.set("LifecycleReady", True, "NotRequested", "lifecycleSafetyNet is off")
    if not changed:
        return []
    verb = "set" if rule else "removed"
    return [
        Event(
            "Normal",
            "LifecycleRuleUpdated",
            f"{verb} lifecycle rule on {policy.bucket}/{policy.prefix}",
        )
    ]


def enforced(
    policy: Policy,
    status: Mapping[str, Any],
    settings: OperatorSettings,
    now: datetime,
    inherited: enforcement.Period | None = None,
) -> tuple[Policy, dict[str, Any], list[Event]]:
    """The policy as the cleanup must run it now, its retention status fields and Events.

    A shorter retention waits until audio promised the longer one has expired (unless the
    policy says ``retentionShrink: Immediate``); the history of retentions that still
    matter lives in the policy's status.
    """
    previous = status.get("enforcedRetention")
    lag = timedelta(seconds=settings.retention_lag_seconds)
    decision = enforcement.decide(policy, status, now, lag, inherited)
    fields = enforcement.status_fields(policy, decision)
    text = str(fields["enforcedRetention"])
    events: list[Event] = []
    if decision.until is not None and status.get("enforcedUntil") != fields["enforcedUntil"]:
        events.append(
            Event(
                "Normal",
                "RetentionShrinkDeferred",
                f"retention {policy.retention_text} takes effect at {fields['enforcedUntil']}; until"
                f" then the cleanup keeps {text}, which URLs issued earlier promise",
            )
        )
    if inherited is not None and not status.get("retentionHistory"):
        events.append(
            Event(
                "Normal",
                "RetentionInherited",
                f"a policy of this name deleted at {enforcement.stamp(inherited.ended or now)} promised"
                " its audio"
                f" {format_duration(inherited.retention)}; the cleanup keeps {text}"
                + (f" until {fields['enforcedUntil']}" if fields["enforcedUntil"] else ""),
            )
        )
    if policy.retention_shrink == "Immediate" and previous and previous != text:
        events.append(
            Event(
                "Warning",
                "RetentionShrunkImmediately",
                f"retentionShrink: Immediate: the cleanup enforces {text} now; URLs issued under"
                f" {previous} may point at deleted audio",
            )
        )
    effective = replace(policy, retention=decision.retention, retention_text=text)
    return effective, fields, events


def _final_cleanup(policy: Policy, clients: Clients) -> dict[str, Any] | None:
    """The final cleanup a deleted policy of this name left, if any."""
    found = kube.get_cronjob(clients.custom, policy.namespace, final_cleanup_name(policy.name))
    if found is None or (found["metadata"].get("labels") or {}).get(RETIRED_LABEL) != policy.name:
        return None
    return found


def as_body(body: Mapping[str, Any]) -> kopf.Body:
    """kopf's helpers read any mapping with apiVersion, kind and metadata."""
    return cast(kopf.Body, body)


def post_events(clients: Clients, body: Mapping[str, Any], events: list[Event]) -> None:
    """Through our own client: kopf.event works only inside kopf's tasks, not the resync loop."""
    for event in events:
        kube.post_event(
            clients.core, body, type_=event.type, reason=event.reason, message=event.message
        )
