"""Split one sentence's phonemes into pieces the decoder can render in bounded memory (pure).

Piper's VITS decoder holds activations for a whole utterance at once: its memory grows
with the length of the audio it renders (see BENCHMARKS.md, "Memory"). Rendering a long
sentence as several shorter pieces bounds that peak. Pieces end where a speaker would
pause anyway: after a clause mark if one is near enough, otherwise between words. A
single word longer than the limit stays whole.
"""

from __future__ import annotations

from collections.abc import Sequence

WORD_BREAK = " "
# espeak keeps these in its phonemes (a dash comes out as ";"; brackets and quotes go).
CLAUSE_MARKS = frozenset({",", ";", ":"})


def split_phonemes(phonemes: Sequence[str], max_phonemes: int) -> list[list[str]]:
    """Pieces of at most ``max_phonemes`` (0: no limit), split only at word breaks.

    Pieces neither start nor end with a break; the breaks between them are dropped, so the
    pieces hold the input's words in order.
    """
    if max_phonemes < 0:
        raise ValueError("max_phonemes must be 0 (no limit) or positive")
    rest = _strip_breaks(phonemes)
    if max_phonemes == 0 or len(rest) <= max_phonemes:
        return [rest] if rest else []
    pieces: list[list[str]] = []
    while len(rest) > max_phonemes:
        cut = _best_break(rest, max_phonemes)
        if cut is None:
            break
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
    half of the window, else the last one in the window, else the first one after it."""
    window = range(min(max_phonemes, len(phonemes) - 1), 0, -1)
    breaks = [i for i in window if phonemes[i] == WORD_BREAK]
    for index in breaks:
        if index < max_phonemes // 2:
            break
        if phonemes[index - 1] in CLAUSE_MARKS:
            return index
    if breaks:
        return breaks[0]
    return next(
        (i for i in range(max_phonemes + 1, len(phonemes)) if phonemes[i] == WORD_BREAK), None
    )
