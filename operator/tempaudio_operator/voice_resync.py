"""Verifying TempAudioVoices, in kopf's handlers and in a loop of its own: every
``drift_interval_seconds`` each voice in scope is looked at again, so a model deleted,
replaced or made unreadable in S3 shows in its status (and in the readiness of the policies
naming it) without an edit. A look costs two HeadObject calls; the model is hashed again
only when its objects (their ETags) or the voice's spec changed. One verification of a voice
at a time: the loop and kopf's handler would otherwise read and report it twice."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from tempaudio_api import GROUP, VERSION
from tempaudio_api.voice_rules import PLURAL as VOICES

from . import kube
from .outcome import status_changed
from .reconcile import Clients, post_events
from .settings import OperatorSettings
from .voices import VoiceOutcome, voice_outcome

logger = logging.getLogger(__name__)


def voice_lock(memo: kopf.Memo, meta: Mapping[str, Any]) -> threading.Lock:
    with memo.locks_guard:
        lock: threading.Lock = memo.voice_locks.setdefault(
            (meta["namespace"], meta["name"]), threading.Lock()
        )
    return lock


def verify(memo: kopf.Memo, body: Mapping[str, Any]) -> VoiceOutcome:
    """The voice's status now, verified once at a time (what S3 holds is read here)."""
    settings: OperatorSettings = memo.settings
    clients: Clients = memo.clients
    with voice_lock(memo, body["metadata"]):
        return voice_outcome(
            body, settings.tenancy, clients.aws, memo.voice_checks, datetime.now(UTC)
        )


def recheck(memo: kopf.Memo, body: Mapping[str, Any]) -> None:
    """Verify outside kopf's handler: the status is patched only when it changes (each patch
    reconciles the policies naming the voice, through the voice's watch)."""
    outcome = verify(memo, body)
    meta = body["metadata"]
    if status_changed(body, outcome.status):
        kube.patch_voice_status(
            memo.clients.custom, meta["namespace"], meta["name"], outcome.status
        )
    post_events(memo.clients, body, outcome.events)


def watched_voices(memo: kopf.Memo) -> list[dict[str, Any]]:
    """The voices in the operator's scope, listed the way its RBAC allows."""
    settings: OperatorSettings = memo.settings
    custom = memo.clients.custom
    if settings.namespaces and settings.plain_namespaces:
        return [
            item
            for namespace in settings.namespaces
            for item in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, VOICES)[
                "items"
            ]
        ]
    items = custom.list_cluster_custom_object(GROUP, VERSION, VOICES)["items"]
    return [item for item in items if settings.watches(item["metadata"]["namespace"])]


def recheck_all(memo: kopf.Memo) -> None:
    voices = watched_voices(memo)
    present = {(v["metadata"]["namespace"], v["metadata"]["name"]) for v in voices}
    with memo.locks_guard:  # what is kept per voice goes with the voice
        for key in set(memo.voice_locks) - present:
            del memo.voice_locks[key]
        for kept in [k for k in list(memo.voice_checks) if tuple(k.split("/", 1)) not in present]:
            memo.voice_checks.pop(kept, None)
    for body in voices:
        meta = body["metadata"]
        if meta.get("deletionTimestamp"):
            continue
        # Each voice on its own: one that fails never stops the others' checks.
        try:
            recheck(memo, body)
        except ApiException as error:
            logger.warning(
                "voice %s/%s: %s", meta["namespace"], meta["name"], kube.api_error_message(error)
            )


async def voice_resync_loop(memo: kopf.Memo) -> None:
    settings: OperatorSettings = memo.settings
    while True:
        await asyncio.sleep(settings.drift_interval_seconds)
        try:
            await asyncio.to_thread(recheck_all, memo)
        except Exception:  # the loop must outlive one failed round; the error is logged
            logger.exception(
                "voice re-check round failed; retrying in %ss", settings.drift_interval_seconds
            )
