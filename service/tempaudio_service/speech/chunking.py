"""Bounds on one synthesis (pure): pieces of text the phonemizer reads at once, pieces the
decoder renders in bounded memory, and the audio a text can make.

espeak reads a text in one call that holds the GIL throughout (about 3 µs a character), so
the said text is phonemized in pieces of at most ``MAX_PHONEMIZE_CHARS`` (``text_pieces``),
cut where a sentence ends if one does in reach, else between words; the other threads (the
probes' server among them) run between two pieces. A sentence cut between pieces is joined
again (``phonemized``): espeak says each word the same either way.

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

import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

# A low estimate of the audio per phoneme at length_scale 1 (measured: 0.048 s for
# en_US-joe-medium, stress marks included), so that the estimate refuses only what is
# certainly over the cap; the decoded audio is checked exactly as it comes.
MIN_SECONDS_PER_PHONEME = 0.02
WORD_BREAK = " "
# espeak keeps these in its phonemes (a dash comes out as ";"; brackets and quotes go).
CLAUSE_MARKS = frozenset({",", ";", ":"})
# Marks that belong to the phoneme before them: a cut never separates them from it.
_TRAILING_MARKS = frozenset({"\u02d0", "\u02d1"})  # long and half-long
# The most text one phonemizer call reads: a long paragraph, a few milliseconds of espeak.
MAX_PHONEMIZE_CHARS = 1000
# Piper's raw phonemes (SSML's <phoneme>, a lexicon's phoneme entries): never cut inside.
_PHONEME_BLOCK = re.compile(r"\[\[.*?\]\]")
# Where a sentence ends: after its mark (and closing quotes) before white space, after a
# CJK full stop, or before a blank line. Then a clause mark before white space; then a space.
_CLOSING = "\"'\u201d\u2019\u00bb)"  # quotes and brackets that close a sentence
_SENTENCE_END = re.compile(
    f"[.!?\u2026][{_CLOSING}]*(?=\\s)|[\u3002\uff01\uff1f][{_CLOSING}\u300d\u300f]*|(?=\\n\\s*\\n)"
)
_CLAUSE_END = re.compile(f"[,;:\u2013\u2014][{_CLOSING}]*(?=\\s)")
_SPACE = re.compile(r"\s+")
_LOOKAHEAD = 16
# How a piece ends: the next one starts a sentence, goes on with the same one after a word
# break, or goes on with the same word.
Ending = Literal["sentence", "word", "inside"]


@dataclass(frozen=True)
class TextPiece:
    text: str
    ends: Ending


def text_pieces(text: str, limit: int = MAX_PHONEMIZE_CHARS) -> list[TextPiece]:
    """``text`` in pieces of at most ``limit`` characters, in order: each ends at the last
    sentence end in reach, else at a clause mark in the second half of its reach, else at
    the last white space (dropped), else inside a word. A raw phoneme block is never cut:
    one longer than ``limit`` is a piece of its own (Piper reads it without espeak)."""
    if limit <= 0:
        raise ValueError("limit must be positive")
    if len(text) <= limit:
        return [TextPiece(text, "sentence")]
    blocks = [match.span() for match in _PHONEME_BLOCK.finditer(text)]
    # Breaks are looked for where no block is: each block's characters read as letters.
    letters = list(text)
    for start, end in blocks:
        letters[start:end] = "x" * (end - start)
    masked = "".join(letters)
    pieces: list[TextPiece] = []
    start = _after_space(masked, 0)
    while len(text) - start > limit:
        cut, ends = _cut(masked, start, start + limit, blocks)
        pieces.append(TextPiece(text[start:cut], ends))
        start = _after_space(masked, cut)
    if start < len(text):
        pieces.append(TextPiece(text[start:], "sentence"))
    return pieces


def _after_space(text: str, at: int) -> int:
    space = _SPACE.match(text, at)
    return at if space is None else space.end()


def _cut(masked: str, start: int, end: int, blocks: list[tuple[int, int]]) -> tuple[int, Ending]:
    """Where the piece from ``start`` ends (``end`` at most) and how."""
    sentence = _last(_SENTENCE_END, masked, start, end, start)
    if sentence is not None:
        return sentence, "sentence"
    clause = _last(_CLAUSE_END, masked, start, end, (start + end) // 2)
    if clause is not None:
        return clause, _ending(masked, clause)
    spaces = [m.start() for m in _SPACE.finditer(masked, start + 1, end + 1)]
    cut = spaces[-1] if spaces else _inside(masked, start, end, blocks)
    return cut, _ending(masked, cut)


def _ending(masked: str, cut: int) -> Ending:
    """How a piece cut at ``cut`` ends: by the white space after it (a blank line ends a
    sentence), or inside a word."""
    gap = _SPACE.match(masked, cut)
    if gap is None:
        return "inside"
    return "sentence" if gap.group().count("\n") > 1 else "word"


def _last(pattern: re.Pattern[str], masked: str, start: int, end: int, after: int) -> int | None:
    """The end of the last match of ``pattern`` that ends past ``after`` and by ``end`` (its
    lookahead may see a little past ``end``)."""
    matches = pattern.finditer(masked, start, end + _LOOKAHEAD)
    ends = [m.end() for m in matches if m.end() <= end]
    return ends[-1] if ends and ends[-1] > after else None


def _inside(masked: str, start: int, end: int, blocks: list[tuple[int, int]]) -> int:
    """A cut inside a word: at ``end``, moved back off combining marks, or to the edge of a
    block it would fall in."""
    for block_start, block_end in blocks:
        if block_start < end < block_end:
            return block_start if block_start > start else block_end
    cut = end
    while cut > start + 1 and unicodedata.combining(masked[cut]):
        cut -= 1
    return cut


def phonemized(
    phonemize: Callable[[str], list[list[str]]], text: str, limit: int = MAX_PHONEMIZE_CHARS
) -> list[list[str]]:
    """The phonemes of ``text`` per sentence, as ``phonemize`` gives them, read in pieces
    (``text_pieces``): a sentence cut between two pieces is one sentence again, its halves
    joined by a word break where the cut dropped one."""
    sentences: list[list[str]] = []
    joins: Ending = "sentence"
    for piece in text_pieces(text, limit):
        found = phonemize(piece.text)
        if found and sentences and joins != "sentence":
            last, head = sentences[-1], found[0]
            spaced = WORD_BREAK in (last[-1:] + head[:1])
            gap = [WORD_BREAK] if joins == "word" and not spaced else []
            sentences[-1] = [*last, *gap, *head]
            found = found[1:]
        sentences.extend(found)
        joins = piece.ends
    return sentences


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
