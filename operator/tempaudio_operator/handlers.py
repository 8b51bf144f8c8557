"""kopf handlers only: each parses, builds, applies and reports through reconcile.py.

The CronJob is owned (garbage-collected with the policy) and the table's TTL is left alone
on deletion. Every policy carries a finalizer: at deletion the operator schedules the final
cleanup of the audio it promised and removes its lifecycle rule. With the operator gone for
good, ``kubectl patch tap NAME --type=merge -p '{"metadata":{"finalizers":null}}'`` lets a
policy go (its audio and rule are then the platform team's to remove).
Periodic drift repair runs as a resync loop rather than a kopf timer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import kopf
import prometheus_client
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from tempaudio_api import GROUP, PLURAL, VERSION
from tempaudio_api.errors import PolicyError
from tempaudio_api.lexicon_rules import PLURAL as LEXICONS
from tempaudio_api.policy import Policy
from tempaudio_api.voice_rules import PLURAL as VOICES

from . import (
    enforcement,
    kube,
    lexicon_handlers,  # noqa: F401  (registers the TempAudioLexicon handlers)
    resync,
    tenancy,
    voice_handlers,  # noqa: F401  (registers the TempAudioVoice handlers)
    voice_resync,
)
from .aws import AwsNotReady
from .desired import MANAGED_BY, POLICY_LABEL, RETIRED_LABEL, final_cleanup_done
from .metrics import OperatorMetrics, policy_key
from .outcome import Event
from .reconcile import Clients, ensure_cronjob, post_events
from .retirement import retire
from .settings import OperatorSettings
from .status import job_outcome, last_cleanup

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
# What kopf watches (besides Jobs): discovery must list them before kopf starts.
WATCHED = frozenset({PLURAL, LEXICONS, VOICES, "cronjobs"})
logger = logging.getLogger(__name__)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    kube.load_config(os.environ)
    return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # State lives in annotations, never in status fields the CRD's schema would prune.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.finalizer = f"{GROUP}/lifecycle-rule"
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60
    # Sync handlers share this pool: policies whose endpoints hang must not hold every
    # thread (kopf's default is cores + 4), or a new policy waits for its CronJob.
    settings.execution.max_workers = 64
    memo.metrics = OperatorMetrics.create()
    # The program hands its one settings object over; kopf run -m (tests) reads the env.
    if "settings" not in memo:
        memo.settings = OperatorSettings.from_env(os.environ)
    memo.clients = Clients()
    memo.locks, memo.locks_guard = {}, threading.Lock()
    memo.unsettled = {}  # (namespace, name) -> a generation seen unreconciled by the resync
    memo.voice_locks = {}  # (namespace, name) -> one verification of a voice at a time
    memo.voice_checks = {}  # namespace/name -> the voice's last verification, by ETags
    port = memo.settings.metrics_port
    if port:
        prometheus_client.start_http_server(port, registry=memo.metrics.registry)
        logger.info("metrics on :%d/metrics", port)
    memo.resync = asyncio.create_task(resync.resync_loop(memo))
    memo.voice_resync = asyncio.create_task(voice_resync.voice_resync_loop(memo))
    # kopf resolves the resources it watches once, right after the start-up activities: an
    # API server that is (re)starting then leaves them unresolved, and kopf never serves
    # them. Wait until discovery lists them all.
    await asyncio.to_thread(_wait_for_discovery, DISCOVERY_WAIT_SECONDS)


DISCOVERY_WAIT_SECONDS = 120.0


def _served_resources() -> set[str]:
    """The watched resources discovery lists now (policies, lexicons, voices, CronJobs)."""
    kube.load_config(os.environ)
    served: set[str] = set()
    listings: tuple[Callable[[], Any], ...] = (
        lambda: client.CustomObjectsApi().get_api_resources(GROUP, VERSION),
        lambda: client.BatchV1Api().get_api_resources(),
    )
    for listing in listings:
        try:
            found = listing()
        except (ApiException, HTTPError, OSError) as error:
            logger.debug("discovery not served yet: %s", error)
            continue
        served.update(r.name for r in found.resources or ())
    return served & WATCHED


def _wait_for_discovery(timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (served := _served_resources()) != WATCHED:
        if time.monotonic() >= deadline:
            logger.warning("the API server serves only %s; starting anyway", sorted(served))
            return
        time.sleep(0.5)


@kopf.on.cleanup()
async def stop_resync(memo: kopf.Memo, **_: Any) -> None:
    for name in ("resync", "voice_resync"):
        task: asyncio.Task[None] | None = memo.get(name)
        if task is not None:
            task.cancel()


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def reconcile_policy(body: kopf.Body, memo: kopf.Memo, patch: kopf.Patch, **_: Any) -> None:
    settings: OperatorSettings = memo.settings
    outcome = resync.reconcile_isolated(body, memo)
    if outcome.terminating:
        return
    patch.status.update(outcome.status)
    post_events(memo.clients, body, outcome.events)
    if outcome.invalid is not None:
        raise kopf.PermanentError(f"invalid spec: {outcome.invalid}")
    if outcome.blocked is not None:
        raise kopf.TemporaryError(outcome.blocked, delay=settings.drift_interval_seconds)
    if outcome.not_ready is not None:
        delay = (
            settings.ttl_throttle_retry_seconds
            if outcome.not_ready.throttled
            else settings.aws_retry_seconds
        )
        raise kopf.TemporaryError(outcome.not_ready.message, delay=delay)


@kopf.on.delete(GROUP, VERSION, PLURAL, retries=20, backoff=15)
def retire_policy(body: kopf.Body, memo: kopf.Memo, retry: int, **_: Any) -> None:
    """A deleted policy leaves a final cleanup for the audio it promised; its lifecycle
    rule goes with it (docs/concepts/policies.md)."""
    try:
        events = retire(body, memo.settings, memo.clients, datetime.now(UTC))
    except ApiException as error:
        if kube.namespace_terminating(error):
            # Everything in the namespace goes; a lifecycle rule, if any, stays and expires
            # the audio, since the final cleanup cannot be scheduled there.
            logger.info(
                "namespace of %s/%s is terminating: no final cleanup",
                body["metadata"]["namespace"],
                body["metadata"]["name"],
            )
            return
        raise kopf.TemporaryError(kube.api_error_message(error), delay=15) from error
    except AwsNotReady as error:
        # After ~5 minutes of retries the policy goes anyway: a rule left behind only
        # expires tempaudio's prefix, and the Event says so.
        if retry >= 19:
            post_events(memo.clients, body, [Event("Warning", "LifecycleRuleLeft", str(error))])
            return
        raise kopf.TemporaryError(str(error), delay=15) from error
    post_events(memo.clients, body, events)
    memo.metrics.forget_policy(policy_key(body))


@kopf.on.event(
    "batch", "v1", "cronjobs", labels={MANAGED_BY_LABEL: MANAGED_BY, RETIRED_LABEL: kopf.PRESENT}
)
def finish_final_cleanup(
    type: str, body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """A final cleanup that has run successfully past its time has done its work."""
    if type == "DELETED" or namespace is None or not final_cleanup_done(body):
        return
    logger.info("final cleanup %s/%s is done", namespace, body["metadata"]["name"])
    kube.delete_cronjob(memo.clients.batch, namespace, body["metadata"]["name"])


@kopf.on.event(
    "batch", "v1", "cronjobs", labels={MANAGED_BY_LABEL: MANAGED_BY, POLICY_LABEL: kopf.PRESENT}
)
def repair_cronjob(
    type: str, body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """Undo edits to (or deletion of) an owned CronJob as soon as they are seen."""
    if namespace is None:
        return
    clients: Clients = memo.clients
    policy_body = kube.get_policy(clients.custom, namespace, body.metadata.labels[POLICY_LABEL])
    if policy_body is None or policy_body["metadata"].get("deletionTimestamp"):
        return
    meta = policy_body["metadata"]
    try:
        policy = Policy.from_spec(
            policy_body.get("spec") or {}, name=meta["name"], namespace=namespace
        )
    except PolicyError:
        return  # reported by the policy's own reconcile
    if tenancy.refusal(policy, memo.settings.tenancy) is not None:
        return  # likewise: a refused policy gets no CronJob
    # The retention the last reconcile decided on (a deferred shrink), never the spec's alone.
    policy = enforcement.enforced_retention(policy, policy_body.get("status") or {})
    try:
        name, action = ensure_cronjob(policy, policy_body, memo.settings, clients)
    except (kube.NameConflict, ApiException) as error:
        resync.log_failure(namespace, meta["name"], error)
        return  # reported by the policy's own reconcile
    if action != "unchanged":
        kube.post_event(
            clients.core,
            policy_body,
            type_="Normal",
            reason="CronJobRestored",
            message=f"{action} CronJob {name} after it was "
            f"{'deleted' if type == 'DELETED' else 'changed'}",
        )


@kopf.on.event(
    "batch", "v1", "jobs", labels={MANAGED_BY_LABEL: MANAGED_BY, POLICY_LABEL: kopf.PRESENT}
)
def record_cleanup(
    type: str, body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """Put a finished cleanup Job's outcome (and its summary counters) into the policy status."""
    if type == "DELETED" or namespace is None:
        return
    outcome = job_outcome(body)
    if outcome is None:
        return
    clients: Clients = memo.clients
    name = body.metadata.labels[POLICY_LABEL]
    policy_body = kube.get_policy(clients.custom, namespace, name)
    if policy_body is None:
        return
    recorded = (policy_body.get("status") or {}).get("lastCleanup") or {}
    if recorded.get("jobName") == outcome["jobName"] or (recorded.get("completionTime") or "") > (
        outcome["completionTime"] or ""
    ):
        return
    summary = kube.cleanup_summary(clients.core, namespace, outcome["jobName"])
    result = last_cleanup(outcome, summary)
    kube.patch_policy_status(clients.custom, namespace, name, {"lastCleanup": result})
    memo.metrics.cleanup_finished(f"{namespace}/{name}", result)
    if result["succeeded"]:
        counts = (
            f": deleted {result['deleted']} of {result['scanned']} scanned"
            if "deleted" in result
            else ""
        )
        kube.post_event(
            clients.core,
            policy_body,
            type_="Normal",
            reason="CleanupSucceeded",
            message=f"Job {outcome['jobName']} succeeded{counts}",
        )
    else:
        kube.post_event(
            clients.core,
            policy_body,
            type_="Warning",
            reason="CleanupFailed",
            message=f"Job {outcome['jobName']} failed",
        )
    # Each cleanup run is also a cheap moment to re-check TTL and lifecycle drift.
    resync.reconcile_by_name(memo, namespace, name)
