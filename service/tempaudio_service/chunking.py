"""Bounds on one synthesis (pure): pieces the decoder renders in bounded memory, and the
audio a text can make.

Piper's VITS decoder holds activations for a whole utterance at once: its memory grows
with the length of the audio it renders (see BENCHMARKS.md, "Memory"). Rendering a long
sentence as several shorter pieces bounds that peak. Pieces end where a speaker would
pause anyway: after a clause mark if one is near enough, otherwise between words. A
single word longer than the limit (espeak reads ``hello-hello-…`` or a few thousand
letters without a space as one word) is cut inside, so no piece is ever over the limit.

A stream's first piece is cut short (``sentence_pieces``), so its first audio leaves
after a few words; pieces cut at word breaks are decoded with the word on either side
(``word_context``) and the PCM of one sentence shares one gain (``int16_frames``), so a
seam is said and sounds as inside the sentence.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from typing import Any

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


def sentence_pieces(phonemes: list[str], limit: int, first: int) -> list[tuple[int, list[str]]]:
    """The pieces of a sentence, each with the index of its first phoneme in it.

    With ``first``, the first piece ends at the first clause or word break after that
    many phonemes, so a stream's first audio leaves sooner."""
    if first and len(phonemes) > 2 * first:
        head = split_phonemes(phonemes, first)[0]
        rest_at = locate(phonemes, head, 0) + len(head)
        rest = split_phonemes(phonemes[rest_at:], limit)
        return _located(phonemes, [head], 0) + _located(phonemes, rest, rest_at)
    return _located(phonemes, split_phonemes(phonemes, limit), 0)


def _located(
    phonemes: Sequence[str], pieces: list[list[str]], at: int
) -> list[tuple[int, list[str]]]:
    """``pieces``, in order from ``at`` on, each with where it starts in ``phonemes``."""
    out: list[tuple[int, list[str]]] = []
    for piece in pieces:
        at = locate(phonemes, piece, at)
        out.append((at, piece))
        at += len(piece)
    return out


def word_context(
    phonemes: Sequence[str], at: int, size: int, cut: bool
) -> tuple[list[str], list[str]]:
    """The word before a piece and the word after it, each with the break between, when the
    piece was cut out of its sentence at word breaks."""
    if not cut:
        return [], []
    before: list[str] = []
    if at >= 2 and phonemes[at - 1] == WORD_BREAK:
        start = at - 1
        while start > 0 and phonemes[start - 1] != WORD_BREAK:
            start -= 1
        before = list(phonemes[start:at])
    after: list[str] = []
    end = at + size
    if end + 1 < len(phonemes) and phonemes[end] == WORD_BREAK:
        stop = end + 1
        while stop < len(phonemes) and phonemes[stop] != WORD_BREAK:
            stop += 1
        after = list(phonemes[end:stop])
    return before, after


def locate(phonemes: Sequence[str], piece: Sequence[str], at: int) -> int:
    """Where ``piece`` starts in ``phonemes`` at or after ``at`` (pieces drop only the word
    breaks at their edges)."""
    while at < len(phonemes) and phonemes[at] != piece[0]:
        at += 1
    return at


def int16_frames(
    audio: Any, gain: float | None = None, headroom_db: float = 0.0
) -> tuple[bytes, float | None]:
    """Float samples to 16-bit PCM, normalized to full scale as Piper does per sentence
    (less ``headroom_db``), and the gain used. With ``gain`` (a piece sent ahead of the
    rest of its sentence) the same gain is kept unless it would clip.

    In place on a float32 copy at most: a long sentence's audio is not copied four times.
    """
    import numpy as np

    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak < 1e-8:
        return bytes(2 * audio.size), gain
    full = 32767.0 / peak
    used = full * 10 ** (-headroom_db / 20) if gain is None else min(gain, full)
    scaled = np.asarray(audio, dtype=np.float32).copy()
    np.multiply(scaled, np.float32(used), out=scaled)
    # Round, not truncate: a float32 product can land a hair under full scale.
    np.rint(scaled, out=scaled)
    np.clip(scaled, -32767, 32767, out=scaled)
    return scaled.astype("<i2").tobytes(), used
