"""What one request says, before phonemes (pure): a script of spoken text, pauses and marks,
each tied to the part of the request it came from.

Plain text is a script of one ``Said``; SSML (ssml.py) and lexicons (pronounce.py) make
scripts of several. The synthesizer reads a script in order. Offsets are character offsets
into the request's text (the SSML document for SSML), so that speech marks index what the
client sent: ``text[start:end]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise


@dataclass(frozen=True)
class Source:
    """``said[said_start:said_end]`` says ``request[start:end]``.

    A piece of the request's own text (not ``replaced``, of the same length) indexes the
    request at the same shift, word by word. A ``replaced`` piece (an alias, ``say-as``, a
    ``<sub>``, a phoneme, text with entities) indexes the whole of ``request[start:end]``
    with every word said in it: it is one written word, however many are said.
    """

    said_start: int
    said_end: int
    start: int
    end: int
    replaced: bool = False

    @property
    def verbatim(self) -> bool:
        return not self.replaced and self.said_end - self.said_start == self.end - self.start


@dataclass(frozen=True)
class Said:
    """Text espeak reads, which may hold ``[[raw phonemes]]`` blocks (IPA).

    ``sources`` cover the parts of ``text`` that say something of the request, in order and
    without overlap; text outside them (punctuation added for prosody) indexes nothing.
    ``rate`` multiplies the speaking rate (2.0: twice as fast), as ``<prosody rate>`` does.
    """

    text: str
    sources: tuple[Source, ...]
    rate: float = 1.0


@dataclass(frozen=True)
class Pause:
    """Silence, as ``<break>`` or between paragraphs."""

    seconds: float


@dataclass(frozen=True)
class Mark:
    """A ``<mark name>``: an ``ssml`` speech mark at the time the next word starts.

    ``start``/``end`` are the offsets of the mark's tag in the request."""

    name: str
    start: int
    end: int


Item = Said | Pause | Mark
Script = tuple[Item, ...]


def plain(text: str) -> Script:
    """The script of plain text: all of it said as written."""
    return (Said(text=text, sources=(Source(0, len(text), 0, len(text)),)),)


def request_span(said: Said, start: int, end: int) -> tuple[int, int] | None:
    """The part of the request that ``said.text[start:end]`` says; None: nothing of it."""
    first: tuple[int, int] | None = None
    last: tuple[int, int] | None = None
    for source in said.sources:
        if source.said_end <= start or source.said_start >= end:
            continue
        if source.verbatim:
            shift = source.start - source.said_start
            lo = max(start, source.said_start) + shift
            hi = min(end, source.said_end) + shift
        else:
            lo, hi = source.start, source.end
        if first is None:
            first = (lo, hi)
        last = (lo, hi)
    if first is None or last is None:
        return None
    return first[0], max(last[1], first[1])


def seams(said: Said) -> tuple[int, ...]:
    """Where ``said.text`` stops saying one stretch of the request's text: the edges of
    its sources, but where a source goes on with the request's next character ("caf" and
    the "&#233;" after it). Between two stretches lie tags (or nothing of the request), so
    a written word is cut there: its marks never hold markup."""
    cuts: set[int] = set()
    for before, after in pairwise(said.sources):
        if (before.said_end, before.end) != (after.said_start, after.start):
            cuts |= {before.said_end, after.said_start}
    if said.sources:
        cuts |= {said.sources[0].said_start, said.sources[-1].said_end}
    return tuple(sorted(cuts))
