"""Per-caller quotas of a policy, counted in the policy's own table so that every replica
shares one count (pure: the store is a ``Counters``, dynamodb_items.py's).

Windows are fixed and aligned: requests per minute count in the minute they are admitted
(hh:mm:00 to hh:mm:59), audio seconds per hour in the hour the audio was made. A caller may
so get up to twice a limit in a span that straddles two windows (the end of one and the
start of the next); within one window:

- requests: each admission is one atomic conditional increment, so no more than the limit
  is ever admitted, whatever the number of replicas;
- audio: a request is admitted while the hour's total is under the limit, and its audio is
  added once it is made, so the total can pass the limit by the audio of the requests in
  flight when it was crossed (the request that crosses it is served, the next one waits).

The counts outlive restarts and pod kills; their items expire with the table's TTL an hour
after their window. When the table cannot answer, the request gets ``503`` with
``Retry-After`` (``StorageUnavailable``): nothing is admitted unmetered.
"""

from __future__ import annotations

import math
from typing import Protocol

from tempaudio_api.access import Quotas

from .errors import QuotaExceeded

MINUTE = 60
HOUR = 3600
# A window's counter lives this long past the window (the table's TTL removes it).
KEEP_SECONDS = HOUR


class Counters(Protocol):
    """Named counters shared by every replica."""

    def take(self, counter: str, limit: int, expires: int) -> bool:
        """Add 1 if that keeps the counter at most ``limit``; False (nothing added) if not."""
        ...

    def add(self, counter: str, amount: float, expires: int) -> None: ...

    def total(self, counter: str) -> float:
        """The counter's value (0 when it was never counted), read consistently."""
        ...


def window(now: float, length: int) -> tuple[int, int]:
    """The window ``now`` falls in: its number and the epoch second it ends (pure)."""
    index = math.floor(now / length)
    return index, (index + 1) * length


def counter_name(key: tuple[str, str], quota: str, index: int) -> str:
    """``policy#caller#quota#window``: one counter per caller, quota and window."""
    return f"{key[0]}#{key[1]}#{quota}#{index}"


def admit(counters: Counters, key: tuple[str, str], quotas: Quotas, now: float) -> None:
    """Count one request of ``key`` (policy, caller), or raise ``QuotaExceeded`` saying when
    to come back. Audio is checked first: a refused request takes no request slot."""
    if quotas.audio_seconds_per_hour is not None:
        index, ends = window(now, HOUR)
        used = counters.total(counter_name(key, "audio_seconds_per_hour", index))
        if used >= quotas.audio_seconds_per_hour:
            raise _exceeded(key, "audio_seconds_per_hour", quotas.audio_seconds_per_hour, ends, now)
    if quotas.requests_per_minute is not None:
        index, ends = window(now, MINUTE)
        name = counter_name(key, "requests_per_minute", index)
        if not counters.take(name, quotas.requests_per_minute, ends + KEEP_SECONDS):
            raise _exceeded(key, "requests_per_minute", quotas.requests_per_minute, ends, now)


def charge(
    counters: Counters, key: tuple[str, str], quotas: Quotas, now: float, seconds: float
) -> None:
    """Add a request's audio to its hour (only if the policy limits audio)."""
    if quotas.audio_seconds_per_hour is None or seconds <= 0:
        return
    index, ends = window(now, HOUR)
    counters.add(counter_name(key, "audio_seconds_per_hour", index), seconds, ends + KEEP_SECONDS)


def _exceeded(key: tuple[str, str], quota: str, limit: int, ends: int, now: float) -> QuotaExceeded:
    wait = max(1, math.ceil(ends - now))
    return QuotaExceeded(
        f"{key[1]} used its {quota.replace('_', ' ')} under policy {key[0]} ({limit});"
        f" retry in {wait} s",
        retry_after_seconds=wait,
        quota=quota,
    )
