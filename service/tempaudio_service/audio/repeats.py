"""The repeat cache as requests use it, in one object: whose audio a request may reuse (its
key), a copy of audio made before (found on this replica or in the policy's table, copied
server-side with its companions), and what new audio leaves for later requests."""

from __future__ import annotations

import logging
from typing import Any

import anyio

from tempaudio_api.access import Caller
from tempaudio_service.audio import companions, repeat_cache
from tempaudio_service.audio.pairs import Pair, new_pair, signed_item
from tempaudio_service.audio.repeat_cache import CachedAudio, from_shared_entry, shared_entry
from tempaudio_service.audio.resolved import AudioRequest
from tempaudio_service.audio.services import Services
from tempaudio_service.core.errors import StorageUnavailable
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.storage.store import SourceMissing
from tempaudio_service.wire.tts_request import TtsRequest

logger = logging.getLogger(__name__)


class Repeats:
    """The repeat cache of ``services``: this replica's memory of it, the policy tables'
    shared entries, and the single flight that makes one of identical requests at a time."""

    def __init__(self, services: Services) -> None:
        self._services = services

    @staticmethod
    def applies(services: Services, policy: ServedPolicy, tts: TtsRequest) -> bool:
        """The request may be answered with a copy (and leaves one for later requests)."""
        return bool(
            tts.cache and policy.repeat_cache and services.settings.repeat_cache_entries > 0
        )

    @staticmethod
    def key(policy: ServedPolicy, tts: TtsRequest, caller: Caller | None) -> str:
        """Whose audio a request may reuse: an authenticated caller's own only, unless the
        policy says its callers share (``spec.repeatCacheScope: Policy``)."""
        shared = policy.spec is not None and policy.spec.repeat_cache_scope == "Policy"
        return repeat_cache.cache_key(tts, policy, None if caller is None or shared else caller.key)

    async def copy(self, request: AudioRequest, key: str) -> dict[str, Any] | None:
        """The answer for a repeat, from a copy of the audio made before; None: not cached."""
        policy = request.policy
        now = self._services.clock()
        source = self._services.repeat_cache.find(key, int(now.timestamp()), policy.retention)
        if source is None:  # this replica has not seen it: another may have
            source = await self._shared_find(policy, key, int(now.timestamp()))
        if source is None:
            return None
        if self._services.recheck(policy) != policy:  # changed since the key was made: not the same
            return None
        pair = new_pair(self._services, request, source.duration)
        # The source has the same companions: what it was made with is part of the key.
        copies = companions.copies(source.key, pair.item)
        try:
            with anyio.CancelScope(shield=True):
                await self._services.repository.save_copy(pair.store, source.key, pair.item, copies)
        except SourceMissing:
            self._services.repeat_cache.forget(key)
            self._services.repository.later(
                "DynamoDB", pair.store.repeats.forget_repeat, key, source.key
            )
            return None
        self._services.metrics.stored.labels(pair.policy.key).inc()
        await self.remember(key, pair)  # the copy lives longer than its source
        return signed_item(pair.policy, pair.store, pair.item, pair.created, cached=True)

    async def remember(self, key: str, pair: Pair) -> None:
        """``pair`` is what a later request with ``key`` (repeat_cache.cache_key) may copy, on
        any replica: remembered here and in the policy's table before the answer goes out (a
        failure there only costs other replicas a synthesis, and is logged)."""
        audio = CachedAudio(
            key=pair.key,
            expires=pair.item.ttl,
            duration=pair.item.duration,
            sample_rate=pair.item.sample_rate,
        )
        self._services.repeat_cache.remember(key, audio)
        entry = shared_entry(audio)
        try:
            await self._services.repository.call(
                "DynamoDB", pair.store.repeats.remember_repeat, key, entry, audio.expires
            )
        except StorageUnavailable as error:
            logger.warning("repeat cache entry kept on this replica only: %s", error.message)

    async def _shared_find(
        self, policy: ServedPolicy, key: str, now_epoch: int
    ) -> CachedAudio | None:
        """The entry another replica remembered, if it has more than the margin left; kept
        here too. A table that cannot answer is a miss (the request synthesizes)."""
        store = self._services.stores.get(policy.storage)
        try:
            entry = await self._services.repository.call("DynamoDB", store.repeats.find_repeat, key)
        except StorageUnavailable:
            return None
        audio = from_shared_entry(entry) if entry is not None else None
        if audio is None or not self._services.repeat_cache.usable(
            audio, now_epoch, policy.retention
        ):
            return None
        self._services.repeat_cache.remember(key, audio)
        return audio
