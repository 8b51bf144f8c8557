"""Which written word each phoneme says (pure): the bridge from the model's phoneme
durations to word timings in the request's text.

espeak phonemizes a clause as a whole, so its phonemes carry no trace of the words they
came from: "4,815" becomes five spoken words, "in the" one (``ɪnðə``), "Dr." a word and a
sentence end. Each written word is phonemized again on its own, and the concatenation of
those is aligned with the clause's phonemes by edit distance (rapidfuzz). Context changes
a word's phonemes a little (stress, reduced vowels: "a" is ``ˈeɪ`` alone and ``ɐ`` in a
sentence), which the alignment absorbs; what it cannot match takes the label of the
phoneme before it, so every phoneme belongs to a word and word starts stay in order.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from rapidfuzz.distance import Levenshtein

# A raw phoneme block ([[...]], Piper's) is one word; otherwise a run without spaces.
_TOKEN = re.compile(r"\[\[.*?\]\]|[^\s\[]+|\[")
# Punctuation around a word that is not part of it.
_LEADING = "\"'“‘«([{¿¡*_-–—"
_TRAILING = "\"'”’»)]}.,;:!?*_-–—…"
# What is not a sound of its own in espeak's IPA: stress, word breaks, punctuation.
_NOT_SOUNDS = frozenset("ˈˌ ,.;:!?-'\"()")
_STRESS = frozenset("ˈˌ")
_BREAKS = frozenset(" ,.;:!?")


@dataclass(frozen=True)
class Word:
    """A written word: ``text[start:end]``."""

    start: int
    end: int


def written_words(text: str, seams: Sequence[int] = ()) -> list[Word]:
    """The words of ``text``, without the punctuation around them; a word is also cut at
    each of the (sorted) ``seams`` inside it (script.seams: where SSML tags were).

    A final period stays with a word that has another inside ("U.S.A.", "e.g.") and
    goes from one that does not ("Dr.", "today.").
    """
    words: list[Word] = []
    for match in _TOKEN.finditer(text):
        start, end = match.span()
        if match.group().startswith("[["):
            words.append(Word(start, end))
            continue
        inside = seams[bisect_right(seams, start) : bisect_left(seams, end)]
        for part_start, part_end in pairwise((start, *inside, end)):
            word = _trimmed(text, part_start, part_end)
            if word is not None:
                words.append(word)
    return words


def _trimmed(text: str, start: int, end: int) -> Word | None:
    while start < end and text[start] in _LEADING:
        start += 1
    while end > start and text[end - 1] in _TRAILING:
        if _abbreviation_end(text, start, end):
            break
        end -= 1
    return Word(start, end) if end > start else None


def _abbreviation_end(text: str, start: int, end: int) -> bool:
    """``text[start:end]`` ends with the one period of an abbreviation with periods inside
    ("U.S.A.", "e.g."), not an ellipsis ("Wait...") or a sentence's end ("Dr.")."""
    return (
        text[end - 1] == "."
        and end - 2 >= start
        and text[end - 2].isalpha()
        and "." in text[start : end - 1]
    )


def sounds(phonemes: str) -> str:
    return "".join(p for p in phonemes if p not in _NOT_SOUNDS)


def label_phonemes(
    sentences: Sequence[Sequence[str]],
    text: str,
    words: Sequence[Word],
    alone: Callable[[str], str],
) -> list[list[int]]:
    """For each phoneme of each sentence, the index of the word in ``words`` it says.

    ``alone(word)`` is a word's phonemes said alone. Labels never decrease along the
    phonemes; a phoneme before the first match takes the first word's label (-1 when
    there are no words).
    """
    reference: list[str] = []
    owner: list[int] = []
    for index, word in enumerate(words):
        said = text[word.start : word.end]
        alone_sounds = sounds(said[2:-2] if said.startswith("[[") else alone(said))
        reference.extend(alone_sounds)
        owner.extend([index] * len(alone_sounds))
    flat = [p for sentence in sentences for p in sentence]
    sounding = [i for i, p in enumerate(flat) if p not in _NOT_SOUNDS]
    heard = "".join(flat[i] for i in sounding)
    per_sound = _match(reference, owner, heard)
    labels = [-1] * len(flat)
    for position, label in zip(sounding, per_sound, strict=True):
        labels[position] = label
    _fill(labels, flat, owner[0] if owner else -1)
    out: list[list[int]] = []
    at = 0
    for sentence in sentences:
        out.append(labels[at : at + len(sentence)])
        at += len(sentence)
    return out


def _match(reference: Sequence[str], owner: Sequence[int], heard: str) -> list[int]:
    """The owner of each heard sound, by the edit-distance alignment of the two strings."""
    labels = [-1] * len(heard)
    for opcode in Levenshtein.opcodes("".join(reference), heard):
        tag, r0, r1 = opcode.tag, opcode.src_start, opcode.src_end
        h0, h1 = opcode.dest_start, opcode.dest_end
        if tag == "insert" or r1 == r0:
            continue
        for offset in range(h1 - h0):
            # A replaced stretch of another length is spread evenly over its sounds.
            labels[h0 + offset] = owner[r0 + (offset * (r1 - r0)) // max(1, h1 - h0)]
    return labels


def _fill(labels: list[int], flat: Sequence[str], first: int) -> None:
    """Unlabelled phonemes (breaks, punctuation, unmatched sounds) join the word before
    them, a stress mark the sound after it; labels are made monotonic."""
    previous = first
    for i, label in enumerate(labels):
        if label < previous:
            labels[i] = previous
        else:
            previous = label
    _snap_to_breaks(labels, flat)
    for i in range(len(labels) - 2, -1, -1):
        if flat[i] in _STRESS and labels[i + 1] > labels[i]:
            labels[i] = labels[i + 1]


def _snap_to_breaks(labels: list[int], flat: Sequence[str]) -> None:
    """A spoken word that starts with the word before it and goes on with the next one
    starts with the next one: a stray sound spilled over ("today, f|or example"), where
    two written words said as one ("in the": ``ɪnðə``) start with a word of their own."""
    start = 0
    before = -1
    for end in range(len(flat) + 1):
        if end < len(flat) and flat[end] not in _BREAKS:
            continue
        if start < end:
            first = labels[start]
            later = next((label for label in labels[start:end] if label > first), None)
            if first == before and later is not None:
                for i in range(start, end):
                    if labels[i] > first:
                        break
                    labels[i] = later
            before = labels[end - 1]
        start = end + 1
