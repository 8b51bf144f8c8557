"""One synthesis request resolved once, before any work: the policy it is made under (as
served when it was admitted), the store that policy's audio lives in, what is said and how
(with the policy's lexicons), and who asks. It travels down whole; the pair, the repeat
cache and the stream read it, and none resolves the policy or its store again."""

from __future__ import annotations

from dataclasses import dataclass, replace

from tempaudio_api.access import Caller
from tempaudio_service.audio.services import Services
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.storage.store import AudioStore
from tempaudio_service.wire.tts_request import TtsRequest


@dataclass(frozen=True)
class AudioRequest:
    policy: ServedPolicy
    store: AudioStore
    tts: TtsRequest
    caller: Caller | None

    def under(self, services: Services, policy: ServedPolicy) -> AudioRequest:
        """The same request under ``policy`` as it is served now (a policy that changed
        while the audio was made: its retention or storage applies to the pair)."""
        if policy == self.policy:
            return self
        return replace(self, policy=policy, store=services.stores.get(policy.storage))


def resolve(services: Services, tts: TtsRequest, caller: Caller | None) -> AudioRequest:
    """The request under the policy it names (else the default), said with that policy's
    lexicons, in order (applied when it is synthesized); raises the policy's refusal."""
    policy, store = services.served(tts.policy)
    said = replace(tts, lexicons=policy.lexicons) if policy.lexicons else tts
    return AudioRequest(policy, store, said, caller)
