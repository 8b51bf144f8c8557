"""Repeat cache: an identical request under the same policy reuses audio made before (pure).

The index maps what determines the audio (text, voice, speaker, knobs, format, rate) and
the policy it is stored under (its name, generation, retention and storage) to the earlier
object. A hit is served by a server-side copy of that object under a new key and a new item,
so the new audio's age, URL lifetime, ttl and cleanup are exactly those of a fresh synthesis.

- Bounded: least recently used entries go first.
- Shared: every entry is also kept in the policy's table (``store.RepeatIndex``), expiring
  with the audio it points at, so a prompt spoken through one replica is a hit through
  another and a restart loses nothing; this replica's memory is a cache of that index.
  Identical requests in flight wait for each other on one replica (``SingleFlight``): a
  burst spread over R replicas is synthesized at most once per replica.
- A policy change (any field, or a new generation), or a new version of a lexicon it
  names, makes a new key, so entries made under the old one are never found again.
- Per caller: with TEMPAUDIO_AUTH=serviceaccount a caller's repeats come only from its own
  audio (see ``cache_key``).
- A source too close to its own expiry is not used (the cleanup may be deleting it): it
  must have at least ``reuse_margin`` left.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from tempaudio_service.core.lru import LruIndex
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.wire.tts_request import TtsRequest

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
    what: dict[str, Any] = {
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
    if tts.text_type != "text" or tts.timed:  # SSML; what is kept beside the audio
        what |= {"text_type": tts.text_type, "marks": tts.speech_marks, "captions": tts.captions}
    if tts.voice_version is not None:  # a declared voice: a new hash is a new voice
        what["voice_version"] = tts.voice_version
    if policy.lexicons:  # an edited lexicon is a new version: older audio is never reused
        what["lexicons"] = [[lexicon.name, lexicon.version] for lexicon in policy.lexicons]
    encoded = json.dumps(what, sort_keys=True, default=str).encode()
    return hashlib.sha256(encoded).hexdigest()


def shared_entry(audio: CachedAudio) -> dict[str, Any]:
    """The entry as the policy's table keeps it (store.RepeatIndex; pure)."""
    entry: dict[str, Any] = {
        "source_key": audio.key,
        "expires": audio.expires,
        "duration": audio.duration,
    }
    if audio.sample_rate is not None:
        entry["sample_rate"] = audio.sample_rate
    return entry


def from_shared_entry(entry: Mapping[str, Any]) -> CachedAudio | None:
    """The entry another replica remembered; None for anything unreadable (pure)."""
    try:
        rate = entry.get("sample_rate")
        return CachedAudio(
            key=str(entry["source_key"]),
            expires=int(entry["expires"]),
            duration=Decimal(str(entry["duration"])),
            sample_rate=None if rate is None else int(rate),
        )
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return None


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
        return self._index.get(key, keep=lambda entry: self.usable(entry, now_epoch, retention))

    @staticmethod
    def usable(audio: CachedAudio, now_epoch: int, retention: timedelta) -> bool:
        """``audio`` has more than the margin of its life left."""
        return audio.expires - now_epoch >= reuse_margin(retention).total_seconds()

    def remember(self, key: str, audio: CachedAudio) -> None:
        """Newer audio replaces older: it lives longer."""
        self._index.put(key, audio)

    def forget(self, key: str) -> None:
        self._index.pop(key)
