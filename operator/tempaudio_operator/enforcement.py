"""Which retention the cleanup enforces while a policy's retention changes (pure).

Audio created while retention ``r`` was in force carries a URL and a ``ttl`` promising it
lives ``r``. After an edit from 24h to 1h, audio created a minute before the edit is still
promised 23 more hours, so the cleanup keeps enforcing 24h until every such promise has
run out, then enforces 1h. The service may also learn an edit later than the operator does
(a rollout, a watch that lags): a retention stays possibly in force for ``lag`` after it
was replaced.

    enforced(now) = max(current, every replaced r whose audio may still be promised)
    a retention replaced at t still counts while t + lag + r > now
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


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
