"""The TempAudioPolicies the service serves, and which one a request gets (pure).

A TempAudioPolicy is the one declaration of where audio lives and for how long: the
service signs URLs and writes ``ttl`` from it, the operator's cleanup, TTL and lifecycle
rule enforce it. The spec is read by the policy API's parser (``tempaudio_api.policy``), as the operator
reads it, so the two programs cannot read one object two ways.

On Kubernetes the operator is the gate. The service serves a generation only once the
operator has accepted it (``status.acceptedGeneration``: the spec is valid and allowed),
and signs with the retention the operator has recorded (``status.retentionHistory``),
so it never promises a retention the cleanup does not enforce yet. While an edit waits
for the operator, the generation accepted before it is served. Without Kubernetes (a
file, or the ``TEMPAUDIO_*`` shorthand) the declaration is taken as it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from tempaudio_api.access import Access
from tempaudio_api.durations import format_duration, parse_retention
from tempaudio_api.errors import PolicyError
from tempaudio_api.lexicon import Lexicon
from tempaudio_api.policy import Policy
from tempaudio_api.schema import check_fields
from tempaudio_service.core.declared_voices import DeclaredVoice
from tempaudio_service.core.errors import PolicyNotReady, PolicyStale, UnknownPolicy
from tempaudio_service.core.locations import Storage

# The namespace of a policy declared without one (a file, the shorthand).
DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class ServedPolicy:
    namespace: str
    name: str
    retention: timedelta
    storage: Storage
    ttl_attribute: str = "ttl"
    generation: int | None = None
    # spec.repeatCache: identical requests may reuse earlier audio (repeat_cache.py).
    repeat_cache: bool = True
    # spec.clients, spec.readers, spec.quotas (tempaudio_api.access).
    access: Access = field(default_factory=Access)
    # The whole parsed spec: a new policy field reaches the service through it, with no
    # copy made here (its retention is the one above, which the operator recorded).
    # (Not compared: the fields above say what is served; the generation, what changed.)
    spec: Policy | None = field(default=None, compare=False)
    # spec.lexicons resolved, in order: what every request is said with (lexicons.py).
    lexicons: tuple[Lexicon, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Refusal:
    """A policy the service knows of but does not serve now, and why."""

    namespace: str
    name: str
    reason: str
    message: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


Entry = ServedPolicy | Refusal


def _identity(document: Mapping[str, Any], default_namespace: str) -> tuple[str, str, int | None]:
    meta = document.get("metadata") or {}
    name = str(meta.get("name") or "")
    if not name:
        raise PolicyError("the policy has no metadata.name")
    generation = meta.get("generation")
    return (
        str(meta.get("namespace") or default_namespace),
        name,
        generation if isinstance(generation, int) else None,
    )


def _served(policy: Policy, retention: timedelta, generation: int | None) -> ServedPolicy:
    return ServedPolicy(
        namespace=policy.namespace,
        name=policy.name,
        retention=retention,
        storage=Storage(
            bucket=policy.bucket,
            prefix=policy.prefix,
            region=policy.region,
            table=policy.table,
            s3_endpoint_url=policy.endpoint_url,
            dynamodb_endpoint_url=policy.dynamodb_endpoint_url,
            key_schema=policy.key_schema,
            ttl_attribute=policy.ttl_attribute,
        ),
        ttl_attribute=policy.ttl_attribute,
        generation=generation,
        repeat_cache=policy.repeat_cache,
        access=policy.access,
        spec=policy,
    )


def declared(document: Mapping[str, Any], default_namespace: str = DEFAULT_NAMESPACE) -> Entry:
    """A policy taken as written (no operator in between): a file, or the shorthand."""
    if document.get("kind") != "TempAudioPolicy":
        raise PolicyError(f"kind {str(document.get('kind'))[:40]!r} is not TempAudioPolicy")
    namespace, name, generation = _identity(document, default_namespace)
    spec = document.get("spec") or {}
    check_fields(spec)  # no API server has pruned or refused its unknown fields
    policy = Policy.from_spec(spec, name=name, namespace=namespace)
    return _served(policy, policy.retention, generation)


def _recorded_retention(status: Mapping[str, Any]) -> timedelta | None:
    """The current retention as the operator recorded it (the last, unended period)."""
    history = status.get("retentionHistory")
    if not isinstance(history, list) or not history or not isinstance(history[-1], Mapping):
        return None
    current = history[-1]
    if current.get("ended"):
        return None
    try:
        return parse_retention(str(current.get("retention") or ""))
    except PolicyError:
        return None


def _ready_message(status: Mapping[str, Any]) -> tuple[str, str]:
    for condition in status.get("conditions") or ():
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return str(condition.get("reason") or "NotReady"), str(condition.get("message") or "")
    return "NotReady", ""


def admitted(document: Mapping[str, Any], previous: Entry | None = None) -> Entry:
    """What the service serves for a policy as the API server shows it (operator-gated)."""
    namespace, name, generation = _identity(document, DEFAULT_NAMESPACE)
    if (document.get("metadata") or {}).get("deletionTimestamp"):
        # Deleted, held only by the operator's finalizer: refused at once.
        return Refusal(namespace, name, "Deleting", "the policy is being deleted")
    status = document.get("status") or {}
    accepted = status.get("acceptedGeneration")
    retention = _recorded_retention(status)
    if generation is not None and accepted == generation and retention is not None:
        try:
            policy = Policy.from_spec(document.get("spec") or {}, name=name, namespace=namespace)
        except PolicyError as error:  # accepted under a looser parser: not served
            return Refusal(namespace, name, "InvalidSpec", str(error))
        return _served(policy, retention, generation)
    if status.get("observedGeneration") == generation:
        reason, message = _ready_message(status)
        return Refusal(namespace, name, reason, message or "the operator did not accept it")
    if isinstance(previous, ServedPolicy):
        return previous  # the edit waits for the operator; serve what it accepted before
    return Refusal(
        namespace,
        name,
        "Pending",
        f"the operator has not accepted generation {generation} yet",
    )


@dataclass(frozen=True)
class PolicyBook:
    """Every policy the service knows, at one moment; swapped whole on every change."""

    entries: Mapping[str, Entry] = field(default_factory=lambda: MappingProxyType({}))
    # Policy a request without "policy" gets: "name" or "namespace/name"; None: none.
    default: str | None = None
    # time.monotonic() of the last contact with the source; None: a static declaration.
    synced_at: float | None = None
    max_staleness_seconds: float = 300.0
    # Declared voices (TempAudioVoice) by namespace/name, with the operator's verdicts.
    voices: Mapping[str, DeclaredVoice] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, entries: Iterable[Entry], **fields: Any) -> PolicyBook:
        return cls(entries=MappingProxyType({e.key: e for e in entries}), **fields)

    def stale_for(self, now: float) -> float | None:
        """Seconds past the staleness bound (None: fresh, or a static declaration)."""
        if self.synced_at is None:
            return None
        overdue = now - self.synced_at - self.max_staleness_seconds
        return overdue if overdue > 0 else None

    def age(self, now: float) -> float:
        """Seconds since the last contact with the source (0 for a static declaration)."""
        return 0.0 if self.synced_at is None else max(0.0, now - self.synced_at)

    def find(self, requested: str | None) -> Entry:
        """The entry a name refers to: ``name`` (unique among namespaces) or ``ns/name``."""
        wanted = requested if requested is not None else self.default
        if wanted is None:
            raise UnknownPolicy("this service has no default policy: name one with 'policy'")
        if "/" in wanted:
            entry = self.entries.get(wanted)
            matches = [entry] if entry is not None else []
        else:
            matches = [e for e in self.entries.values() if e.name == wanted]
        if len(matches) > 1:
            spelled = ", ".join(sorted(e.key for e in matches))
            raise UnknownPolicy(f"policy {wanted!r} is ambiguous: name one of {spelled}")
        if not matches:
            known = ", ".join(sorted(self.entries)) or "none"
            raise UnknownPolicy(f"unknown policy {wanted[:80]!r}; served: {known}")
        return matches[0]

    def resolve(self, requested: str | None, now: float) -> ServedPolicy:
        """The policy a request gets; its errors say what to do about it."""
        entry = self.find(requested)
        if isinstance(entry, Refusal):
            raise PolicyNotReady(
                f"policy {entry.key} is not ready ({entry.reason}): {entry.message}"
            )
        if self.stale_for(now) is not None:
            raise PolicyStale(self.stale_message(entry.key))
        return entry

    def stale_message(self, key: str) -> str:
        if self.synced_at == -math.inf:
            return f"the service has not listed its policies yet, so it cannot vouch for {key}"
        return (
            f"the service has not heard from the Kubernetes API for over"
            f" {self.max_staleness_seconds:g} s, so it cannot vouch for policy {key}"
        )

    def listing(self, now: float) -> dict[str, Any]:
        """``GET /policies``: what the service serves and with which retention."""
        try:
            default: str | None = self.find(None).key
        except UnknownPolicy:
            default = None
        stale = self.stale_for(now) is not None
        rows = []
        for key in sorted(self.entries):
            entry = self.entries[key]
            row: dict[str, Any] = {"name": entry.name, "namespace": entry.namespace}
            if isinstance(entry, ServedPolicy):
                row.update(
                    ready=not stale,
                    retention=format_duration(entry.retention),
                    bucket=entry.storage.bucket,
                    prefix=entry.storage.prefix,
                    table=entry.storage.table,
                    ttl_attribute=entry.ttl_attribute,
                    generation=entry.generation,
                    repeat_cache=entry.repeat_cache,
                    repeat_cache_scope=(
                        entry.spec.repeat_cache_scope if entry.spec is not None else "Caller"
                    ),
                    key_schema=entry.storage.key_schema,
                    names_clients=entry.access.clients is not None,
                    quotas=asdict(entry.access.quotas),
                    lexicons=[{"name": x.name, "version": x.version} for x in entry.lexicons],
                )
                if stale:
                    row.update(reason="Stale", message=self.stale_message(key))
            else:
                row.update(ready=False, reason=entry.reason, message=entry.message)
            row["default"] = key == default
            rows.append(row)
        return {"default": default, "policies": rows}
