"""Per-caller quotas of a policy, counted in the policy's own table so that every replica
shares one count (pure: the store is a ``Counters``, dynamodb_items.py's).

One counter item per (policy, caller, hour) holds the hour's audio seconds and the requests
of each of its minutes. Windows are fixed and aligned: requests per minute count in the
minute they are admitted (hh:mm:00 to hh:mm:59), audio seconds per hour in the hour the
audio was made. A caller may so get up to twice a limit in a span that straddles two
windows (the end of one and the start of the next); within one window:

- an admission is one atomic conditional update of the item: it counts the request only if
  the minute is under its limit and the hour's audio under its own, so no more than the
  request limit is ever admitted, whatever the number of replicas;
- audio is added once it is made (``charge``), so the hour's total can pass the limit by the
  audio of the requests in flight when it was crossed: the request that crosses it is
  served, the next one waits.

The counts outlive restarts and pod kills; their items expire with the table's TTL an hour
after their hour. When the table cannot answer, the request gets ``503`` with
``Retry-After`` (``StorageUnavailable``): nothing is admitted unmetered.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol

from tempaudio_api.access import Quotas
from tempaudio_service.core.errors import QuotaExceeded

MINUTE = 60
HOUR = 3600
# A counter item lives this long past its hour (the table's TTL removes it).
KEEP_SECONDS = HOUR
AUDIO = "audio"  # the hour's audio seconds, in the counter item


class Counters(Protocol):
    """Counter items shared by every replica, each a few named numbers."""

    def take(
        self, counter: str, name: str | None, limits: Mapping[str, float], expires: int
    ) -> bool:
        """Add 1 to ``name`` (None: nothing) if every number in ``limits`` is under its
        limit; False, with nothing changed, if not."""
        ...

    def add(self, counter: str, name: str, amount: float, expires: int) -> None: ...

    def values(self, counter: str) -> dict[str, float]:
        """The counter's numbers (none when it was never counted), read consistently."""
        ...


def window(now: float, length: int) -> tuple[int, int]:
    """The window ``now`` falls in: its number and the epoch second it ends (pure)."""
    index = math.floor(now / length)
    return index, (index + 1) * length


def counter_name(key: tuple[str, str], hour: int) -> str:
    """``policy#caller#hour``: one counter item per caller and hour."""
    return f"{key[0]}#{key[1]}#{hour}"


def minute_of(now: float) -> str:
    """The name of ``now``'s minute in its hour's counter item: ``m0`` to ``m59``."""
    return f"m{math.floor(now / MINUTE) % 60}"


def admit(counters: Counters, key: tuple[str, str], quotas: Quotas, now: float) -> None:
    """Count one request of ``key`` (policy, caller), or raise ``QuotaExceeded`` saying when
    to come back; a refused request takes no slot."""
    hour, hour_ends = window(now, HOUR)
    minute = minute_of(now)
    limits: dict[str, float] = {}
    if quotas.requests_per_minute is not None:
        limits[minute] = quotas.requests_per_minute
    if quotas.audio_seconds_per_hour is not None:
        limits[AUDIO] = quotas.audio_seconds_per_hour
    if not limits:
        return
    counted = minute if quotas.requests_per_minute is not None else None
    name = counter_name(key, hour)
    if counters.take(name, counted, limits, hour_ends + KEEP_SECONDS):
        return
    # Refused: say which (a read, on this path only).
    used = counters.values(name)
    if quotas.audio_seconds_per_hour is not None and used.get(AUDIO, 0) >= limits[AUDIO]:
        raise _exceeded(
            key, "audio_seconds_per_hour", quotas.audio_seconds_per_hour, hour_ends, now
        )
    assert quotas.requests_per_minute is not None
    _, minute_ends = window(now, MINUTE)
    raise _exceeded(key, "requests_per_minute", quotas.requests_per_minute, minute_ends, now)


def charge(
    counters: Counters, key: tuple[str, str], quotas: Quotas, now: float, seconds: float
) -> None:
    """Add a request's audio to its hour (only if the policy limits audio)."""
    if quotas.audio_seconds_per_hour is None or seconds <= 0:
        return
    hour, ends = window(now, HOUR)
    counters.add(counter_name(key, hour), AUDIO, seconds, ends + KEEP_SECONDS)


def _exceeded(key: tuple[str, str], quota: str, limit: int, ends: int, now: float) -> QuotaExceeded:
    wait = max(1, math.ceil(ends - now))
    return QuotaExceeded(
        f"{key[1]} used its {quota.replace('_', ' ')} under policy {key[0]} ({limit});"
        f" retry in {wait} s",
        retry_after_seconds=wait,
        quota=quota,
    )
