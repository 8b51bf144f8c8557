"""The jobs' threads run at the lowest CPU priority, and only they do."""

from __future__ import annotations

import threading
from pathlib import Path

import anyio
import pytest

from tempaudio_service.jobs.low_priority import NICENESS, LowPriorityThreads

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux only")


def nice_of(tid: int) -> int:
    """The thread's nice value as the kernel reports it (field 19 of its stat line)."""
    stat = Path(f"/proc/self/task/{tid}/stat").read_text(encoding="ascii")
    return int(stat.rsplit(")", 1)[1].split()[16])


def test_the_threads_lower_their_own_priority_and_no_other() -> None:
    caller = nice_of(threading.get_native_id())
    threads = LowPriorityThreads(2)
    seen: list[tuple[int, int]] = []

    def where() -> tuple[int, int]:
        tid = threading.get_native_id()
        return tid, nice_of(tid)

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(4):

                async def one() -> None:
                    seen.append(await threads.run(where))

                group.start_soon(one)

    try:
        anyio.run(main)
    finally:
        threads.close()
    assert len(seen) == 4
    assert {nice for _, nice in seen} == {max(caller, NICENESS)}
    assert threading.get_native_id() not in {tid for tid, _ in seen}
    assert nice_of(threading.get_native_id()) == caller  # the caller is as it was


def test_a_cancelled_call_still_returns_before_the_caller_goes_on() -> None:
    threads = LowPriorityThreads(1)
    release = threading.Event()
    finished: list[str] = []

    def slow() -> str:
        release.wait(10)
        finished.append("done")
        return "done"

    async def main() -> None:
        with anyio.move_on_after(0.05):
            threading.Timer(0.3, release.set).start()
            await threads.run(slow)
        # The call was not abandoned: it ended before the cancelled scope was left.
        assert finished == ["done"]

    try:
        anyio.run(main)
    finally:
        threads.close()
