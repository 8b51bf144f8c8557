"""The operator's Prometheus metrics: reconciles, policies by Ready status, cleanup runs.

Labels are bounded (outcomes and statuses, never policy or namespace names), so a cluster
with thousands of policies still has a handful of series.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

OUTCOMES = ("ready", "not_ready", "invalid", "not_allowed", "blocked", "error")
READY_STATUSES = ("True", "False", "Unknown")


@dataclass(frozen=True)
class OperatorMetrics:
    registry: CollectorRegistry
    reconciles: Counter
    policies: Gauge
    cleanups: Counter
    cleanup_deleted: Counter

    @classmethod
    def create(cls) -> OperatorMetrics:
        registry = CollectorRegistry()
        metrics = cls(
            registry=registry,
            reconciles=Counter(
                "tempaudio_operator_reconciles", "Policy reconciles by outcome", ["outcome"],
                registry=registry,
            ),
            policies=Gauge(
                "tempaudio_operator_policies", "Watched policies by their Ready status",
                ["ready"], registry=registry,
            ),
            cleanups=Counter(
                "tempaudio_operator_cleanups", "Finished cleanup Jobs by result", ["result"],
                registry=registry,
            ),
            cleanup_deleted=Counter(
                "tempaudio_operator_cleanup_deleted_objects",
                "Objects deleted by cleanup Jobs (from their summaries)", registry=registry,
            ),
        )  # fmt: skip
        for outcome in OUTCOMES:
            metrics.reconciles.labels(outcome)
        for status in READY_STATUSES:
            metrics.policies.labels(status)
        for result in ("succeeded", "failed"):
            metrics.cleanups.labels(result)
        return metrics

    def count_policies(self, policies: Iterable[Mapping[str, Any]]) -> None:
        tally = Tally(ready_status(policy) for policy in policies)
        for status in READY_STATUSES:
            self.policies.labels(status).set(tally.get(status, 0))


def ready_status(policy: Mapping[str, Any]) -> str:
    conditions = (policy.get("status") or {}).get("conditions") or []
    found = next((c.get("status") for c in conditions if c.get("type") == "Ready"), None)
    return found if found in READY_STATUSES else "Unknown"


def outcome_label(*, invalid: bool, refused: bool, blocked: bool, not_ready: bool) -> str:
    if refused:
        return "not_allowed"
    if invalid:
        return "invalid"
    if blocked:
        return "blocked"
    return "not_ready" if not_ready else "ready"
