"""Kubernetes side effects: the cleanup CronJob, job summaries, policy and voice status. Thin.

CronJobs are handled as plain dicts through the generic object API, the same shape the
builders in desired.py produce.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tempaudio_api import GROUP, PLURAL, VERSION
from tempaudio_api.lexicon_rules import PLURAL as LEXICONS
from tempaudio_api.voice_rules import PLURAL as VOICES

from .desired import CLEANUP_CONTAINER, POLICY_LABEL, RETIRED_LABEL, adopted_managed_fields
from .status import parse_cleanup_summary

MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
FIELD_MANAGER = "tempaudio-operator"
logger = logging.getLogger(__name__)
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def load_config(env: Mapping[str, str]) -> None:
    """Configure the client library: in-cluster, else $KUBECONFIG as it is now.

    (kubernetes.config reads KUBECONFIG once, at import; tests and tools set it later.)
    """
    if env.get("KUBERNETES_SERVICE_HOST") and Path(SERVICE_ACCOUNT_TOKEN).exists():
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(config_file=env.get("KUBECONFIG"))  # type: ignore[no-untyped-call]


def _get(
    api: client.CustomObjectsApi, group: str, version: str, namespace: str, plural: str, name: str
) -> dict[str, Any] | None:
    try:
        return cast(
            dict[str, Any],
            api.get_namespaced_custom_object(group, version, namespace, plural, name),
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise


class NameConflict(Exception):
    """The CronJob's name is taken by an object this policy does not own."""


def owned_by(obj: Mapping[str, Any], owner_uid: str | None) -> bool:
    """True when ``obj`` has a controller owner reference to ``owner_uid``."""
    references = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("uid") == owner_uid and r.get("controller") for r in references)


def api_error_message(error: ApiException) -> str:
    """The API server's own message (Status.message), short; never another server's body."""
    try:
        message = str(json.loads(error.body or "{}").get("message") or error.reason)
    except (ValueError, AttributeError):
        message = str(error.reason)
    return message[:500]


def namespace_terminating(error: Exception) -> bool:
    """The API refused because the namespace is being deleted: routine, not a failure."""
    return (
        isinstance(error, ApiException)
        and error.status == 403
        and "being terminated" in api_error_message(error)
    )


def apply_cronjob(api: client.CustomObjectsApi, desired: Mapping[str, Any], owner_uid: str) -> str:
    """Server-side apply of the policy's CronJob: "created", "updated" or "unchanged".

    Fields the operator applied before and no longer sets are removed (a merge patch of
    "desired" never removed a dropped nodeSelector). An object of the same name that this
    policy does not own is left alone: ``NameConflict``.
    """
    name, namespace = desired["metadata"]["name"], desired["metadata"]["namespace"]
    actual = _get(api, "batch", "v1", namespace, "cronjobs", name)
    if actual is not None and not owned_by(actual, owner_uid):
        raise NameConflict(
            f"CronJob {name} already exists and is not owned by this policy; rename or delete it"
        )
    if actual is not None:
        adopted = adopted_managed_fields(
            actual["metadata"].get("managedFields") or [], FIELD_MANAGER
        )
        if adopted is not None:
            api.patch_namespaced_custom_object(
                "batch",
                "v1",
                namespace,
                "cronjobs",
                name,
                {
                    "metadata": {
                        "managedFields": adopted,
                        "resourceVersion": actual["metadata"]["resourceVersion"],
                    }
                },
                _content_type=MERGE_PATCH,
            )
            actual = _get(api, "batch", "v1", namespace, "cronjobs", name) or actual
    applied = cast(
        dict[str, Any],
        api.patch_namespaced_custom_object(
            "batch",
            "v1",
            namespace,
            "cronjobs",
            name,
            dict(desired),
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=APPLY_PATCH,
        ),
    )
    if actual is None:
        return "created"
    before = actual["metadata"].get("resourceVersion")
    return "unchanged" if applied["metadata"].get("resourceVersion") == before else "updated"


def get_cronjob(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    return _get(api, "batch", "v1", namespace, "cronjobs", name)


def owned_cronjobs(
    api: client.CustomObjectsApi, namespace: str, policy_name: str, owner_uid: str
) -> list[str]:
    """Names of the CronJobs labelled for the policy and owned by it."""
    listed = cast(
        dict[str, Any],
        api.list_namespaced_custom_object(
            "batch",
            "v1",
            namespace,
            "cronjobs",
            label_selector=f"{POLICY_LABEL}={policy_name}",
        ),
    )
    return [
        item["metadata"]["name"] for item in listed.get("items") or [] if owned_by(item, owner_uid)
    ]


def delete_cronjob(api: client.BatchV1Api, namespace: str, name: str) -> None:
    """Delete a CronJob and, in the background, its Jobs; gone already is fine."""
    try:
        api.delete_namespaced_cron_job(name, namespace, propagation_policy="Background")
    except ApiException as error:
        if error.status != 404:
            raise


def apply_final_cleanup(api: client.CustomObjectsApi, desired: Mapping[str, Any]) -> None:
    """Server-side apply of a deleted policy's final cleanup (owned by nobody). A CronJob of
    that name that is not one is left alone: ``NameConflict``."""
    name, namespace = desired["metadata"]["name"], desired["metadata"]["namespace"]
    retired = desired["metadata"]["labels"][RETIRED_LABEL]
    actual = _get(api, "batch", "v1", namespace, "cronjobs", name)
    if (
        actual is not None
        and (actual["metadata"].get("labels") or {}).get(RETIRED_LABEL) != retired
    ):
        raise NameConflict(f"CronJob {name} already exists and is not this policy's final cleanup")
    api.patch_namespaced_custom_object(
        "batch",
        "v1",
        namespace,
        "cronjobs",
        name,
        dict(desired),
        field_manager=FIELD_MANAGER,
        force=True,
        _content_type=APPLY_PATCH,
    )


def cleanup_summary(core: client.CoreV1Api, namespace: str, job_name: str) -> dict[str, Any] | None:
    """The summary line of a finished cleanup pod, from its termination message."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job_name}").items

    def created(pod: client.V1Pod) -> datetime:
        stamp = pod.metadata.creation_timestamp if pod.metadata else None
        return stamp or datetime.min.replace(tzinfo=UTC)

    for pod in sorted(pods, key=created, reverse=True):
        for status in (pod.status.container_statuses or []) if pod.status else []:
            terminated = status.state.terminated if status.state else None
            if status.name == CLEANUP_CONTAINER and terminated is not None:
                summary = parse_cleanup_summary(terminated.message)
                if summary is not None:
                    return summary
    return None


def post_event(
    core: client.CoreV1Api, obj: Mapping[str, Any], *, type_: str, reason: str, message: str
) -> None:
    """A core/v1 Event about ``obj``; best-effort, so a refused Event never fails a reconcile."""
    meta = obj["metadata"]
    now = datetime.now(UTC)
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(generate_name=f"{meta['name']}.", namespace=meta["namespace"]),
        involved_object=client.V1ObjectReference(
            api_version=obj.get("apiVersion"),
            kind=obj.get("kind"),
            name=meta["name"],
            namespace=meta["namespace"],
            uid=meta.get("uid"),
        ),
        type=type_,
        reason=reason,
        message=message[:1024],
        source=client.V1EventSource(component="tempaudio-operator"),
        reporting_component="tempaudio-operator",
        reporting_instance=socket.gethostname(),
        first_timestamp=now,
        last_timestamp=now,
        count=1,
    )
    try:
        core.create_namespaced_event(meta["namespace"], event)
    except ApiException as error:
        logger.warning("could not post event %s on %s: %s", reason, meta["name"], error.reason)


def service_account_exists(core: client.CoreV1Api, namespace: str, name: str) -> bool:
    try:
        core.read_namespaced_service_account(name, namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def get_policy(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    return _get(api, GROUP, VERSION, namespace, PLURAL, name)


def patch_policy_status(
    api: client.CustomObjectsApi, namespace: str, name: str, status: Mapping[str, Any]
) -> None:
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, name, {"status": dict(status)}, _content_type=MERGE_PATCH
    )


def get_lexicon(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    return _get(api, GROUP, VERSION, namespace, LEXICONS, name)


def list_policies(api: client.CustomObjectsApi, namespace: str) -> list[dict[str, Any]]:
    listing = cast(
        dict[str, Any], api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    )
    return cast(list[dict[str, Any]], listing.get("items") or [])


def get_voice(api: client.CustomObjectsApi, namespace: str, name: str) -> dict[str, Any] | None:
    return _get(api, GROUP, VERSION, namespace, VOICES, name)


def patch_voice_status(
    api: client.CustomObjectsApi, namespace: str, name: str, status: Mapping[str, Any]
) -> None:
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, VOICES, name, {"status": dict(status)}, _content_type=MERGE_PATCH
    )
