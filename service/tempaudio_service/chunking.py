"""Bounds on one synthesis (pure): pieces the decoder renders in bounded memory, and the
audio a text can make.

Piper's VITS decoder holds activations for a whole utterance at once: its memory grows
with the length of the audio it renders (see BENCHMARKS.md, "Memory"). Rendering a long
sentence as several shorter pieces bounds that peak. Pieces end where a speaker would
pause anyway: after a clause mark if one is near enough, otherwise between words. A
single word longer than the limit (espeak reads ``hello-hello-…`` or a few thousand
letters without a space as one word) is cut inside, so no piece is ever over the limit.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

# A sentence longer than this many phonemes (about 7 s of audio) is decoded in pieces.
DEFAULT_MAX_CHUNK_PHONEMES = 150
# Audio one request may produce: the longest text (5,000 characters) at normal speed is
# about 6 minutes.
DEFAULT_MAX_AUDIO_SECONDS = 600
# A low estimate of the audio per phoneme at length_scale 1 (measured: 0.048 s for
# en_US-joe-medium, stress marks included), so that the estimate refuses only what is
# certainly over the cap; the decoded audio is checked exactly as it comes.
MIN_SECONDS_PER_PHONEME = 0.02
WORD_BREAK = " "
# espeak keeps these in its phonemes (a dash comes out as ";"; brackets and quotes go).
CLAUSE_MARKS = frozenset({",", ";", ":"})
# Marks that belong to the phoneme before them: a cut never separates them from it.
_TRAILING_MARKS = frozenset({"\u02d0", "\u02d1"})  # long and half-long


def chunk_limit(max_phonemes: int, length_scale: float) -> int:
    """Phonemes per piece when each lasts ``length_scale`` times longer than usual.

    The decoder's memory follows the audio it renders at once, so slower speech gets
    proportionally shorter pieces; faster speech does not get longer ones, because the
    encoder's attention grows with the phoneme count too.
    """
    if max_phonemes <= 0:
        raise ValueError("max_phonemes must be positive")
    return max(1, int(max_phonemes / max(1.0, length_scale)))


def min_audio_seconds(
    sentence_phonemes: Sequence[int], length_scale: float, sentence_silence: float
) -> float:
    """A low estimate of the audio that sentences of these phoneme counts make."""
    gaps = max(0, len(sentence_phonemes) - 1)
    return sum(sentence_phonemes) * MIN_SECONDS_PER_PHONEME * length_scale + (
        sentence_silence * gaps
    )


def split_phonemes(phonemes: Sequence[str], max_phonemes: int) -> list[list[str]]:
    """Pieces of at most ``max_phonemes`` (0: no limit), split at word breaks when they can be.

    Pieces neither start nor end with a break; the breaks between them are dropped, so the
    pieces hold the input's phonemes in order.
    """
    if max_phonemes < 0:
        raise ValueError("max_phonemes must be 0 (no limit) or positive")
    rest = _strip_breaks(phonemes)
    if max_phonemes == 0:
        return [rest] if rest else []
    pieces: list[list[str]] = []
    while len(rest) > max_phonemes:
        cut = _best_break(rest, max_phonemes)
        if cut is None:
            # One word runs past the limit: cut it, keeping marks with their phoneme.
            cut = _inner_cut(rest, max_phonemes)
            pieces.append(rest[:cut])
            rest = _strip_breaks(rest[cut:])
            continue
        pieces.append(_strip_breaks(rest[:cut]))
        rest = _strip_breaks(rest[cut + 1 :])
    if rest:
        pieces.append(rest)
    return pieces


def _strip_breaks(phonemes: Sequence[str]) -> list[str]:
    start, end = 0, len(phonemes)
    while start < end and phonemes[start] == WORD_BREAK:
        start += 1
    while end > start and phonemes[end - 1] == WORD_BREAK:
        end -= 1
    return list(phonemes[start:end])


def _best_break(phonemes: Sequence[str], max_phonemes: int) -> int | None:
    """Index of the word break to cut at: the last one after a clause mark in the second
    half of the window, else the last one in the window; None when the window has none."""
    window = range(min(max_phonemes, len(phonemes) - 1), 0, -1)
    breaks = [i for i in window if phonemes[i] == WORD_BREAK]
    for index in breaks:
        if index < max_phonemes // 2:
            break
        if phonemes[index - 1] in CLAUSE_MARKS:
            return index
    return breaks[0] if breaks else None


def _inner_cut(phonemes: Sequence[str], max_phonemes: int) -> int:
    """Where to cut inside a word: at the limit, moved back past combining and length marks."""
    cut = max_phonemes
    while cut > 1 and _belongs_to_previous(phonemes[cut]):
        cut -= 1
    return cut


def _belongs_to_previous(phoneme: str) -> bool:
    return phoneme in _TRAILING_MARKS or unicodedata.combining(phoneme[:1] or " ") != 0
