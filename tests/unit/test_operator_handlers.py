"""The resync loop's share of the work, beside kopf's handlers."""

from __future__ import annotations

import threading
from typing import Any

import kopf

from tempaudio_operator.resync import left_to_kopf


def policy(generation: int, observed: int | None) -> dict[str, Any]:
    return {"metadata": {"namespace": "ns", "name": "audio", "generation": generation},
            "status": {"observedGeneration": observed}}  # fmt: skip


def test_a_generation_kopf_has_not_reconciled_is_its_own_once_then_the_resyncs() -> None:
    memo = kopf.Memo(unsettled={}, locks_guard=threading.Lock())
    assert not left_to_kopf(memo, policy(1, 1))  # settled: the resync repairs drift
    assert left_to_kopf(memo, policy(2, 1))  # an edit kopf is handling now
    # Still unreconciled one resync later: kopf may have lost its watch; reconcile here.
    assert not left_to_kopf(memo, policy(2, 1))
    assert left_to_kopf(memo, policy(3, 1))  # a newer edit: kopf's first
    assert not left_to_kopf(memo, policy(3, 3))
    assert memo.unsettled == {}
