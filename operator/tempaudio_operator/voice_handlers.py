"""kopf handlers of TempAudioVoices: each is verified into its status when created, edited
(an edit of ``sha256`` is verified again) or found at start, and every change to one
(created, edited, deleted, its status written) reconciles the policies of its namespace that
name it, so their readiness follows within seconds rather than at the next resync."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from tempaudio_api import GROUP, VERSION
from tempaudio_api.voice_rules import PLURAL as VOICES

from . import kube, resync, voice_resync
from .reconcile import post_events
from .voices import naming

logger = logging.getLogger(__name__)


@kopf.on.resume(GROUP, VERSION, VOICES)
@kopf.on.create(GROUP, VERSION, VOICES)
@kopf.on.update(GROUP, VERSION, VOICES)
def verify_voice(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    outcome = voice_resync.verify(memo, body)
    patch.status.update(outcome.status)
    post_events(memo.clients, body, outcome.events)
    if outcome.invalid is not None:
        raise kopf.PermanentError(f"invalid voice: {outcome.invalid}")


@kopf.on.event(GROUP, VERSION, VOICES)
def voice_changed(
    type: str | None, body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """The policies naming this voice are reconciled again (VoicesReady follows)."""
    if namespace is None or type is None:  # type None: the initial listing, seen at resume
        return
    name = body["metadata"]["name"]
    if type == "DELETED":
        memo.voice_checks.pop(f"{namespace}/{name}", None)
    try:
        policies = naming(kube.list_policies(memo.clients.custom, namespace), name)
    except ApiException as error:
        resync.log_failure(namespace, f"(naming voice {name})", error)
        return
    for policy in policies:
        logger.debug("voice %s/%s %s: reconciling policy %s", namespace, name, type, policy)
        try:
            resync.reconcile_by_name(memo, namespace, policy)
        except ApiException as error:
            resync.log_failure(namespace, policy, error)
