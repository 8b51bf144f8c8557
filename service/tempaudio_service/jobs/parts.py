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

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
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


def _uncuttable(said: Said) -> list[tuple[int, int]]:
    """Stretches of ``said.text`` a cut may not fall strictly inside."""
    spans = [(m.start(), m.end()) for m in _PHONEME_BLOCK.finditer(said.text)]
    spans += [(s.said_start, s.said_end) for s in said.sources if not s.verbatim]
    return spans


def _cuts(said: Said, pattern: re.Pattern[str]) -> list[int]:
    blocked = _uncuttable(said)
    return [
        m.end()
        for m in pattern.finditer(said.text)
        if 0 < m.end() < len(said.text) and not any(lo < m.end() < hi for lo, hi in blocked)
    ]


def _split(said: Said, at: int) -> tuple[Said, Said]:
    """``said`` cut at ``at``: a verbatim source across the cut is cut with it."""
    left: list[Source] = []
    right: list[Source] = []
    for source in said.sources:
        if source.said_end <= at:
            left.append(source)
        elif source.said_start >= at:
            right.append(
                replace(source, said_start=source.said_start - at, said_end=source.said_end - at)
            )
        else:
            shift = at - source.said_start
            left.append(Source(source.said_start, at, source.start, source.start + shift))
            right.append(Source(0, source.said_end - at, source.start + shift, source.end))
    return (
        Said(said.text[:at], tuple(left), said.rate),
        Said(said.text[at:], tuple(right), said.rate),
    )


def _cut_point(said: Said, room: int) -> int | None:
    """The last sentence end within ``room`` characters, else the last word end, else the
    first sentence or word end after it (a long sentence is one part); None: no cut."""
    for pattern in (_SENTENCE_END, _WORD_END):
        cuts = _cuts(said, pattern)
        within = [cut for cut in cuts if cut <= room]
        if within:
            return within[-1]
    for pattern in (_SENTENCE_END, _WORD_END):
        cuts = _cuts(said, pattern)
        if cuts:
            return cuts[0]
    return None


def _pieces(script: Script, size: int) -> list[list[Item]]:
    parts: list[list[Item]] = [[]]
    used = 0
    queue = list(script)
    while queue:
        item = queue.pop(0)
        if not isinstance(item, Said):
            parts[-1].append(item)
            used += 1  # a pause or a mark: the items of a part are bounded too
            continue
        room = size - used
        if len(item.text) <= room:
            parts[-1].append(item)
            used += len(item.text)
            continue
        at = _cut_point(item, room) if room > 0 or not parts[-1] else 0
        if at is not None and at > room and used:
            at = 0  # its first sentence does not fit: it starts the next part
        if at is None:
            if parts[-1] and used:  # the whole of it in a part of its own
                parts.append([])
                used = 0
            parts[-1].append(item)
            used += len(item.text)
            continue
        if at > 0:
            head, tail = _split(item, at)
            parts[-1].append(head)
            queue.insert(0, tail)
        else:
            queue.insert(0, item)
        parts.append([])
        used = 0
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
