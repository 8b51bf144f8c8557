"""Threads that make jobs' parts at the lowest CPU priority, so that requests keep the cores.

A part is made between requests (part_work waits while any is admitted), but a request that
arrives while a sentence of a part is being made would otherwise share the cores with it
until it ends. Each of these threads lowers its own scheduling priority to ``nice 19`` when
it starts: on Linux the nice value belongs to the thread, so the rest of the process (the
event loop, the synthesis workers of requests) keeps its priority. Under the kernel's fair
scheduler a nice-19 thread gets about 1.5% of a core that a nice-0 thread wants, and all of
one that nobody wants: a job on a quiet replica runs at full speed.

Lowering one's priority needs no privilege (raising it back would, so the threads are the
jobs' own, never the shared worker threads). Where the call is refused, the threads run at
the process's priority and the wait between sentences is the only precedence requests get.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import anyio

logger = logging.getLogger(__name__)
# The lowest priority of the kernel's fair scheduler (weight 15 against nice 0's 1024).
NICENESS = 19

T = TypeVar("T")


def lower_this_thread(niceness: int = NICENESS) -> bool:
    """Give the calling thread ``niceness`` (it alone, on Linux); False when refused."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
    except (AttributeError, OSError) as error:  # not Linux, or a seccomp profile refusing it
        logger.info("job threads keep the process's CPU priority: %s", error)
        return False
    return True


class LowPriorityThreads:
    """``count`` threads at ``nice 19``; ``run`` calls a function on one of them."""

    def __init__(self, count: int, niceness: int = NICENESS) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=max(1, count),
            thread_name_prefix="tempaudio-job",
            initializer=lower_this_thread,
            initargs=(niceness,),
        )

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """``function(*args)`` on one of the threads. Like ``anyio.to_thread.run_sync``,
        a cancellation waits for the call to return (a generator advanced there must not be
        closed while it runs)."""
        future = self._pool.submit(function, *args)
        with anyio.CancelScope(shield=True):
            result = await asyncio.wrap_future(future)
        return result  # noqa: RET504 - a shielding scope may end without returning, to mypy

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
