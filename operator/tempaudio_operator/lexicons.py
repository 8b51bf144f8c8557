"""TempAudioLexicons in the operator: a lexicon's own status (valid or why not), and whether
the lexicons a policy names are there and valid (its LexiconsReady condition).

A lexicon is judged by the policy API's parser (``tempaudio_api.lexicon``), the one the
service reads it with. A policy naming a lexicon that is missing or invalid keeps its
cleanup (its audio still expires) and its acceptedGeneration, but is not Ready; the service
refuses its requests until every lexicon it names is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from kubernetes import client

from tempaudio_api.errors import PolicyError
from tempaudio_api.lexicon import lexicon_from_spec
from tempaudio_api.policy import Policy

from . import kube
from .outcome import Conditions

CONDITION = "LexiconsReady"


def lexicon_status(
    body: Mapping[str, Any], now: datetime
) -> tuple[dict[str, Any], PolicyError | None]:
    """A lexicon's status (merged over the current one) and the error that makes it invalid."""
    meta = body["metadata"]
    conditions = Conditions.of(body, now)
    generation = meta.get("generation")
    try:
        lexicon = lexicon_from_spec(meta["name"], body.get("spec") or {})
    except PolicyError as error:
        conditions.set("Valid", False, "InvalidSpec", str(error))
        conditions.set("Ready", False, "InvalidSpec", str(error))
        return {"observedGeneration": generation, "conditions": conditions.items}, error
    message = f"{len(lexicon.entries)} entries, version {lexicon.version}"
    conditions.set("Valid", True, "Accepted", message)
    conditions.set("Ready", True, "Accepted", message)
    status = {
        "observedGeneration": generation,
        "acceptedGeneration": generation,
        "entries": len(lexicon.entries),
        "version": lexicon.version,
        "conditions": conditions.items,
    }
    return status, None


def lexicon_problem(
    custom: client.CustomObjectsApi, namespace: str, names: Iterable[str]
) -> tuple[str, str] | None:
    """(reason, message) for the first named lexicon that is missing or invalid; None: all
    are there and valid."""
    for name in names:
        body = kube.get_lexicon(custom, namespace, name)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return "LexiconMissing", f"lexicon {name} does not exist in namespace {namespace}"
        try:
            lexicon_from_spec(name, body.get("spec") or {})
        except PolicyError as error:
            return "LexiconInvalid", f"lexicon {name} is invalid: {error}"
    return None


def reconcile_lexicons(
    policy: Policy, custom: client.CustomObjectsApi, conditions: Conditions
) -> None:
    """Sets LexiconsReady for a policy that names lexicons (or named some before)."""
    if not policy.lexicons:
        if CONDITION in conditions.previous:
            conditions.set(CONDITION, True, "NoLexicons", "the policy names no lexicons")
        return
    problem = lexicon_problem(custom, policy.namespace, policy.lexicons)
    if problem is not None:
        conditions.set(CONDITION, False, *problem)
    else:
        names = ", ".join(policy.lexicons)
        conditions.set(CONDITION, True, "Resolved", f"lexicons {names} exist and are valid")


def naming(policies: Iterable[Mapping[str, Any]], lexicon: str) -> list[str]:
    """The names of the policies whose spec.lexicons names ``lexicon`` (pure)."""
    found = []
    for policy in policies:
        named = (policy.get("spec") or {}).get("lexicons") or []
        if isinstance(named, list) and lexicon in named:
            found.append(str(policy["metadata"]["name"]))
    return found
