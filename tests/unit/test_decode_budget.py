"""DecodeBudget: full-size pieces take turns, short ones run side by side, first come first served."""

from __future__ import annotations

import threading

from tempaudio_service.synth import DecodeBudget


class Piece:
    """A thread that holds ``weight`` of the budget until released."""

    def __init__(self, budget: DecodeBudget, weight: float, order: list[str], name: str) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

        def run() -> None:
            with budget.hold(weight):
                order.append(name)
                self.entered.set()
                assert self.release.wait(30)

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def finish(self) -> None:
        self.release.set()
        self.thread.join(30)


def queued(budget: DecodeBudget, count: int) -> None:
    while len(budget._queue) < count:
        threading.Event().wait(0.001)


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
