"""The operator's Prometheus metrics: reconciles, policies by Ready status, cleanup runs,
and each policy's readiness and cleanups (what the chart's alerts watch).

The totals have bounded labels (outcomes and statuses). The per-policy series are labelled
``policy="namespace/name"``, as the service's are: a handful per policy, gone with it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections import Counter as Tally
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from tempaudio_api.cron import CronError, longest_gap

OUTCOMES = ("ready", "not_ready", "invalid", "not_allowed", "blocked", "error")
READY_STATUSES = ("True", "False", "Unknown")
RESULTS = ("succeeded", "failed")


@dataclass(frozen=True)
class OperatorMetrics:
    registry: CollectorRegistry
    reconciles: Counter
    policies: Gauge
    cleanups: Counter
    cleanup_deleted: Counter
    policy_ready: Gauge
    policy_cleanups: Counter
    last_cleanup_time: Gauge
    last_cleanup_succeeded: Gauge
    cleanup_interval: Gauge
    _known: set[str] = field(default_factory=set)  # policies with series
    _lock: threading.Lock = field(default_factory=threading.Lock)

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
            policy_ready=Gauge(
                "tempaudio_operator_policy_ready",
                "1 while the policy's Ready condition is True, else 0", ["policy"],
                registry=registry,
            ),
            policy_cleanups=Counter(
                "tempaudio_operator_policy_cleanups",
                "Finished cleanup Jobs of the policy by result", ["policy", "result"],
                registry=registry,
            ),
            last_cleanup_time=Gauge(
                "tempaudio_operator_policy_last_cleanup_timestamp_seconds",
                "When the policy's last cleanup Job finished (its creation, before the first)",
                ["policy"], registry=registry,
            ),
            last_cleanup_succeeded=Gauge(
                "tempaudio_operator_policy_last_cleanup_succeeded",
                "1 when the policy's last cleanup Job succeeded, 0 when it failed", ["policy"],
                registry=registry,
            ),
            cleanup_interval=Gauge(
                "tempaudio_operator_policy_cleanup_interval_seconds",
                "Longest gap between two runs of the policy's schedule (none while suspended)",
                ["policy"], registry=registry,
            ),
        )  # fmt: skip
        for outcome in OUTCOMES:
            metrics.reconciles.labels(outcome)
        for status in READY_STATUSES:
            metrics.policies.labels(status)
        for result in RESULTS:
            metrics.cleanups.labels(result)
        return metrics

    def observe_policies(self, policies: Iterable[Mapping[str, Any]]) -> None:
        """From a listing of every watched policy: the tally by Ready status and each
        policy's series; the series of a policy no longer listed go."""
        listed = list(policies)
        self.count_policies(listed)
        for policy in listed:
            self.observe_policy(policy)
        with self._lock:
            gone = self._known - {policy_key(policy) for policy in listed}
        for key in gone:
            self.forget_policy(key)

    def observe_policy(self, policy: Mapping[str, Any], *, ready: bool | None = None) -> None:
        """A policy's series from its object; ``ready``: a reconcile's verdict just now
        (None: its Ready condition)."""
        key = policy_key(policy)
        self._track(key)
        if ready is None:
            ready = ready_status(policy) == "True"
        self.policy_ready.labels(key).set(int(ready))
        status, spec = policy.get("status") or {}, policy.get("spec") or {}
        last = status.get("lastCleanup") or {}
        finished = epoch(last.get("completionTime"))
        if finished is None:
            finished = epoch((policy.get("metadata") or {}).get("creationTimestamp"))
        elif isinstance(last.get("succeeded"), bool):
            self.last_cleanup_succeeded.labels(key).set(int(last["succeeded"]))
        if finished is not None:
            self.last_cleanup_time.labels(key).set(finished)
        interval = None if spec.get("suspend") else schedule_gap(spec.get("schedule"))
        if interval is None:
            _remove(self.cleanup_interval, key)
        else:
            self.cleanup_interval.labels(key).set(interval)

    def cleanup_finished(self, key: str, result: Mapping[str, Any]) -> None:
        """A cleanup Job of ``key`` finished: ``result`` as status.lastCleanup holds it."""
        succeeded = bool(result.get("succeeded"))
        label = RESULTS[0] if succeeded else RESULTS[1]
        self._track(key)
        self.cleanups.labels(label).inc()
        self.cleanup_deleted.inc(int(result.get("deleted") or 0))
        self.policy_cleanups.labels(key, label).inc()
        self.last_cleanup_succeeded.labels(key).set(int(succeeded))
        finished = epoch(result.get("completionTime"))
        if finished is not None:
            self.last_cleanup_time.labels(key).set(finished)

    def forget_policy(self, key: str) -> None:
        with self._lock:
            self._known.discard(key)
        for gauge in (self.policy_ready, self.last_cleanup_time, self.last_cleanup_succeeded,
                      self.cleanup_interval):  # fmt: skip
            _remove(gauge, key)
        for result in RESULTS:
            _remove(self.policy_cleanups, key, result)

    def _track(self, key: str) -> None:
        with self._lock:
            if key in self._known:
                return
            self._known.add(key)
        for result in RESULTS:  # counted from zero, so increase() sees the first one
            self.policy_cleanups.labels(key, result)

    def count_policies(self, policies: Iterable[Mapping[str, Any]]) -> None:
        tally = Tally(ready_status(policy) for policy in policies)
        for status in READY_STATUSES:
            self.policies.labels(status).set(tally.get(status, 0))


def policy_key(policy: Mapping[str, Any]) -> str:
    meta = policy.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def epoch(timestamp: object) -> float | None:
    """Seconds since the epoch of an API timestamp ("2026-06-15T00:30:00Z"); None if none."""
    if isinstance(timestamp, datetime):
        return timestamp.timestamp()
    if not isinstance(timestamp, str):
        return None
    try:
        return datetime.fromisoformat(timestamp).timestamp()
    except ValueError:
        return None


@functools.lru_cache(maxsize=256)
def schedule_gap(schedule: object) -> float | None:
    """The longest gap of a cron schedule in seconds; None for none or an invalid one."""
    if not isinstance(schedule, str):
        return None
    try:
        return longest_gap(schedule).total_seconds()
    except CronError:
        return None


def _remove(metric: Gauge | Counter, *labels: str) -> None:
    with contextlib.suppress(KeyError):  # never exported
        metric.remove(*labels)


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
