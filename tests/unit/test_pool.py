"""SynthesisPool's Retry-After: the queue's drain rate, from the time requests hold a worker."""

from __future__ import annotations

import anyio
import anyio.lowlevel

from tempaudio_service.audio.pool import SynthesisPool
from tempaudio_service.core.metrics import Metrics


class StepTimer:
    """The time requests spend on a worker: each step of work costs ``step`` seconds."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_retry_after_follows_worker_time_not_how_long_streams_took_to_send() -> None:
    timer = StepTimer()
    pool = SynthesisPool(workers=2, queue=4, metrics=Metrics.create(), timer=timer)

    def sentence() -> None:
        timer.now += 0.5  # half a second of synthesis per sentence

    async def slow_reader_streams() -> None:
        for _ in range(20):
            async with pool.stream() as step:
                for _ in range(4):
                    await step(sentence)
                    # The client reads slowly; the worker is free meanwhile. On a real clock
                    # each stream would take minutes; only its 2 s of synthesis count.
                    await anyio.lowlevel.checkpoint()

    anyio.run(slow_reader_streams)
    # 2 s a stream, 2 workers: with 4 waiting, the 5th ahead is done in 5 s.
    for _ in range(6):
        pool._admit()
    assert pool.retry_after_seconds() == 5


def test_retry_after_of_whole_syntheses_does_not_count_their_wait_in_the_queue() -> None:
    timer = StepTimer()
    pool = SynthesisPool(workers=1, queue=8, metrics=Metrics.create(), timer=timer)

    def synthesis() -> None:
        timer.now += 1.0

    async def many() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(pool.run, synthesis)

    anyio.run(many)
    pool._admit()
    pool._admit()  # one running, one waiting
    assert pool.retry_after_seconds() == 2
