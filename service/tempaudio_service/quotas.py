"""Per-caller quotas of a policy: requests per minute and audio seconds per hour (pure).

Counted in this replica's memory: with N replicas behind one Service, a caller whose
requests spread evenly gets about N times each limit (README, "Quotas"). Windows slide:
a request counts for the 60 s after it, audio for the hour after its minute.

A request is admitted while the caller is under both limits; its audio is charged once it
is made, so the request that crosses the audio limit is served and the next one waits.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field

from tempaudio_api.access import Quotas

from .errors import QuotaExceeded
from .lru import LruIndex

MINUTE = 60.0
HOUR = 3600.0
# Callers tracked per replica; the least recently seen are forgotten beyond this.
MAX_CALLERS = 10_000


@dataclass
class Usage:
    requests: deque[float] = field(default_factory=deque)  # admission times, last minute
    audio: deque[tuple[int, float]] = field(default_factory=deque)  # (minute, seconds)

    def forget_before(self, now: float) -> None:
        while self.requests and self.requests[0] <= now - MINUTE:
            self.requests.popleft()
        first_minute = math.floor(now / MINUTE) - 59
        while self.audio and self.audio[0][0] < first_minute:
            self.audio.popleft()

    def audio_seconds(self) -> float:
        return sum(seconds for _, seconds in self.audio)


def requests_retry_after(usage: Usage, limit: int, now: float) -> float | None:
    """Seconds until one more request fits; None: it fits now."""
    if len(usage.requests) < limit:
        return None
    return usage.requests[-limit] + MINUTE - now


def audio_retry_after(usage: Usage, limit: int, now: float) -> float | None:
    """Seconds until the audio of the last hour is under the limit again; None: it is."""
    total = usage.audio_seconds()
    if total < limit:
        return None
    for minute, seconds in usage.audio:
        total -= seconds
        if total < limit:
            return (minute + 60) * MINUTE - now
    return HOUR  # unreachable: dropping every minute leaves 0


class QuotaBook:
    """Usage per (policy, caller); thread-safe, bounded."""

    def __init__(self, max_callers: int = MAX_CALLERS) -> None:
        self._usage: LruIndex[tuple[str, str], Usage] = LruIndex(max_callers)
        self._lock = threading.Lock()  # a caller's usage is read and changed at once

    def _of(self, key: tuple[str, str], now: float) -> Usage:
        usage = self._usage.get(key)
        if usage is None:
            usage = Usage()
            self._usage.put(key, usage)
        usage.forget_before(now)
        return usage

    def admit(self, key: tuple[str, str], quotas: Quotas, now: float) -> None:
        """Count one request, or raise ``QuotaExceeded`` with when to come back."""
        with self._lock:
            usage = self._of(key, now)
            waits = []
            if quotas.requests_per_minute is not None:
                wait = requests_retry_after(usage, quotas.requests_per_minute, now)
                if wait is not None:
                    waits.append(("requests_per_minute", wait))
            if quotas.audio_seconds_per_hour is not None:
                wait = audio_retry_after(usage, quotas.audio_seconds_per_hour, now)
                if wait is not None:
                    waits.append(("audio_seconds_per_hour", wait))
            if waits:
                quota, wait = max(waits, key=lambda w: w[1])
                raise QuotaExceeded(
                    f"{key[1]} used its {quota.replace('_', ' ')} under policy {key[0]}"
                    f" ({_limit_of(quotas, quota)}); retry in {math.ceil(wait)} s",
                    retry_after_seconds=max(1, math.ceil(wait)),
                    quota=quota,
                )
            if quotas.requests_per_minute is not None:
                usage.requests.append(now)

    def charge(self, key: tuple[str, str], quotas: Quotas, now: float, seconds: float) -> None:
        """Add a request's audio (only if the policy limits audio)."""
        if quotas.audio_seconds_per_hour is None:
            return
        with self._lock:
            usage = self._of(key, now)
            minute = math.floor(now / MINUTE)
            if usage.audio and usage.audio[-1][0] == minute:
                usage.audio[-1] = (minute, usage.audio[-1][1] + seconds)
            else:
                usage.audio.append((minute, seconds))


def _limit_of(quotas: Quotas, quota: str) -> int | None:
    return (
        quotas.requests_per_minute
        if quota == "requests_per_minute"
        else quotas.audio_seconds_per_hour
    )
