"""Who may use a policy: its clients, its readers and its quotas (pure).

``spec.clients`` names the ServiceAccounts that may synthesize into the policy,
``spec.readers`` those that may also read audio others made under it, ``spec.quotas`` what
one caller may ask for. The operator parses them (an invalid selector is reported in the
policy's status); the service evaluates them per request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .errors import PolicyError

# RFC 1123 label (a namespace) and subdomain (a ServiceAccount), as Kubernetes validates them.
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
# A label key: an optional DNS-subdomain prefix and a name of at most 63 characters.
_KEY_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
MAX_RULES = 64


@dataclass(frozen=True)
class Caller:
    """A ServiceAccount, as the API server vouched for it."""

    namespace: str
    service_account: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.service_account}"

    @classmethod
    def from_username(cls, username: str) -> Caller | None:
        """``system:serviceaccount:<namespace>:<name>``; None for any other user."""
        parts = username.split(":")
        if len(parts) != 4 or parts[:2] != ["system", "serviceaccount"] or not all(parts[2:]):
            return None
        return cls(parts[2], parts[3])


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        present = self.key in labels and labels[self.key] in self.values
        return present if self.operator == "In" else not present


@dataclass(frozen=True)
class LabelSelector:
    """Kubernetes' label selector: every matchLabels pair and every expression must hold."""

    match_labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    match_expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            r.matches(labels) for r in self.match_expressions
        )


@dataclass(frozen=True)
class ClientRule:
    """A namespace by name or by its labels, and optionally one ServiceAccount in it."""

    namespace: str | None = None
    namespace_selector: LabelSelector | None = None
    service_account: str | None = None

    def admits(self, caller: Caller, namespace_labels: Mapping[str, str] | None) -> bool:
        """``namespace_labels`` is needed only by a selector (``needs_labels``)."""
        if self.service_account is not None and caller.service_account != self.service_account:
            return False
        if self.namespace is not None:
            return caller.namespace == self.namespace
        assert self.namespace_selector is not None
        return namespace_labels is not None and self.namespace_selector.matches(namespace_labels)

    @property
    def needs_labels(self) -> bool:
        return self.namespace_selector is not None


@dataclass(frozen=True)
class Quotas:
    """Per caller, per policy; None: no limit."""

    requests_per_minute: int | None = None
    audio_seconds_per_hour: int | None = None


@dataclass(frozen=True)
class Access:
    """None for clients: any caller (the service authenticates, or authenticates none)."""

    clients: tuple[ClientRule, ...] | None = None
    readers: tuple[ClientRule, ...] = ()
    quotas: Quotas = field(default_factory=Quotas)

    @property
    def needs_labels(self) -> bool:
        """Some rule selects namespaces by label: the caller's labels must be read."""
        return any(r.needs_labels for r in (*(self.clients or ()), *self.readers))

    def admits_client(self, caller: Caller | None, labels: Mapping[str, str] | None) -> bool:
        """May ``caller`` synthesize into the policy? None is an unauthenticated service's
        caller: it may only where the policy names no clients."""
        if self.clients is None:
            return True
        return caller is not None and any(r.admits(caller, labels) for r in self.clients)

    def admits_reader(
        self, caller: Caller | None, owner: str | None, labels: Mapping[str, str] | None
    ) -> bool:
        """May ``caller`` read audio that ``owner`` (a caller key, None: unrecorded) made?"""
        if caller is None:
            return owner is None
        return owner == caller.key or any(r.admits(caller, labels) for r in self.readers)


def _selector(value: Any, where: str) -> LabelSelector:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where} must be a label selector (matchLabels, matchExpressions)")
    unknown = set(value) - {"matchLabels", "matchExpressions"}
    if unknown:
        raise PolicyError(f"{where} has unknown fields {sorted(unknown)}")
    labels = _match_labels(value.get("matchLabels") or {}, f"{where}.matchLabels")
    expressions = tuple(
        _requirement(expression, f"{where}.matchExpressions[{index}]")
        for index, expression in enumerate(value.get("matchExpressions") or [])
    )
    if not labels and not expressions:
        raise PolicyError(f"{where} is empty: it would select every namespace; say so with Exists")
    return LabelSelector(MappingProxyType(labels), expressions)


def _match_labels(labels: Any, at: str) -> dict[str, str]:
    if not isinstance(labels, Mapping):
        raise PolicyError(f"{at} must map label keys to values")
    for key, text in labels.items():
        _label_key(str(key), at)
        if not isinstance(text, str) or not _VALUE.match(text):
            raise PolicyError(f"{at}[{key!r}]: {str(text)[:70]!r} is not a label value")
    return dict(labels)


def _requirement(expression: Any, at: str) -> Requirement:
    if not isinstance(expression, Mapping):
        raise PolicyError(f"{at} must have key, operator and values")
    key = _label_key(str(expression.get("key", "")), at)
    operator = expression.get("operator")
    if operator not in _OPERATORS:
        raise PolicyError(f"{at}.operator {str(operator)[:20]!r} must be one of {_OPERATORS}")
    values = expression.get("values") or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise PolicyError(f"{at}.values must be a list of strings")
    if operator in ("In", "NotIn") and not values:
        raise PolicyError(f"{at}: {operator} needs at least one value")
    if operator in ("Exists", "DoesNotExist") and values:
        raise PolicyError(f"{at}: {operator} takes no values")
    return Requirement(key, operator, tuple(values))


def _label_key(key: str, where: str) -> str:
    prefix, _, name = key.rpartition("/")
    if not _KEY_NAME.match(name) or (prefix and not _SUBDOMAIN.match(prefix)):
        raise PolicyError(f"{where}: {key[:80]!r} is not a label key")
    return key


def _rules(value: Any, where: str) -> tuple[ClientRule, ...]:
    if not isinstance(value, list):
        raise PolicyError(
            f"{where} must be a list of {{namespace | namespaceSelector, serviceAccount}}"
        )
    if len(value) > MAX_RULES:
        raise PolicyError(f"{where} has {len(value)} entries; at most {MAX_RULES}")
    rules = []
    for index, entry in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(entry, Mapping):
            raise PolicyError(f"{at} must be an object")
        unknown = set(entry) - {"namespace", "namespaceSelector", "serviceAccount"}
        if unknown:
            raise PolicyError(f"{at} has unknown fields {sorted(unknown)}")
        if ("namespace" in entry) == ("namespaceSelector" in entry):
            raise PolicyError(f"{at} needs exactly one of namespace and namespaceSelector")
        namespace = entry.get("namespace")
        if namespace is not None and not _LABEL.match(str(namespace)):
            raise PolicyError(f"{at}.namespace {str(namespace)[:70]!r} is not a namespace name")
        account = entry.get("serviceAccount")
        if account is not None and not _SUBDOMAIN.match(str(account)):
            raise PolicyError(
                f"{at}.serviceAccount {str(account)[:70]!r} is not a ServiceAccount name"
            )
        selector = entry.get("namespaceSelector")
        rules.append(
            ClientRule(
                namespace=None if namespace is None else str(namespace),
                namespace_selector=None
                if selector is None
                else _selector(selector, f"{at}.namespaceSelector"),
                service_account=None if account is None else str(account),
            )
        )
    return tuple(rules)


def _limit(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PolicyError(f"{where} {str(value)[:20]!r} must be a whole number of at least 1")
    return value


def parse_access(spec: Mapping[str, Any]) -> Access:
    quotas = spec.get("quotas") or {}
    if not isinstance(quotas, Mapping):
        raise PolicyError("quotas must be an object (requestsPerMinute, audioSecondsPerHour)")
    clients = spec.get("clients")
    return Access(
        clients=None if clients is None else _rules(clients, "clients"),
        readers=_rules(spec.get("readers") or [], "readers"),
        quotas=Quotas(
            requests_per_minute=_limit(quotas.get("requestsPerMinute"), "quotas.requestsPerMinute"),
            audio_seconds_per_hour=_limit(
                quotas.get("audioSecondsPerHour"), "quotas.audioSecondsPerHour"
            ),
        ),
    )
