"""kopf handlers of TempAudioLexicons: each is validated into its status, and every change
to one (created, edited, deleted) reconciles the policies of its namespace that name it, so
their readiness follows within seconds rather than at the next resync."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from tempaudio_api import GROUP, VERSION
from tempaudio_api.lexicon_rules import PLURAL as LEXICONS

from . import kube, resync
from .lexicons import lexicon_status, naming

logger = logging.getLogger(__name__)


@kopf.on.resume(GROUP, VERSION, LEXICONS)
@kopf.on.create(GROUP, VERSION, LEXICONS)
@kopf.on.update(GROUP, VERSION, LEXICONS)
def validate_lexicon(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    status, error = lexicon_status(body, datetime.now(UTC))
    patch.status.update(status)
    if error is not None:
        raise kopf.PermanentError(f"invalid lexicon: {error}")


@kopf.on.event(GROUP, VERSION, LEXICONS)
def lexicon_changed(
    type: str | None, body: kopf.Body, namespace: str | None, memo: kopf.Memo, **_: Any
) -> None:
    """The policies naming this lexicon are reconciled again (LexiconsReady follows)."""
    if namespace is None or type is None:  # type None: the initial listing, seen at resume
        return
    name = body["metadata"]["name"]
    try:
        policies = naming(kube.list_policies(memo.clients.custom, namespace), name)
    except ApiException as error:
        resync.log_failure(namespace, f"(naming lexicon {name})", error)
        return
    for policy in policies:
        logger.debug("lexicon %s/%s %s: reconciling policy %s", namespace, name, type, policy)
        try:
            resync.reconcile_by_name(memo, namespace, policy)
        except ApiException as error:
            resync.log_failure(namespace, policy, error)
