"""Reconciling outside kopf's handlers: the resync loop that repairs drift every
``drift_interval_seconds``, the watches' reconcile by name, and the per-policy lock and
unsettled generations that keep them from doing kopf's work twice."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from tempaudio_api import GROUP, PLURAL, VERSION

from . import kube
from .outcome import Outcome, failed, status_changed
from .reconcile import Clients, post_events, reconcile
from .settings import OperatorSettings

logger = logging.getLogger(__name__)


def policy_lock(memo: kopf.Memo, meta: Mapping[str, Any]) -> threading.Lock:
    """One reconcile of a policy at a time: kopf's handler, the resync loop and the watches
    of its CronJob and Jobs would otherwise change (and report) the same thing twice."""
    with memo.locks_guard:
        lock: threading.Lock = memo.locks.setdefault(
            (meta["namespace"], meta["name"]), threading.Lock()
        )
    return lock


def reconcile_isolated(body: Mapping[str, Any], memo: kopf.Memo) -> Outcome:
    """One policy's reconcile; whatever it raises becomes that policy's status."""
    try:
        with policy_lock(memo, body["metadata"]):
            outcome = reconcile(body, memo.settings, memo.clients)
    except Exception as error:  # noqa: BLE001 (reported on the policy, never lost)
        meta = body["metadata"]
        logger.warning("policy %s/%s: reconcile failed: %r", meta["namespace"], meta["name"], error)
        outcome = failed(body, error)
    if not outcome.terminating:
        memo.metrics.reconciles.labels(outcome.label).inc()
        memo.metrics.observe_policy(body, ready=outcome.label == "ready")
    return outcome


def log_failure(namespace: str, name: str, error: Exception) -> None:
    """One line, no traceback; a namespace being deleted is routine, not a warning."""
    message = kube.api_error_message(error) if isinstance(error, ApiException) else str(error)
    level = logging.DEBUG if kube.namespace_terminating(error) else logging.WARNING
    logger.log(level, "policy %s/%s: %s", namespace, name, message)


def reconcile_by_name(memo: kopf.Memo, namespace: str, name: str) -> None:
    """Reconcile outside a policy handler: patch status only when it changes."""
    clients: Clients = memo.clients
    body = kube.get_policy(clients.custom, namespace, name)
    if body is None or body["metadata"].get("deletionTimestamp"):
        return
    if left_to_kopf(memo, body):
        return
    outcome = reconcile_isolated(body, memo)
    if status_changed(body, outcome.status):
        kube.patch_policy_status(clients.custom, namespace, name, outcome.status)
    post_events(clients, body, outcome.events)


def left_to_kopf(memo: kopf.Memo, body: Mapping[str, Any]) -> bool:
    """A generation kopf's handler has yet to reconcile is its own, once: reconciling it
    here too changed (and reported) the same thing twice. Still unreconciled at the next
    look, it is reconciled here: kopf may have lost its watch (an operator started while
    the API server restarted never served the resources again, and nothing converged)."""
    meta = body["metadata"]
    key, generation = (meta["namespace"], meta["name"]), meta.get("generation")
    with memo.locks_guard:  # the resync thread and the watch handlers' threads
        if (body.get("status") or {}).get("observedGeneration") == generation:
            memo.unsettled.pop(key, None)
            return False
        if memo.unsettled.get(key) == generation:
            return False
        memo.unsettled[key] = generation
        return True


async def resync_loop(memo: kopf.Memo) -> None:
    settings: OperatorSettings = memo.settings
    while True:
        await asyncio.sleep(settings.drift_interval_seconds)
        try:
            await asyncio.to_thread(resync_all, memo)
        except Exception:  # the loop must outlive one failed round; the error is logged
            logger.exception(
                "resync round failed; retrying in %ss", settings.drift_interval_seconds
            )


def watched_policies(memo: kopf.Memo) -> list[dict[str, Any]]:
    """The policies in the operator's scope, listed the way its RBAC allows."""
    settings: OperatorSettings = memo.settings
    custom = memo.clients.custom
    if settings.namespaces and settings.plain_namespaces:
        return [
            item
            for namespace in settings.namespaces
            for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)[
                "items"
            ]
        ]
    items = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
    return [item for item in items if settings.watches(item["metadata"]["namespace"])]


def resync_all(memo: kopf.Memo) -> None:
    # What handlers observe while the listing is under way is newer than the listing.
    listed_at = memo.metrics.listing_started()
    policies = watched_policies(memo)
    memo.metrics.observe_policies(policies, listed_at=listed_at)
    # What is kept per policy goes with the policy.
    present = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in policies}
    with memo.locks_guard:
        for key in set(memo.locks) - present:
            del memo.locks[key]
        for key in set(memo.unsettled) - present:
            del memo.unsettled[key]
    for item in policies:
        namespace, name = item["metadata"]["namespace"], item["metadata"]["name"]
        # Each policy on its own: one that fails never stops drift repair of the others.
        # (reconcile() turns its own failures into status; what is left is reading the
        # policy and writing its status.)
        try:
            reconcile_by_name(memo, namespace, name)
        except ApiException as error:
            log_failure(namespace, name, error)
