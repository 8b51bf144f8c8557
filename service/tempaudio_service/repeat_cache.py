"""Repeat cache: an identical request under the same policy reuses audio made before (pure).

The index maps what determines the audio (text, voice, speaker, knobs, format, rate) and
the policy it is stored under (its name, generation, retention and storage) to the earlier
object. A hit is served by a server-side copy of that object under a new key and a new item,
so the new audio's age, URL lifetime, ttl and cleanup are exactly those of a fresh synthesis.

- Bounded: least recently used entries go first.
- In memory only: a restart starts empty. A policy change (any field, or a new generation)
  makes a new key, so entries made under the old one are never found again.
- Per caller: with TEMPAUDIO_AUTH=serviceaccount a caller's repeats come only from its own
  audio (see ``cache_key``).
- A source too close to its own expiry is not used (the cleanup may be deleting it): it
  must have at least ``reuse_margin`` left.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import timedelta
from decimal import Decimal

from .lru import LruIndex
from .policies import ServedPolicy
from .tts_request import TtsRequest

DEFAULT_ENTRIES = 10_000
# A source is reused only with this much of its life left, or a tenth of the retention if
# that is longer: far more than a copy takes, and more than the cleanup's lag.
MIN_REUSE_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class CachedAudio:
    """Where earlier audio is, until when it lives, and what it is."""

    key: str
    expires: int  # the source item's ttl, epoch seconds
    duration: Decimal
    sample_rate: int | None = None  # as the item has it: only when resampled


def cache_key(tts: TtsRequest, policy: ServedPolicy, caller: str | None) -> str:
    """A digest of everything that determines the audio and where and how long it is kept,
    and of whose it is: an authenticated caller (``namespace/serviceaccount``) reuses only
    its own audio, so a hit never tells it what another caller had said. Anonymous callers
    (TEMPAUDIO_AUTH=none: nobody is told apart) share."""
    what = {
        "caller": caller,
        "text": tts.text,
        "voice": tts.voice,
        "options": asdict(tts.options),
        "format": tts.format,
        "sample_rate": tts.sample_rate,
        "policy": policy.key,
        "generation": policy.generation,
        "retention": policy.retention.total_seconds(),
        "storage": asdict(policy.storage),
        "ttl_attribute": policy.ttl_attribute,
    }
    encoded = json.dumps(what, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()


def reuse_margin(retention: timedelta) -> timedelta:
    return max(MIN_REUSE_MARGIN, retention / 10)


class RepeatCache:
    """Thread-safe, bounded, least recently used first."""

    def __init__(self, entries: int = DEFAULT_ENTRIES) -> None:
        self._index: LruIndex[str, CachedAudio] = LruIndex(entries)

    def __len__(self) -> int:
        return len(self._index)

    def find(self, key: str, now_epoch: int, retention: timedelta) -> CachedAudio | None:
        """The earlier audio for ``key`` if it has more than the margin left; an entry too
        close to its expiry is dropped."""
        margin = reuse_margin(retention).total_seconds()
        return self._index.get(key, keep=lambda entry: entry.expires - now_epoch >= margin)

    def remember(self, key: str, audio: CachedAudio) -> None:
        """Newer audio replaces older: it lives longer."""
        self._index.put(key, audio)

    def forget(self, key: str) -> None:
        self._index.pop(key)
