"""What one reconcile reports: the conditions it sets (warning once per transition), the
Events it posts, and the status it writes, or why it stopped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tempaudio_api.errors import PolicyError

from . import aws
from .metrics import outcome_label
from .status import set_condition


@dataclass
class Event:
    type: str
    reason: str
    message: str


@dataclass
class Outcome:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    invalid: PolicyError | None = None
    not_ready: aws.AwsNotReady | None = None
    # The CronJob could not be applied for a reason that may pass (a name conflict, the API
    # server failing): retried after the drift interval, reported meanwhile.
    blocked: str | None = None
    # The policy's namespace is being deleted: nothing to write, nothing to retry.
    terminating: bool = False

    @property
    def label(self) -> str:
        """The bounded outcome label of the operator's reconcile counter."""
        reason = next(
            (c.get("reason") for c in self.status.get("conditions", []) if c["type"] == "Ready"),
            None,
        )
        if reason == "ReconcileError":
            return "error"
        return outcome_label(
            invalid=self.invalid is not None and reason != "NotAllowed",
            refused=reason == "NotAllowed",
            blocked=self.blocked is not None,
            not_ready=self.not_ready is not None,
        )


class Conditions:
    """Accumulates condition changes; warns once per transition, not on every retry."""

    def __init__(self, current: list[dict[str, Any]], generation: int | None, now: datetime):
        self.previous = {c.get("type"): c for c in current}
        self.items = current
        self.generation = generation
        self.now = now
        self.events: list[Event] = []
        self.not_ready: aws.AwsNotReady | None = None

    @classmethod
    def of(cls, body: Mapping[str, Any], now: datetime | None) -> Conditions:
        """The policy's current conditions, to be updated at ``now`` (default: the clock)."""
        return cls(
            list((body.get("status") or {}).get("conditions") or []),
            body["metadata"].get("generation"),
            now or datetime.now(UTC),
        )

    def set(
        self,
        type_: str,
        ok: bool,
        reason: str,
        message: str,
        *,
        not_ready: aws.AwsNotReady | None = None,
    ) -> None:
        """Set one condition; ``not_ready`` records the first AWS refusal (retried later)."""
        self.not_ready = self.not_ready or not_ready
        before = self.previous.get(type_) or {}
        self.items = set_condition(
            self.items,
            type_=type_,
            status=ok,
            reason=reason,
            message=message,
            now=self.now,
            generation=self.generation,
        )
        flipped = (
            before.get("status") != ("True" if ok else "False") or before.get("reason") != reason
        )
        if not ok and flipped:
            self.events.append(Event("Warning", reason, message))


def stopped(
    conditions: Conditions,
    meta: Mapping[str, Any],
    reason: str,
    message: str,
    *,
    invalid: PolicyError | None = None,
    blocked: bool = False,
) -> Outcome:
    """The outcome of a reconcile that could not apply the CronJob: Ready=False, why."""
    conditions.set("CronJobReady", False, reason, message)
    conditions.set("Ready", False, reason, message)
    status = {"observedGeneration": meta.get("generation"), "conditions": conditions.items}
    return Outcome(
        status=status,
        events=conditions.events,
        invalid=invalid,
        blocked=message if blocked else None,
    )


def failed(body: Mapping[str, Any], error: Exception, now: datetime | None = None) -> Outcome:
    """An unexpected error while reconciling one policy, as its status: never a silent loop."""
    message = f"{type(error).__name__}: {str(error)[:300]}"
    return stopped(
        Conditions.of(body, now), body["metadata"], "ReconcileError", message, blocked=True
    )


def status_changed(body: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    current = body.get("status") or {}
    return any(current.get(key) != value for key, value in status.items())
