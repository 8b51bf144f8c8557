"""A job's script cut into parts, and the parts as JSON (pure).

A part is a stretch of the spoken script (lexicons applied) of at most about
``TEMPAUDIO_JOBS_PART_CHARS`` said characters, cut where a sentence or a paragraph ends,
or else between words: never inside a ``[[phoneme]]`` block or a replaced stretch (an
alias, a ``say-as``). Its sources keep their offsets into the whole request, so the speech
marks a part finds index the job's text as they are, and only their time moves when the
parts are joined.

Synthesizing the parts one after the other says what one synthesis of the whole says: the
same sentences, with the same silence between them (a part after one that spoke starts
with the ``sentence_silence`` the synthesizer puts before every sentence but the first).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tempaudio_service.speech.script import Item, Mark, Pause, Said, Script, Source

# Where a sentence or a paragraph ends: the next one starts after the match.
_SENTENCE_END = re.compile(
    "[.!?\u2026;:\u3002\uff01\uff1f]+[\"'\u201d\u2019\u00bb)\\]]*\\s+|\n\\s*"
)
_WORD_END = re.compile(r"\s+")
_PHONEME_BLOCK = re.compile(r"\[\[.*?\]\]", re.DOTALL)


@dataclass(frozen=True)
class Part:
    """One part: what it says, and the request's characters it covers (progress)."""

    script: Script
    characters: int


def _blocked(said: Said) -> list[tuple[int, int]]:
    """Stretches of ``said.text`` a cut may not fall strictly inside, merged and in order."""
    spans = [(m.start(), m.end()) for m in _PHONEME_BLOCK.finditer(said.text)]
    spans += [(s.said_start, s.said_end) for s in said.sources if not s.verbatim]
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _cuts(said: Said, pattern: re.Pattern[str], blocked: list[tuple[int, int]]) -> list[int]:
    """Where ``pattern`` ends inside the text and outside every blocked stretch, in order:
    one pass over the text and one over the stretches."""
    found: list[int] = []
    at = 0
    for match in pattern.finditer(said.text):
        cut = match.end()
        if not 0 < cut < len(said.text):
            continue
        while at < len(blocked) and blocked[at][1] <= cut:
            at += 1
        if at < len(blocked) and blocked[at][0] < cut:
            continue  # strictly inside a blocked stretch
        found.append(cut)
    return found


def _last_in(cuts: list[int], after: int, limit: int) -> int | None:
    """The last cut in ``(after, limit]``."""
    index = bisect.bisect_right(cuts, limit) - 1
    return cuts[index] if index >= 0 and cuts[index] > after else None


def _first_after(cuts: list[int], limit: int) -> int | None:
    index = bisect.bisect_right(cuts, limit)
    return cuts[index] if index < len(cuts) else None


def _split(said: Said, cuts: Sequence[int]) -> list[Said]:
    """``said`` cut at each of ``cuts`` (in order): a verbatim source across a cut is cut
    with it; no other source lies across one (``_blocked``). One pass over the sources."""
    bounds = [0, *cuts, len(said.text)]
    sources: list[list[Source]] = [[] for _ in range(len(bounds) - 1)]
    piece = 0
    for source in said.sources:
        start = source.said_start
        while start < source.said_end:
            while bounds[piece + 1] <= start:
                piece += 1
            end = min(source.said_end, bounds[piece + 1])
            base = bounds[piece]
            if source.verbatim:
                shift = start - source.said_start
                lo, hi = source.start + shift, source.start + shift + (end - start)
            else:
                lo, hi = source.start, source.end
            sources[piece].append(Source(start - base, end - base, lo, hi, source.replaced))
            start = end
    return [
        Said(said.text[bounds[i] : bounds[i + 1]], tuple(sources[i]), said.rate)
        for i in range(len(bounds) - 1)
    ]


def _said_cuts(said: Said, room: int, size: int) -> tuple[bool, list[int]]:
    """Where a Said too long for the ``room`` left in the current part is cut: whether it
    starts a new part, and the cuts. Each cut is the last sentence end in reach, else the
    last word end, else the first of either past it (a sentence longer than a part is one
    part). Linear in the text: the candidate cuts are found once, then bisected."""
    blocked = _blocked(said)
    sentences, words = _cuts(said, _SENTENCE_END, blocked), _cuts(said, _WORD_END, blocked)
    length = len(said.text)
    fresh = False
    chosen: list[int] = []
    position = 0
    while length - position > room:
        limit = position + room
        cut = _last_in(sentences, position, limit) or _last_in(words, position, limit)
        if cut is None and position == 0 and room < size:
            fresh, room = True, size  # its first sentence does not fit: a new part
            continue
        if cut is None:
            cut = _first_after(sentences, limit) or _first_after(words, limit)
            if cut is None:
                break
        chosen.append(cut)
        position, room = cut, size
    return fresh, chosen


def _pieces(script: Script, size: int) -> list[list[Item]]:
    parts: list[list[Item]] = [[]]
    used = 0
    for item in script:
        if not isinstance(item, Said):
            parts[-1].append(item)
            used += 1  # a pause or a mark: the items of a part are bounded too
            continue
        room = size - used
        if len(item.text) <= room:
            parts[-1].append(item)
            used += len(item.text)
            continue
        fresh, cuts = _said_cuts(item, max(0, room), size)
        pieces = _split(item, cuts)
        if fresh and parts[-1]:
            parts.append([])
            used = 0
        parts[-1].append(pieces[0])
        for piece in pieces[1:]:
            parts.append([piece])
        used = len(pieces[-1].text) + (used if len(pieces) == 1 else 0)
    return [part for part in parts if part]


def _first_offset(items: Sequence[Item]) -> int | None:
    for item in items:
        if isinstance(item, Said) and item.sources:
            return item.sources[0].start
        if isinstance(item, Mark):
            return item.start
    return None


def split(script: Script, size: int, text_length: int, sentence_silence: float) -> list[Part]:
    """``script`` in parts of about ``size`` said characters; the parts cover the request's
    ``text_length`` characters between them, in order."""
    pieces = _pieces(script, max(1, size))
    starts = [_first_offset(piece) for piece in pieces]
    bounds: list[int] = []
    last = 0
    for start in starts:
        last = max(last, start if start is not None else last)
        bounds.append(last)
    if bounds:
        bounds[0] = 0
    bounds.append(text_length)
    parts: list[Part] = []
    spoken = False
    for index, piece in enumerate(pieces):
        says = any(isinstance(item, Said) for item in piece)
        lead: tuple[Item, ...] = ()
        if says and spoken and sentence_silence > 0:
            lead = (Pause(sentence_silence),)
        spoken = spoken or says
        covered = max(0, bounds[index + 1] - bounds[index])
        parts.append(Part((*lead, *piece), covered))
    return parts


# --- as JSON: the parts are written once, at submission, and read by every worker -------


def item_json(item: Item) -> list[Any]:
    if isinstance(item, Said):
        sources = [
            [s.said_start, s.said_end, s.start, s.end, int(s.replaced)] for s in item.sources
        ]
        return ["said", item.text, item.rate, sources]
    if isinstance(item, Pause):
        return ["pause", item.seconds]
    return ["mark", item.name, item.start, item.end]


def item_from_json(value: Sequence[Any]) -> Item:
    kind = value[0]
    if kind == "said":
        sources = tuple(
            Source(int(a), int(b), int(c), int(d), bool(e)) for a, b, c, d, e in value[3]
        )
        return Said(str(value[1]), sources, float(value[2]))
    if kind == "pause":
        return Pause(float(value[1]))
    if kind == "mark":
        return Mark(str(value[1]), int(value[2]), int(value[3]))
    raise ValueError(f"not a script item: {kind!r}")


def parts_json(parts: Sequence[Part]) -> list[Any]:
    return [
        {"characters": part.characters, "script": [item_json(i) for i in part.script]}
        for part in parts
    ]


def parts_from_json(value: Sequence[Any]) -> list[Part]:
    return [
        Part(tuple(item_from_json(i) for i in part["script"]), int(part["characters"]))
        for part in value
    ]
