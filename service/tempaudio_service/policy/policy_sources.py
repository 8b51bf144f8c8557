"""Where the served policies come from: the built-in one, a file, or the Kubernetes API.

Each source hands out a whole ``PolicyBook``; the Kubernetes source swaps in a new one
on every change it sees through its watches (least privilege: get/list/watch on
tempaudiopolicies and tempaudiolexicons in the namespaces served). An edit of either
reaches new requests as soon as the operator has accepted it and the watch delivers it,
normally well within a second; each watch restarts every ``watches.WATCH_SECONDS``, and
without contact for ``TEMPAUDIO_POLICY_MAX_STALENESS`` the service stops vouching for any
policy (503). A file may hold TempAudioLexicon documents beside its policies.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import yaml

from tempaudio_api import PLURAL
from tempaudio_api.durations import format_duration
from tempaudio_api.errors import PolicyError
from tempaudio_api.lexicon import Lexicon
from tempaudio_api.lexicon_rules import PLURAL as LEXICONS
from tempaudio_api.voice import is_voice, voice_documents
from tempaudio_api.voice_rules import PLURAL as VOICES
from tempaudio_service.core.config import ConfigError
from tempaudio_service.core.declared_voices import DeclaredVoice
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.policy.kube_client import api_client
from tempaudio_service.policy.lexicons import (
    Known,
    Unavailable,
    admitted_lexicon,
    declared_lexicons,
    is_lexicon,
    missing,
    resolved,
)
from tempaudio_service.policy.policies import (
    DEFAULT_NAMESPACE,
    Entry,
    PolicyBook,
    Refusal,
    admitted,
    declared,
)
from tempaudio_service.policy.voices import admitted_voice, declared_voice
from tempaudio_service.policy.watches import follow

logger = logging.getLogger(__name__)
WATCHED = (PLURAL, LEXICONS, VOICES)
OPTIONAL = frozenset({LEXICONS, VOICES})  # older releases' clusters lack their CRDs
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class PolicySource(Protocol):
    def current(self) -> PolicyBook: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class StaticPolicies:
    """A declaration read once at start: the built-in policy or a file."""

    def __init__(self, book: PolicyBook) -> None:
        self._book = book

    def current(self) -> PolicyBook:
        return self._book

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def _capped(entries: Iterable[Entry], limit: int) -> list[Entry]:
    """The first ``limit`` policies by key are served; the rest are refused, visibly."""
    ordered = sorted(entries, key=lambda e: e.key)
    refused = [
        Refusal(e.namespace, e.name, "TooManyPolicies", f"this service serves at most {limit}")
        for e in ordered[limit:]
    ]
    return ordered[:limit] + refused


def _default(settings: ServiceSettings, entries: list[Entry]) -> str | None:
    if settings.default_policy is not None:
        return settings.default_policy
    return entries[0].key if len(entries) == 1 else None


def builtin_document() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("default-policy.yaml").read_text()
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def shorthand_document(settings: ServiceSettings) -> dict[str, Any]:
    """The built-in policy with the ``TEMPAUDIO_*`` shorthand applied."""
    document = builtin_document()
    spec = document["spec"]
    spec["retention"] = format_duration(settings.retention)
    # Nothing runs a cleanup here; the schedule only has to suit the retention.
    if settings.retention.total_seconds() < 15 * 60:
        spec["schedule"] = "* * * * *"
    spec["storage"] = {
        "bucket": settings.bucket,
        "prefix": settings.prefix,
        "region": settings.region,
    }
    spec["dynamodb"] = {"table": settings.table, "ttlAttribute": "ttl"}
    if settings.s3_endpoint_url:
        spec["storage"]["endpointURL"] = settings.s3_endpoint_url
    if settings.dynamodb_endpoint_url:
        spec["dynamodb"]["endpointURL"] = settings.dynamodb_endpoint_url
    if settings.default_policy and "/" not in settings.default_policy:
        document["metadata"]["name"] = settings.default_policy
    return document


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every TempAudioPolicy (and TempAudioLexicon) document of a YAML file (``---``
    separates several)."""
    try:
        text = path.read_text(encoding="utf-8")
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"policy file {path}: {str(error)[:300]}") from None
    if not documents or not all(isinstance(d, dict) for d in documents):
        raise ConfigError(f"policy file {path}: expected TempAudioPolicy documents")
    return documents


def declared_voices(documents: list[dict[str, Any]]) -> dict[str, DeclaredVoice]:
    """A file's TempAudioVoices, as written (the service verifies each when first used)."""
    try:
        found = voice_documents(documents, DEFAULT_NAMESPACE)
    except PolicyError as error:
        raise ConfigError(f"policy file: {error}") from None
    return {key: declared_voice(voice) for key, voice in found.items()}


def declared_book(settings: ServiceSettings, documents: list[dict[str, Any]]) -> PolicyBook:
    lexicons = declared_lexicons(documents)
    voices = declared_voices(documents)
    entries: list[Entry] = []
    for index, document in enumerate(documents):
        if is_lexicon(document) or is_voice(document):
            continue
        try:
            entries.append(declared(document))
        except PolicyError as error:
            raise ConfigError(f"policy document {index + 1}: {error}") from None
    if not entries:
        raise ConfigError("no TempAudioPolicy documents: lexicons alone serve nothing")
    unknown = missing(entries, lexicons)
    if unknown:
        raise ConfigError("; ".join(unknown))
    entries = [resolved(entry, lexicons) for entry in entries]
    keys = [e.key for e in entries]
    if len(set(keys)) != len(keys):
        raise ConfigError(
            f"policies declared twice: {sorted({k for k in keys if keys.count(k) > 1})}"
        )
    if len(entries) > settings.max_policies:
        raise ConfigError(
            f"{len(entries)} policies; TEMPAUDIO_MAX_POLICIES is {settings.max_policies}"
        )
    book = PolicyBook.of(
        entries, default=_default(settings, entries), voices=MappingProxyType(voices)
    )
    if book.default is not None:
        try:
            book.find(None)
        except Exception as error:  # noqa: BLE001 - UnknownPolicy, as a start-up error
            raise ConfigError(f"TEMPAUDIO_DEFAULT_POLICY: {error}") from None
    return book


def static_source(settings: ServiceSettings) -> StaticPolicies:
    """The env or file source, validated now: a bad declaration stops the start."""
    if settings.policy_source == "file":
        assert settings.policy_file is not None
        documents = load_documents(settings.policy_file)
    else:
        documents = [shorthand_document(settings)]
    return StaticPolicies(declared_book(settings, documents))


def own_namespace() -> str:
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip()
    except OSError:
        raise ConfigError(
            "TEMPAUDIO_POLICY_NAMESPACES is required outside a pod (no service account namespace)"
        ) from None


class KubernetesPolicies:
    """List, then watch, the policies and lexicons of each served namespace (a thread each)."""

    def __init__(self, settings: ServiceSettings, api_client: Any = None) -> None:
        self._settings = settings
        self._namespaces = settings.policy_namespaces or (own_namespace(),)
        self._api_client = api_client
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._entries: dict[str, Entry] = {}  # as admitted, lexicons unresolved
        self._lexicons: dict[str, Known] = {}
        self._voices: dict[str, DeclaredVoice] = {}
        # Last contact per (namespace, resource); none yet reads as never (stale).
        self._contact: dict[tuple[str, str], float] = {}
        self._book = PolicyBook(
            default=settings.default_policy,
            synced_at=-math.inf,
            max_staleness_seconds=settings.policy_max_staleness_seconds,
        )

    def current(self) -> PolicyBook:
        return self._book

    def start(self) -> None:
        if self._api_client is None:
            self._api_client = api_client()
        for namespace in self._namespaces:
            for plural in WATCHED:
                thread = threading.Thread(
                    target=follow,
                    args=(self._api_client, namespace, plural, self, self._stopping),
                    kwargs={"optional": plural in OPTIONAL},
                    name=f"{plural}-{namespace}",
                    daemon=True,
                )
                thread.start()
        logger.info(
            "watching TempAudioPolicies, TempAudioLexicons and TempAudioVoices in %s",
            ", ".join(self._namespaces),
        )

    def stop(self) -> None:
        self._stopping.set()

    # -- the watch threads' sink (watches.Sink) ---------------------------------------
    def relisted(self, namespace: str, plural: str, items: list[Mapping[str, Any]]) -> None:
        with self._lock:
            known = self._known(plural)
            keep = {k: e for k, e in known.items() if not k.startswith(f"{namespace}/")}
            for item in items:
                self._admit(plural, item, keep)
            if plural == PLURAL:
                self._entries = keep
            elif plural == VOICES:
                self._voices = keep
            else:
                self._lexicons = keep
            self._contact[(namespace, plural)] = time.monotonic()
            self._publish()

    def changed(self, namespace: str, plural: str, kind: str, document: Mapping[str, Any]) -> None:
        with self._lock:
            known = self._known(plural)
            if kind in {"ADDED", "MODIFIED"}:
                self._admit(plural, document, known)
            elif kind == "DELETED":
                meta = document.get("metadata") or {}
                key = f"{meta.get('namespace')}/{meta.get('name')}"
                if known.pop(key, None) is not None:
                    logger.info("%s %s deleted: no longer served", plural, key)
            self._contact[(namespace, plural)] = time.monotonic()
            self._publish()

    def touched(self, namespace: str, plural: str) -> None:
        with self._lock:
            self._contact[(namespace, plural)] = time.monotonic()
            self._publish()

    def _known(self, plural: str) -> dict[str, Any]:
        if plural == PLURAL:
            return self._entries
        return self._voices if plural == VOICES else self._lexicons

    def _admit(self, plural: str, document: Mapping[str, Any], known: dict[str, Any]) -> None:
        """``document`` as the service serves it, into ``known`` (logged when it changes)."""
        meta = document.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        before = known.get(key)
        try:
            if plural == PLURAL:
                entry: Entry | Known | DeclaredVoice = admitted(document, before)
            elif plural == VOICES:
                entry = admitted_voice(document)
            else:
                entry = admitted_lexicon(document, before)
        except PolicyError:
            return  # no name: not an object the API server would hold
        known[key] = entry
        if before != entry:
            if isinstance(entry, Lexicon):
                state = f"version {entry.version}"
            elif isinstance(entry, DeclaredVoice):
                state = "ready" if entry.ready else f"not ready ({entry.reason})"
            elif isinstance(entry, Refusal | Unavailable):
                state = f"refused ({entry.reason})"
            else:
                state = "served"
            logger.info("%s %s: %s", plural, key, state)

    def _publish(self) -> None:
        """Swap in the new book (requests read it without a lock): each policy with its
        lexicons resolved, or refused while one is missing."""
        entries = [resolved(entry, self._lexicons) for entry in self._entries.values()]
        served = _capped(entries, self._settings.max_policies)
        watched = len(self._namespaces) * len(WATCHED)
        synced = min(self._contact.values()) if len(self._contact) == watched else -math.inf
        self._book = replace(
            self._book,
            entries=PolicyBook.of(served).entries,
            synced_at=synced,
            voices=MappingProxyType(dict(self._voices)),
        )


def policy_source(settings: ServiceSettings) -> PolicySource:
    if settings.policy_source == "kubernetes":
        return KubernetesPolicies(settings)
    return static_source(settings)
