"""The TempAudioLexicons the service says requests with, and each served policy's, in order
(pure).

A policy names lexicons of its namespace (``spec.lexicons``); the service serves it with
them resolved into ``ServedPolicy.lexicons``, or refuses it (``PolicyNotReady``) while one
is missing or not accepted. As with policies, on Kubernetes the operator is the gate: a
lexicon is read only at the generation the operator accepted (``status.acceptedGeneration``),
and while an edit waits for the operator the generation accepted before is said. From a
file, a lexicon is taken as written, and a policy naming one the file lacks is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from tempaudio_api.errors import LexiconError, PolicyError
from tempaudio_api.lexicon import Lexicon, lexicon_from_spec
from tempaudio_api.lexicon_rules import KIND
from tempaudio_api.schema import LEXICON_FILE, check_fields
from tempaudio_service.core.config import ConfigError
from tempaudio_service.policy.policies import DEFAULT_NAMESPACE, Entry, Refusal, ServedPolicy


@dataclass(frozen=True)
class Unavailable:
    """A lexicon the service knows of but cannot say requests with now, and why."""

    reason: str
    message: str


Known = Lexicon | Unavailable


def lexicon_key(document: Mapping[str, Any], default_namespace: str = DEFAULT_NAMESPACE) -> str:
    """``namespace/name`` of a lexicon document; ``LexiconError`` without a name."""
    meta = document.get("metadata") or {}
    name = str(meta.get("name") or "")
    if not name:
        raise LexiconError("the lexicon has no metadata.name")
    return f"{meta.get('namespace') or default_namespace}/{name}"


def is_lexicon(document: Mapping[str, Any]) -> bool:
    return document.get("kind") == KIND


def declared_lexicon(document: Mapping[str, Any]) -> Lexicon:
    """A lexicon taken as written (a file): no API server has refused its unknown fields."""
    name = lexicon_key(document).split("/", 1)[1]
    spec = document.get("spec") or {}
    check_fields(spec, LEXICON_FILE)
    return lexicon_from_spec(name, spec)


def _valid_message(status: Mapping[str, Any]) -> str:
    for condition in status.get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == "Valid":
            return str(condition.get("message") or "")
    return ""


def admitted_lexicon(document: Mapping[str, Any], previous: Known | None = None) -> Known:
    """What the service says requests with for a lexicon as the API server shows it."""
    meta = document.get("metadata") or {}
    name = lexicon_key(document).split("/", 1)[1]
    generation = meta.get("generation")
    status = document.get("status") or {}
    if generation is not None and status.get("acceptedGeneration") == generation:
        try:
            return lexicon_from_spec(name, document.get("spec") or {})
        except PolicyError as error:  # accepted under a looser parser: not said
            return Unavailable("LexiconInvalid", str(error))
    if status.get("observedGeneration") == generation:
        message = _valid_message(status) or "the operator did not accept it"
        return Unavailable("LexiconInvalid", message)
    if isinstance(previous, Lexicon):
        return previous  # the edit waits for the operator; say what it accepted before
    return Unavailable("LexiconPending", f"the operator has not accepted generation {generation}")


def resolved(entry: Entry, lexicons: Mapping[str, Known]) -> Entry:
    """``entry`` with the lexicons its policy names, in order, or refused for the first
    that is missing or unavailable (``lexicons`` is keyed ``namespace/name``)."""
    if not isinstance(entry, ServedPolicy) or entry.spec is None or not entry.spec.lexicons:
        return entry
    found: list[Lexicon] = []
    for name in entry.spec.lexicons:
        known = lexicons.get(f"{entry.namespace}/{name}")
        if known is None:
            message = f"lexicon {name} does not exist in namespace {entry.namespace}"
            return Refusal(entry.namespace, entry.name, "LexiconMissing", message)
        if isinstance(known, Unavailable):
            message = f"lexicon {name}: {known.message}"
            return Refusal(entry.namespace, entry.name, known.reason, message)
        found.append(known)
    return replace(entry, lexicons=tuple(found))


def missing(entries: list[Entry], lexicons: Mapping[str, Known]) -> list[str]:
    """``policy names lexicon`` for each lexicon a declared policy names and nobody declared."""
    return [
        f"policy {e.key} names lexicon {name}, which is not declared in its namespace"
        for e in entries
        if isinstance(e, ServedPolicy) and e.spec is not None
        for name in e.spec.lexicons
        if f"{e.namespace}/{name}" not in lexicons
    ]


def declared_lexicons(documents: list[dict[str, Any]]) -> dict[str, Known]:
    """The TempAudioLexicon documents among ``documents``, by ``namespace/name``."""
    lexicons: dict[str, Known] = {}
    for index, document in enumerate(documents):
        if not is_lexicon(document):
            continue
        try:
            key, lexicon = lexicon_key(document), declared_lexicon(document)
        except PolicyError as error:
            raise ConfigError(f"policy document {index + 1} (lexicon): {error}") from None
        if key in lexicons:
            raise ConfigError(f"lexicon {key} declared twice")
        lexicons[key] = lexicon
    return lexicons
