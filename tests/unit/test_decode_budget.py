"""DecodeBudget: full-size pieces take turns, short ones run side by side, first come first
served, requests before background work."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Any

import pytest

from tempaudio_service.speech.decode_budget import DecodeBudget

WAIT = 30  # seconds a step may take before the test fails


class Piece:
    """A thread that holds ``weight`` of the budget until released.

    What the thread raises is kept in ``outcome`` and raised again by ``finish``: an
    assertion failing in a thread of its own would not fail the test.
    """

    def __init__(self, budget: Any, weight: float, order: list[str], name: str) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.outcome: Future[None] = Future()

        def hold() -> None:
            with budget.hold(weight):
                order.append(name)
                self.entered.set()
                assert self.release.wait(WAIT), f"{name} was never released"

        def run() -> None:
            self.outcome.set_running_or_notify_cancel()
            try:
                hold()
            except BaseException as error:  # noqa: BLE001 (handed to the test by finish)
                self.outcome.set_exception(error)
            else:
                self.outcome.set_result(None)

        # A daemon: a test that fails before releasing it does not hold up the run.
        self.thread = threading.Thread(target=run, name=f"piece-{name}", daemon=True)
        self.thread.start()

    def finish(self) -> None:
        self.release.set()
        self.outcome.result(WAIT)  # the thread's failure, or TimeoutError if it never ends


def queued(budget: DecodeBudget, count: int, timeout: float = 10) -> None:
    """Wait until ``count`` pieces wait in the budget's queue; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while len(budget._queue) < count:
        if time.monotonic() > deadline:
            pytest.fail(
                f"{len(budget._queue)} pieces queued after {timeout} s, expected {count}",
                pytrace=False,
            )
        time.sleep(0.001)


def test_two_full_pieces_take_turns_and_a_short_one_runs_alongside() -> None:
    budget, order = DecodeBudget(225), []
    first = Piece(budget, 150, order, "first")
    assert first.entered.wait(10)
    short = Piece(budget, 50, order, "short")
    assert short.entered.wait(10)  # 150 + 50 fit
    second = Piece(budget, 150, order, "second")
    queued(budget, 1)
    assert not second.entered.is_set()  # 150 + 50 + 150 do not
    first.finish()
    short.finish()
    assert second.entered.wait(10)
    second.finish()
    assert order == ["first", "short", "second"]


def test_a_light_piece_never_overtakes_a_waiting_heavy_one() -> None:
    budget, order = DecodeBudget(225), []
    first = Piece(budget, 150, order, "first")
    assert first.entered.wait(10)
    heavy = Piece(budget, 150, order, "heavy")
    queued(budget, 1)
    light = Piece(budget, 50, order, "light")  # would fit now, but comes later
    queued(budget, 2)
    assert not light.entered.is_set()
    first.finish()
    assert heavy.entered.wait(10)
    assert light.entered.wait(10)  # 150 + 50 fit once the heavy one is in
    heavy.finish()
    light.finish()
    assert order == ["first", "heavy", "light"]


def test_a_piece_over_the_budget_runs_alone() -> None:
    budget, order = DecodeBudget(225), []
    huge = Piece(budget, 10_000, order, "huge")
    assert huge.entered.wait(10)
    small = Piece(budget, 1, order, "small")
    queued(budget, 1)
    assert not small.entered.is_set()
    huge.finish()
    assert small.entered.wait(10)
    small.finish()


def test_a_request_never_waits_for_a_part() -> None:
    budget: DecodeBudget = DecodeBudget(225)
    order: list[str] = []
    part = Piece(budget.background(), 150, order, "part")
    assert part.entered.wait(10)
    waiting_part = Piece(budget.background(), 150, order, "waiting part")
    queued(budget, 1)
    request = Piece(budget, 150, order, "request")  # after both, beside the running one
    assert request.entered.wait(10)
    part.finish()
    assert not waiting_part.entered.is_set()  # the request's 150 and its 150 do not fit
    request.finish()
    assert waiting_part.entered.wait(10)
    waiting_part.finish()
    assert order == ["part", "request", "waiting part"]


def test_a_part_waits_for_the_requests_even_those_that_came_later() -> None:
    budget: DecodeBudget = DecodeBudget(225)
    order: list[str] = []
    first = Piece(budget, 150, order, "first request")
    assert first.entered.wait(10)
    part = Piece(budget.background(), 150, order, "part")
    queued(budget, 1)
    second = Piece(budget, 150, order, "second request")  # 150 + 150 do not fit: it waits
    queued(budget, 2)
    first.finish()
    assert second.entered.wait(10)  # it goes before the part that came first
    assert not part.entered.is_set()
    second.finish()
    assert part.entered.wait(10)
    part.finish()
    assert order == ["first request", "second request", "part"]


class BrokenBudget:
    def hold(self, weight: float) -> Any:
        raise RuntimeError("no budget")


def test_a_failure_in_a_piece_s_thread_fails_the_test() -> None:
    piece = Piece(BrokenBudget(), 1, [], "broken")
    with pytest.raises(RuntimeError, match="no budget"):
        piece.finish()


def test_waiting_for_a_queue_that_never_fills_fails_the_test() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"0 pieces queued after 0\.05 s, expected 1"):
        queued(DecodeBudget(225), 1, timeout=0.05)
