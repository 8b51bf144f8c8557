"""Which retention the cleanup enforces while a policy's retention changes (pure).

Audio created while retention ``r`` was in force carries a URL and a ``ttl`` promising it
lives ``r``. After an edit from 24h to 1h, audio created a minute before the edit is still
promised 23 more hours, so the cleanup keeps enforcing 24h until every such promise has
run out, then enforces 1h. The service may also learn an edit later than the operator does
(a rollout, a watch that lags): a retention stays possibly in force for ``lag`` after it
was replaced.

    enforced(now) = max(current, every replaced r whose audio may still be promised)
    a retention replaced at t still counts while t + lag + r > now

The policy's status keeps the history (``retentionHistory``) and what is enforced
(``enforcedRetention``, ``enforcedUntil``): read and written here too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from tempaudio_api.durations import format_duration, parse_retention
from tempaudio_api.errors import PolicyError
from tempaudio_api.policy import Policy


@dataclass(frozen=True)
class Period:
    """``retention`` was in force from ``since`` until ``ended`` (None: it still is)."""

    retention: timedelta
    since: datetime
    ended: datetime | None = None

    def promised_until(self, lag: timedelta) -> datetime | None:
        """When the last audio of this period stops being promised (None: still current)."""
        return None if self.ended is None else self.ended + lag + self.retention


@dataclass(frozen=True)
class Enforcement:
    retention: timedelta
    # When ``retention`` stops being enforced (a replaced one's promises run out); None when
    # it is the current retention.
    until: datetime | None
    # The periods still needed to decide later, current last: what the status keeps.
    history: tuple[Period, ...]


def record(history: Sequence[Period], retention: timedelta, now: datetime) -> tuple[Period, ...]:
    """The history with ``retention`` in force from ``now``, if it is not already current."""
    if history and history[-1].retention == retention:
        return tuple(history)
    ended = tuple(replace(p, ended=p.ended or now) for p in history)
    return (*ended, Period(retention, now))


def enforce(history: Sequence[Period], now: datetime, lag: timedelta) -> Enforcement:
    """The retention the cleanup must enforce at ``now``; ``history`` ends with the current."""
    if not history or history[-1].ended is not None:
        raise ValueError("a policy always has a current retention, last in its history")
    current = history[-1]
    live = [p for p in history[:-1] if (end := p.promised_until(lag)) is not None and end > now]
    retention = max([current.retention, *(p.retention for p in live)])
    until = None
    if retention > current.retention:
        until = max(
            end
            for p in live
            if p.retention == retention and (end := p.promised_until(lag)) is not None
        )
    return Enforcement(retention=retention, until=until, history=(*live, current))


def immediate(retention: timedelta, now: datetime) -> Enforcement:
    """``retentionShrink: Immediate``: earlier promises are dropped, on purpose."""
    return Enforcement(retention=retention, until=None, history=(Period(retention, now),))


# --- the history as the policy's status keeps it ------------------------------------------


def decide(
    policy: Policy,
    status: Mapping[str, Any],
    now: datetime,
    lag: timedelta,
    inherited: Period | None = None,
) -> Enforcement:
    """What the cleanup enforces now, from the status's history and the spec (a shorter
    retention waits, unless ``retentionShrink: Immediate``); ``inherited``: the period a
    deleted policy of the same name left."""
    if policy.retention_shrink == "Immediate":
        return immediate(policy.retention, now)
    history = parse_history(status.get("retentionHistory"))
    if not history and inherited is not None:
        history = (inherited, Period(policy.retention, now))
    return enforce(record(history, policy.retention, now), now, lag)


def status_fields(policy: Policy, decision: Enforcement) -> dict[str, Any]:
    """``retentionHistory``, ``enforcedRetention`` and ``enforcedUntil`` of the status."""
    text = (
        policy.retention_text
        if decision.retention == policy.retention
        else format_duration(decision.retention)
    )
    return {
        # An unended period has no "ended" key: the API server drops nulls in lists, and
        # kopf would report the difference on every patch.
        "retentionHistory": [
            {
                "retention": format_duration(p.retention),
                "since": stamp(p.since),
                **({"ended": stamp(p.ended)} if p.ended else {}),
            }
            for p in decision.history
        ],
        "enforcedRetention": text,
        "enforcedUntil": stamp(decision.until) if decision.until else None,
    }


def parse_history(raw: Any) -> tuple[Period, ...]:
    """The retention periods kept in status; nothing usable reads as no history."""
    periods = []
    try:
        for entry in raw or []:
            ended = entry.get("ended")
            periods.append(
                Period(
                    parse_retention(str(entry["retention"])),
                    parse_stamp(str(entry["since"])),
                    parse_stamp(str(ended)) if ended else None,
                )
            )
    except (KeyError, TypeError, ValueError, AttributeError):
        return ()
    return tuple(periods)


def enforced_retention(policy: Policy, status: Mapping[str, Any]) -> Policy:
    """Between reconciles (the CronJob watch): the larger of the spec's and the status's."""
    try:
        recorded = parse_retention(str(status.get("enforcedRetention") or ""))
    except PolicyError:
        return policy
    if recorded <= policy.retention:
        return policy
    return replace(policy, retention=recorded, retention_text=format_duration(recorded))


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_stamp(text: str) -> datetime:
    return datetime.fromisoformat(text)
