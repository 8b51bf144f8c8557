"""How much decoding runs at once across threads: the bound on the decoder's memory.

A piece's decoder activations follow its audio (about 20 MB a second of it), so the
synthesizer holds a share of one budget, in phonemes x length_scale, while it decodes a
piece (speaking.py's ``Budget``).
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass


class DecodeBudget:
    """How much decoding runs at once across threads, in phonemes x length_scale.

    A piece's decoder memory follows its audio, so two full-size pieces at once hold twice
    the activations of one. With a budget of 1.5 pieces, a full-size piece waits for another
    full-size one to finish, while ordinary short sentences run side by side. First come,
    first served: a heavy piece is never overtaken by a stream of light ones.

    Background pieces (jobs' parts) come after every request's piece, and a request's piece
    counts only the other requests' pieces: it never waits for a part, which at worst
    decodes beside it (one more full-size piece per job worker while a job runs; a part
    starts only where everything decoding leaves it room).
    """

    def __init__(self, capacity: float) -> None:
        self._capacity = capacity
        self._used = 0.0
        self._background_used = 0.0
        self._queue: deque[_Ticket] = deque()
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def hold(self, weight: float, *, background: bool = False) -> Iterator[None]:
        weight = min(weight, self._capacity)  # a piece over the budget runs alone
        ticket = _Ticket(background)
        with self._changed:
            self._queue.append(ticket)
            self._changed.wait_for(lambda: self._next() is ticket and self._fits(ticket, weight))
            self._queue.remove(ticket)
            self._used += weight
            if background:
                self._background_used += weight
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._used -= weight
                if background:
                    self._background_used -= weight
                self._changed.notify_all()

    def _fits(self, ticket: _Ticket, weight: float) -> bool:
        """A background piece fits beside everything decoding; a request's piece beside
        the other requests' pieces (it never waits for a part's)."""
        used = self._used if ticket.background else self._used - self._background_used
        return used + weight <= self._capacity

    def background(self) -> BackgroundBudget:
        """This budget as background work holds it."""
        return BackgroundBudget(self)

    def _next(self) -> _Ticket | None:
        """The first request's ticket in the queue, else the first background one."""
        for ticket in self._queue:
            if not ticket.background:
                return ticket
        return self._queue[0] if self._queue else None


@dataclass(eq=False)
class _Ticket:
    background: bool


@dataclass(frozen=True)
class BackgroundBudget:
    budget: DecodeBudget

    def hold(self, weight: float) -> contextlib.AbstractContextManager[None]:
        return self.budget.hold(weight, background=True)
