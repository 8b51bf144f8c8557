"""Bounded synthesis pool: at most N syntheses run, at most Q wait, the rest get 503.

At shutdown the pool closes (new work gets 503 at once) and, when the drain time is up,
abandons what is still admitted: each such request answers ``503 shutting_down``
instead of being cut off, and its synthesis thread is abandoned with the process.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from tempaudio_service.core.errors import Overloaded, ShuttingDown
from tempaudio_service.core.metrics import Metrics

T = TypeVar("T")


class SynthesisPool:
    def __init__(
        self,
        *,
        workers: int,
        queue: int,
        metrics: Metrics,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.workers = workers
        self.capacity = workers + queue
        self._limiter = anyio.CapacityLimiter(workers)
        self._admitted = 0
        self._metrics = metrics
        self._timer = timer
        # Smoothed time a request holds a worker (not its wait, nor a stream's time spent
        # sending): the queue drains at workers / this per second, which tells rejected
        # clients when to come back.
        self._mean_seconds = 1.0
        self._closed = False
        self._scopes: set[anyio.CancelScope] = set()

    @property
    def admitted(self) -> int:
        return self._admitted

    def retry_after_seconds(self) -> int:
        """When the queue will have drained enough for one more request: the requests ahead
        of it, at the rate the workers finish them."""
        waiting = max(0, self._admitted - self.workers)
        return max(1, min(60, math.ceil(self._mean_seconds * (waiting + 1) / self.workers)))

    def _observe(self, held_seconds: float) -> None:
        self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * held_seconds

    def _timed(self, func: Callable[..., T], held: list[float]) -> Callable[..., T]:
        """``func``, adding the time it holds a worker to ``held[0]``."""

        def timed(*args: object) -> T:
            started = self._timer()
            try:
                return func(*args)
            finally:
                held[0] += self._timer() - started

        return timed

    def _admit(self) -> None:
        if self._closed:
            raise ShuttingDown("the service is shutting down; retry on another replica")
        if self._admitted >= self.capacity:
            self._metrics.rejected.inc()
            raise Overloaded(
                f"synthesis queue is full ({self.capacity} requests admitted); retry later",
                self.retry_after_seconds(),
            )
        self._admitted += 1

    async def run(self, func: Callable[..., T], *args: object) -> T:
        self._admit()
        self._update_gauges()
        scope = anyio.CancelScope()
        self._scopes.add(scope)
        try:
            with scope:
                held = [0.0]
                result = await anyio.to_thread.run_sync(
                    self._timed(func, held), *args, limiter=self._limiter, abandon_on_cancel=True
                )
                self._observe(held[0])
                return result
            raise ShuttingDown("the service shut down before this synthesis finished; retry")
        finally:
            self._scopes.discard(scope)
            self._admitted -= 1
            self._update_gauges()

    @contextlib.asynccontextmanager
    async def stream(self) -> AsyncIterator[Callable[[Callable[[], T]], Awaitable[T]]]:
        """Admit a stream; yields ``step(func)``, which runs one step (a sentence) on a worker.

        A stream counts against the capacity for its whole life, but takes a worker only
        for each step: streams admitted together take turns sentence by sentence, so each
        one's first audio comes after one sentence, not after the streams before it. A
        cancelled step (disconnect, drain time up) first finishes, so the worker is free
        when this exits; at most one sentence of work is wasted.
        """
        self._admit()
        self._update_gauges()
        scope = anyio.CancelScope()
        self._scopes.add(scope)

        held = [0.0]

        async def step(func: Callable[[], T]) -> T:
            return await anyio.to_thread.run_sync(self._timed(func, held), limiter=self._limiter)

        try:
            with scope:
                yield step
                self._observe(held[0])
            if scope.cancel_called:
                raise ShuttingDown("the service shut down before this stream finished; retry")
        finally:
            self._scopes.discard(scope)
            self._admitted -= 1
            self._update_gauges()

    def close(self) -> None:
        """Refuse new work from now on; what is admitted goes on."""
        self._closed = True

    def abandon(self) -> None:
        """Let go of what is still admitted: each such request answers ``503 shutting_down``."""
        for scope in list(self._scopes):
            scope.cancel()

    def _update_gauges(self) -> None:
        self._metrics.in_flight.set(min(self._admitted, self.workers))
        self._metrics.queue_depth.set(max(0, self._admitted - self.workers))
