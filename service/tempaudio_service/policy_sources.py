"""Where the served policies come from: the built-in one, a file, or the Kubernetes API.

Each source hands out a whole ``PolicyBook``; the Kubernetes source swaps in a new one
on every change it sees through its watch (least privilege: get/list/watch on
tempaudiopolicies in the namespaces served). An edit reaches new requests as soon as the
operator has accepted it and the watch delivers it, normally well within a second; the
watch restarts every ``WATCH_SECONDS``, and without contact for
``TEMPAUDIO_POLICY_MAX_STALENESS`` the service stops vouching for any policy (503).
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
from typing import Any, Protocol

import yaml

from tempaudio_api import GROUP, PLURAL, VERSION
from tempaudio_api.durations import format_duration
from tempaudio_api.errors import PolicyError

from .config import ConfigError
from .kube_client import api_client
from .policies import Entry, PolicyBook, Refusal, admitted, declared
from .settings import ServiceSettings

logger = logging.getLogger(__name__)
# The server ends each watch after this long; the next one starts at once.
WATCH_SECONDS = 60
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
    text = resources.files("tempaudio_service").joinpath("default-policy.yaml").read_text()
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
    spec["storage"] = {"bucket": settings.bucket, "prefix": settings.prefix,
                       "region": settings.region}  # fmt: skip
    spec["dynamodb"] = {"table": settings.table, "ttlAttribute": "ttl"}
    if settings.s3_endpoint_url:
        spec["storage"]["endpointURL"] = settings.s3_endpoint_url
    if settings.dynamodb_endpoint_url:
        spec["dynamodb"]["endpointURL"] = settings.dynamodb_endpoint_url
    if settings.default_policy and "/" not in settings.default_policy:
        document["metadata"]["name"] = settings.default_policy
    return document


def load_documents(path: Path) -> list[dict[str, Any]]:
    """Every TempAudioPolicy document of a YAML file (``---`` separates several)."""
    try:
        text = path.read_text(encoding="utf-8")
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ConfigError(f"policy file {path}: {str(error)[:300]}") from None
    if not documents or not all(isinstance(d, dict) for d in documents):
        raise ConfigError(f"policy file {path}: expected TempAudioPolicy documents")
    return documents


def declared_book(settings: ServiceSettings, documents: list[dict[str, Any]]) -> PolicyBook:
    entries: list[Entry] = []
    for index, document in enumerate(documents):
        try:
            entries.append(declared(document))
        except PolicyError as error:
            raise ConfigError(f"policy document {index + 1}: {error}") from None
    keys = [e.key for e in entries]
    if len(set(keys)) != len(keys):
        raise ConfigError(
            f"policies declared twice: {sorted({k for k in keys if keys.count(k) > 1})}"
        )
    if len(entries) > settings.max_policies:
        raise ConfigError(
            f"{len(entries)} policies; TEMPAUDIO_MAX_POLICIES is {settings.max_policies}"
        )
    book = PolicyBook.of(entries, default=_default(settings, entries))
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
    """List, then watch, the policies of each served namespace (one thread each)."""

    def __init__(self, settings: ServiceSettings, api_client: Any = None) -> None:
        self._settings = settings
        self._namespaces = settings.policy_namespaces or (own_namespace(),)
        self._api_client = api_client
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._entries: dict[str, Entry] = {}
        # Last contact per namespace; none yet reads as never (stale).
        self._contact: dict[str, float] = {}
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
            thread = threading.Thread(
                target=self._run, args=(namespace,), name=f"policies-{namespace}", daemon=True
            )
            thread.start()
        logger.info("watching TempAudioPolicies in %s", ", ".join(self._namespaces))

    def stop(self) -> None:
        self._stopping.set()

    # -- the watch thread ------------------------------------------------------------
    def _run(self, namespace: str) -> None:
        from kubernetes import client, watch
        from kubernetes.client.exceptions import ApiException

        api = client.CustomObjectsApi(self._api_client)
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                listing: Any = api.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, _request_timeout=30
                )
                self._relisted(namespace, listing.get("items") or [])
                version = listing["metadata"]["resourceVersion"]
                backoff = 1.0
                while not self._stopping.is_set():
                    stream = watch.Watch()  # type: ignore[no-untyped-call]
                    for event in stream.stream(  # type: ignore[no-untyped-call]
                        api.list_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL,
                        resource_version=version, timeout_seconds=WATCH_SECONDS,
                        allow_watch_bookmarks=True, _request_timeout=WATCH_SECONDS + 30,
                    ):  # fmt: skip
                        self._event(namespace, event["type"], event["object"])
                    version = stream.resource_version or version
                    self._touch(namespace)
            except ApiException as error:
                if error.status != 410:  # 410: the version is too old; list again
                    logger.warning(
                        "policy watch in %s: %s %s", namespace, error.status, error.reason
                    )
                    self._stopping.wait(backoff)
                    backoff = min(30.0, backoff * 2)
            except Exception as error:  # noqa: BLE001 - a watch must outlive any one failure
                logger.warning("policy watch in %s failed: %s", namespace, error)
                self._stopping.wait(backoff)
                backoff = min(30.0, backoff * 2)

    def _relisted(self, namespace: str, items: list[Mapping[str, Any]]) -> None:
        with self._lock:
            keep = {k: e for k, e in self._entries.items() if e.namespace != namespace}
            for item in items:
                entry = self._admit(item)
                if entry is not None:
                    keep[entry.key] = entry
            self._entries = keep
            self._contact[namespace] = time.monotonic()
            self._publish()

    def _event(self, namespace: str, kind: str, document: Mapping[str, Any]) -> None:
        with self._lock:
            if kind in {"ADDED", "MODIFIED"}:
                entry = self._admit(document)
                if entry is not None:
                    self._entries[entry.key] = entry
            elif kind == "DELETED":
                meta = document.get("metadata") or {}
                gone = self._entries.pop(f"{meta.get('namespace')}/{meta.get('name')}", None)
                if gone is not None:
                    logger.info("policy %s deleted: no longer served", gone.key)
            self._contact[namespace] = time.monotonic()
            self._publish()

    def _touch(self, namespace: str) -> None:
        with self._lock:
            self._contact[namespace] = time.monotonic()
            self._publish()

    def _admit(self, document: Mapping[str, Any]) -> Entry | None:
        meta = document.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        before = self._entries.get(key)
        try:
            entry = admitted(document, before)
        except PolicyError:
            return None  # no name: not an object the API server would hold
        if before != entry:
            state = "served" if not isinstance(entry, Refusal) else f"refused ({entry.reason})"
            logger.info("policy %s: %s", key, state)
        return entry

    def _publish(self) -> None:
        """Swap in the new book (requests read it without a lock)."""
        served = _capped(self._entries.values(), self._settings.max_policies)
        synced = (
            min(self._contact.values())
            if len(self._contact) == len(self._namespaces)
            else -math.inf
        )
        self._book = replace(self._book, entries=PolicyBook.of(served).entries, synced_at=synced)


def policy_source(settings: ServiceSettings) -> PolicySource:
    if settings.policy_source == "kubernetes":
        return KubernetesPolicies(settings)
    return static_source(settings)
