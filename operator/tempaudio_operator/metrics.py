"""The operator's Prometheus metrics: reconciles, policies by Ready status, cleanup runs,
and each policy's readiness and cleanups (what the chart's alerts watch).

The totals have bounded labels (outcomes and statuses). The per-policy series are labelled
``policy="namespace/name"``, as the service's are: a handful per policy, gone with it.

What an object cannot tell is kept in memory per policy: its latest cleanup seen (an older
body read later must not roll it back) and when its schedule or suspension last changed (a
new schedule gets its full intervals before TempAudioCleanupOverdue may fire).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import threading
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from tempaudio_api.cron import CronError, longest_gap

OUTCOMES = ("ready", "not_ready", "invalid", "not_allowed", "blocked", "error")
READY_STATUSES = ("True", "False", "Unknown")
RESULTS = ("succeeded", "failed")


@dataclass
class PolicyTrack:
    """What is remembered of one policy between observations."""

    seen: int = 0  # sequence number of its last observation
    created: float | None = None
    completed: float | None = None  # the latest cleanup's completionTime seen
    setting: tuple[object, bool] | None = None  # (schedule, suspend) last seen
    since: float | None = None  # when that setting was first seen; None: from the start

    def timestamp(self) -> float | None:
        """The last cleanup (the creation before the first), or the setting's change if
        later: what the overdue alert counts from."""
        times = [self.created if self.completed is None else self.completed, self.since]
        return max((t for t in times if t is not None), default=None)


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
    clock: Callable[[], float] = time.time
    _known: dict[str, PolicyTrack] = field(default_factory=dict)  # policies with series
    _forgotten: dict[str, int] = field(default_factory=dict)  # deleted: when
    _sequence: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, clock: Callable[[], float] = time.time) -> OperatorMetrics:
        registry = CollectorRegistry()
        metrics = cls(
            clock=clock,
            registry=registry,
            reconciles=Counter(
                "tempaudio_operator_reconciles",
                "Policy reconciles by outcome",
                ["outcome"],
                registry=registry,
            ),
            policies=Gauge(
                "tempaudio_operator_policies",
                "Watched policies by their Ready status",
                ["ready"],
                registry=registry,
            ),
            cleanups=Counter(
                "tempaudio_operator_cleanups",
                "Finished cleanup Jobs by result",
                ["result"],
                registry=registry,
            ),
            cleanup_deleted=Counter(
                "tempaudio_operator_cleanup_deleted_objects",
                "Objects deleted by cleanup Jobs (from their summaries)",
                registry=registry,
            ),
            policy_ready=Gauge(
                "tempaudio_operator_policy_ready",
                "1 while the policy's Ready condition is True, else 0",
                ["policy"],
                registry=registry,
            ),
            policy_cleanups=Counter(
                "tempaudio_operator_policy_cleanups",
                "Finished cleanup Jobs of the policy by result",
                ["policy", "result"],
                registry=registry,
            ),
            last_cleanup_time=Gauge(
                "tempaudio_operator_policy_last_cleanup_timestamp_seconds",
                "When the policy's last cleanup Job finished (its creation, before the first),"
                " or when its schedule or suspension last changed, if later",
                ["policy"],
                registry=registry,
            ),
            last_cleanup_succeeded=Gauge(
                "tempaudio_operator_policy_last_cleanup_succeeded",
                "1 when the policy's last cleanup Job succeeded, 0 when it failed",
                ["policy"],
                registry=registry,
            ),
            cleanup_interval=Gauge(
                "tempaudio_operator_policy_cleanup_interval_seconds",
                "Longest gap between two runs of the policy's schedule (none while suspended)",
                ["policy"],
                registry=registry,
            ),
        )
        for outcome in OUTCOMES:
            metrics.reconciles.labels(outcome)
        for status in READY_STATUSES:
            metrics.policies.labels(status)
        for result in RESULTS:
            metrics.cleanups.labels(result)
        return metrics

    def listing_started(self) -> int:
        """Call before listing the policies; hand the mark to ``observe_policies``."""
        return next(self._sequence)

    def observe_policies(
        self, policies: Iterable[Mapping[str, Any]], *, listed_at: int | None = None
    ) -> None:
        """From a listing of every watched policy, taken after ``listed_at``: the tally by
        Ready status and each policy's series. The series of a policy neither listed nor
        observed since go; a policy deleted since the listing stays gone."""
        listed = list(policies)
        mark = self.listing_started() if listed_at is None else listed_at
        self.count_policies(listed)
        with self._lock:
            for policy in listed:
                if self._forgotten.get(policy_key(policy), 0) <= mark:
                    self._observe(policy, None)
            keys = {policy_key(policy) for policy in listed}
            gone = [k for k, track in self._known.items() if k not in keys and track.seen <= mark]
            for key in [k for k, at in self._forgotten.items() if at <= mark]:
                del self._forgotten[key]
            for key in gone:
                self._forget(key)

    def observe_policy(self, policy: Mapping[str, Any], *, ready: bool | None = None) -> None:
        """A policy's series from its object; ``ready``: a reconcile's verdict just now
        (None: its Ready condition)."""
        with self._lock:
            self._forgotten.pop(policy_key(policy), None)
            self._observe(policy, ready)

    def _observe(self, policy: Mapping[str, Any], ready: bool | None) -> None:
        key = policy_key(policy)
        track = self._track(key)
        track.seen = next(self._sequence)
        if ready is None:
            ready = ready_status(policy) == "True"
        self.policy_ready.labels(key).set(int(ready))
        meta, status = policy.get("metadata") or {}, policy.get("status") or {}
        spec = policy.get("spec") or {}
        last = status.get("lastCleanup") or {}
        track.created = epoch(meta.get("creationTimestamp"))
        self._completed(key, track, epoch(last.get("completionTime")), last.get("succeeded"))
        setting = (spec.get("schedule"), bool(spec.get("suspend")))
        # First seen: counted from the last cleanup, unless the operator has yet to apply
        # this spec (it may have changed while the operator was away).
        if track.setting is None:
            changed = status.get("observedGeneration") != meta.get("generation")
        else:
            changed = setting != track.setting
        if changed:
            track.since = self.clock()
        track.setting = setting
        self._export_time(key, track)
        interval = None if setting[1] else schedule_gap(setting[0])
        if interval is None:
            _remove(self.cleanup_interval, key)
        else:
            self.cleanup_interval.labels(key).set(interval)

    def cleanup_finished(self, key: str, result: Mapping[str, Any]) -> None:
        """A cleanup Job of ``key`` finished: ``result`` as status.lastCleanup holds it."""
        succeeded = bool(result.get("succeeded"))
        label = RESULTS[0] if succeeded else RESULTS[1]
        with self._lock:
            track = self._track(key)
            self.cleanups.labels(label).inc()
            self.cleanup_deleted.inc(int(result.get("deleted") or 0))
            self.policy_cleanups.labels(key, label).inc()
            finished = epoch(result.get("completionTime"))
            if finished is None:
                self.last_cleanup_succeeded.labels(key).set(int(succeeded))
            self._completed(key, track, finished, succeeded)
            self._export_time(key, track)

    def _completed(self, key: str, track: PolicyTrack, finished: float | None, ok: object) -> None:
        """A cleanup's end and result, unless one that ended later is known already."""
        if finished is None or (track.completed is not None and finished < track.completed):
            return
        track.completed = finished
        if isinstance(ok, bool):
            self.last_cleanup_succeeded.labels(key).set(int(ok))

    def _export_time(self, key: str, track: PolicyTrack) -> None:
        timestamp = track.timestamp()
        if timestamp is not None:
            self.last_cleanup_time.labels(key).set(timestamp)

    def forget_policy(self, key: str) -> None:
        """The policy is gone: its series go, and a listing taken before stays ignored."""
        with self._lock:
            self._forget(key)

    def _forget(self, key: str) -> None:
        self._known.pop(key, None)
        self._forgotten[key] = next(self._sequence)
        for gauge in (
            self.policy_ready,
            self.last_cleanup_time,
            self.last_cleanup_succeeded,
            self.cleanup_interval,
        ):
            _remove(gauge, key)
        for result in RESULTS:
            _remove(self.policy_cleanups, key, result)

    def _track(self, key: str) -> PolicyTrack:
        """The policy's memory (under the lock); its counters start from zero, so
        increase() sees the first one."""
        track = self._known.get(key)
        if track is None:
            track = self._known[key] = PolicyTrack()
            for result in RESULTS:
                self.policy_cleanups.labels(key, result)
        return track

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
