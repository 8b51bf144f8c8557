"""A script to 16-bit PCM, sentence by sentence, with the timing of each word on request.

The synthesizer (synth.py) brings the phonemizer and the model; this module plans what is
said (phonemes per sentence, pauses, marks) and renders the plan in pieces of bounded
size, keeping every bound of plain text: the audio estimate refuses before decoding, the
decoded audio is counted as it comes, and a sentence is decoded in pieces of at most
``chunk_limit`` phonemes.

Word timings come from the model's own durations (samples per phoneme id, from the
``Ceil`` tensor Piper's ``include_alignments`` exposes) and the words are found in the
text by alignment.py, so a mark is where the voice says the word, not an estimate. A word
mark also gets the frame its last sound ends at (captions end there). Word marks never
overlap, hold no markup (a word is cut where SSML tags were: script.seams) and are never
empty (what an empty element says indexes nothing).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from tempaudio_service.core.errors import AudioTooLong, NoSpeech
from tempaudio_service.speech.alignment import Word, label_phonemes, sounds, written_words
from tempaudio_service.speech.chunking import (
    chunk_limit,
    int16_frames,
    min_audio_seconds,
    sentence_pieces,
    word_context,
)
from tempaudio_service.speech.say_as import spoken_digit_seconds
from tempaudio_service.speech.script import Mark, Pause, Said, Script, request_span, seams
from tempaudio_service.speech.voices import SynthesisOptions, Timing

# Pieces of one sentence are normalized together up to this much audio; a run-on
# "sentence" of minutes is normalized in stretches, so its float samples are never all held.
NORMALIZE_SECONDS = 20
# Phonemes that make no sound of their own.
_SILENT = frozenset(" .,;:!?")
# Unicode's categories of what says nothing by itself: punctuation (P), separators (Z) and
# the invisible (C: controls, format characters such as zero-width spaces, unassigned).
_NOTHING_TO_SAY = frozenset("PZC")

# (phonemes, length_scale or None for the voice's) -> (float audio, the frame each phoneme
# starts at and one more, where the last one ends; None: the model has no durations)
Decode = Callable[[list[str], "float | None"], tuple[Any, Any]]
# Phonemes a piece of a long sentence leaves for the words around it (see Renderer._cut).
CONTEXT_PHONEMES = 24
# A stream's first words are normalized before the rest of their sentence is made: this far
# below their own full scale, so that the rest (whose peak is up to ~4 dB higher, measured
# on the benchmark's sentences) keeps their gain without clipping: no step in level at the
# seam. The rest is quieter than Piper's normalization only where it would clip.
EARLY_HEADROOM_DB = 4.0
# A piece cut out of a sentence fades in and out over this long at a cut.
FADE_SECONDS = 0.004


class Budget(Protocol):
    def hold(self, weight: float) -> Any: ...


@dataclass(frozen=True)
class Sentence:
    """One sentence to decode: its phonemes and, for timings, the word each one says."""

    phonemes: list[str]
    labels: list[int] | None
    said: Said
    # The said's place in the script: words are marked once per said.
    said_index: int
    words: Sequence[Word]
    length_scale: float | None


Step = Sentence | Pause | Mark


@dataclass
class _Marking:
    """How far the words of one said are marked."""

    # Words started so far: a word is marked at its first phoneme.
    done: int = 0
    # Where the last word mark ends in the request: the next one starts no sooner, so
    # marks never overlap (the words of an alias are one written word, one mark).
    end: int = 0
    # The index in the timings of the mark the current word's sounds extend; None while
    # a word the request does not hold is said (an empty element's alias).
    open: int | None = None


def plan(
    script: Script,
    phonemize: Callable[[str], list[list[str]]],
    id_map: Mapping[str, Any],
    options: SynthesisOptions,
) -> list[Step]:
    """The sentences, pauses and marks of a script, phonemized (without words: see
    ``with_words``); raises ``NoSpeech`` when nothing in it is said. Text of only
    punctuation, spaces and invisible characters is not said: espeak would name the marks
    (":::" as "colon colon colon")."""
    steps: list[Step] = []
    for said_index, item in enumerate(script):
        if not isinstance(item, Said):
            steps.append(item)
            continue
        if not says_something(item.text):
            continue
        scale = options.length_scale
        if item.rate != 1.0:
            scale = (scale or 1.0) / item.rate
        for phonemes in phonemize(item.text):
            kept = [p for p in phonemes if p in id_map]
            if not any(p not in _SILENT for p in kept):
                continue  # unknown phonemes and sentences of only breaks say nothing
            steps.append(Sentence(kept, None, item, said_index, (), scale))
    if not any(isinstance(step, Sentence) for step in steps):
        raise NoSpeech("the text holds nothing to say")
    return steps


def with_words(steps: Sequence[Step], alone: Callable[[str], str]) -> list[Step]:
    """The plan with the written word of each phoneme (alignment.py), said by said: run
    after the audio estimate, so a text refused as too long is never aligned."""
    by_said: dict[int, list[Sentence]] = {}
    for step in steps:
        if isinstance(step, Sentence):
            by_said.setdefault(step.said_index, []).append(step)
    labelled: dict[int, Sentence] = {}
    for sentences in by_said.values():
        said = sentences[0].said
        words = written_words(said.text, seams(said))
        labels = label_phonemes([s.phonemes for s in sentences], said.text, words, alone)
        for sentence, sentence_labels in zip(sentences, labels, strict=True):
            labelled[id(sentence)] = replace(sentence, labels=sentence_labels, words=words)
    return [labelled.get(id(step), step) for step in steps]


def too_long(max_seconds: float, estimate: float | None = None) -> str:
    what = f"at least {estimate:.0f} s of audio" if estimate else "more audio than allowed"
    return f"the text would make {what}; the limit is {max_seconds:g} s per request"


def says_something(text: str) -> bool:
    """Whether ``text`` holds a character that is not punctuation, a separator or invisible
    (pure)."""
    return any(unicodedata.category(char)[0] not in _NOTHING_TO_SAY for char in text)


def check_estimate(
    steps: Sequence[Step],
    voice_scale: float,
    options: SynthesisOptions,
    max_seconds: float,
    language: str = "",
) -> None:
    """Refuse before decoding when even a low estimate of the audio is over the cap: each
    said part makes at least what its phonemes make, and at least what the digits it says
    one by one make (say-as digits, telephone: a digit's name is longer than the phoneme
    estimate's few phonemes); ``language`` is espeak's, which says whether digits are
    English."""
    sentences = [s for s in steps if isinstance(s, Sentence)]
    by_said: dict[int, list[Sentence]] = {}
    for sentence in sentences:
        by_said.setdefault(sentence.said_index, []).append(sentence)
    estimate = sum(_said_estimate(said, voice_scale, language) for said in by_said.values())
    estimate += options.sentence_silence * max(0, len(sentences) - 1)
    estimate += sum(step.seconds for step in steps if isinstance(step, Pause))
    if estimate > max_seconds:
        raise AudioTooLong(too_long(max_seconds, estimate))


def _said_estimate(sentences: Sequence[Sentence], voice_scale: float, language: str) -> float:
    """A low estimate of the audio of one said part's sentences (all of one rate)."""
    scale = sentences[0].length_scale or voice_scale
    phonemes = min_audio_seconds([len(s.phonemes) for s in sentences], scale, 0.0)
    digits = spoken_digit_seconds(sentences[0].said.text, language) * scale
    return max(phonemes, digits)


class Renderer:
    """Renders a plan; ``timings`` (when given) gets each mark as its audio is decoded."""

    def __init__(
        self,
        decode: Decode,
        budget: Budget,
        *,
        sample_rate: int,
        voice_scale: float,
        max_chunk_phonemes: int,
        max_audio_seconds: float,
        options: SynthesisOptions,
        timings: list[Timing] | None,
        first_piece_phonemes: int = 0,
    ) -> None:
        self._decode = decode
        self._budget = budget
        self._rate = sample_rate
        self._voice_scale = voice_scale
        self._max_chunk = max_chunk_phonemes
        self._max_seconds = max_audio_seconds
        self._max_frames = int(max_audio_seconds * sample_rate)
        self._options = options
        self._timings = timings
        self._first_piece = first_piece_phonemes
        self._silence = b"\x00\x00" * int(sample_rate * options.sentence_silence)
        self.num_frames = 0
        # said_index -> how far its words are marked
        self._marking: dict[int, _Marking] = {}
        self._gain: float | None = None

    def render(self, steps: Sequence[Step]) -> Iterator[bytes]:
        spoken = False
        for step in steps:
            if isinstance(step, Pause):
                frames = int(step.seconds * self._rate)
                self._count(frames)
                if frames:
                    yield b"\x00\x00" * frames
            elif isinstance(step, Mark):
                self._mark(Timing("ssml", self.num_frames, step.start, step.end, step.name))
            else:
                pause = self._silence if spoken else b""
                spoken = True
                yield from self._sentence(step, pause)

    def _count(self, frames: int) -> None:
        self.num_frames += frames
        if self.num_frames > self._max_frames:
            raise AudioTooLong(too_long(self._max_seconds))

    def _mark(self, timing: Timing) -> None:
        if self._timings is not None:
            self._timings.append(timing)

    def _sentence(self, sentence: Sentence, pause: bytes) -> Iterator[bytes]:
        """Decoded in pieces; the pieces of a sentence are normalized together, as Piper
        normalizes a whole sentence (a first piece sent early sets the gain for the rest)."""
        import numpy as np

        scale = sentence.length_scale or self._voice_scale
        limit = chunk_limit(self._max_chunk, scale)
        start = self.num_frames + len(pause) // 2
        decoded = start
        self._mark_sentence(sentence, start)
        group: list[Any] = []
        grouped = 0
        # Room for a word of context on either side, within the decoder's limit.
        room = min(CONTEXT_PHONEMES, limit // 4) if len(sentence.phonemes) > limit else 0
        first = self._first_piece if not start else 0
        pieces = sentence_pieces(sentence.phonemes, max(1, limit - room), first)
        for at, piece in pieces:
            before, after = word_context(sentence.phonemes, at, len(piece), len(pieces) > 1)
            if len(before) + len(piece) + len(after) > limit:
                before, after = [], []  # never more at once than the limit
            said = [*before, *piece, *after]
            with self._budget.hold(len(said) * max(1.0, scale)):
                audio, bounds = self._decode(said, sentence.length_scale)
            audio, bounds = self._cut(np.atleast_1d(audio), bounds, len(before), len(piece))
            if bounds is not None and self._timings is not None:
                self._mark_words(sentence, at, piece, decoded, bounds)
            decoded += audio.size
            if decoded > self._max_frames:
                raise AudioTooLong(too_long(self._max_seconds))
            group.append(audio)
            grouped += audio.size
            early = self._first_piece and at == 0 and len(pieces) > 1 and start == 0
            if early or grouped >= NORMALIZE_SECONDS * self._rate:
                yield self._flush(pause, group, EARLY_HEADROOM_DB if early else 0.0)
                group, grouped, pause = [], 0, b""
        if group:
            yield self._flush(pause, group)
        self._gain = None

    def _cut(self, audio: Any, bounds: Any, head: int, size: int) -> tuple[Any, Any]:
        """A piece decoded with a word of context on either side (``head`` phonemes before
        it, the rest after it), so the model says its edges as inside a sentence, not as
        an utterance's start and end (no final lengthening): cut out in the middle of the
        word breaks around it, with a short fade. Its phonemes' frames move with it."""
        if bounds is None or len(bounds) < head + size + 1:
            return audio, bounds
        end_at = head + size  # the break after the piece, when there is context after it
        start = int((bounds[head - 1] + bounds[head]) / 2) if head else 0
        has_after = len(bounds) > end_at + 2
        end = int((bounds[end_at] + bounds[end_at + 1]) / 2) if has_after else audio.size
        piece = audio[start:end].copy()
        fade = min(int(FADE_SECONDS * self._rate), piece.size // 2)
        if fade:
            import numpy as np

            ramp = np.linspace(0.0, 1.0, fade, dtype=piece.dtype)
            if head:
                piece[:fade] *= ramp
            if has_after:
                piece[-fade:] *= ramp[::-1]
        return piece, bounds[head : end_at + 1] - start

    def _flush(self, pause: bytes, group: list[Any], headroom_db: float = 0.0) -> bytes:
        import numpy as np

        audio = np.concatenate(group) if len(group) > 1 else group[0]
        pcm, self._gain = int16_frames(audio, self._gain, headroom_db)
        frames = pause + pcm
        self.num_frames += len(frames) // 2
        return frames

    def _mark_sentence(self, sentence: Sentence, frame: int) -> None:
        if sentence.labels is None:
            return
        said_words = [label for label in sentence.labels if label >= 0]
        if not said_words:
            return
        first = sentence.words[min(said_words)]
        last = sentence.words[max(said_words)]
        span = request_span(sentence.said, first.start, last.end)
        if span is not None:
            self._mark(Timing("sentence", frame, span[0], span[1]))

    def _mark_words(
        self, sentence: Sentence, at: int, piece: list[str], frame: int, starts: Any
    ) -> None:
        """Each word starting in the piece marked at its first phoneme; each mark's end
        moved to the end of the last sound said for it so far."""
        assert self._timings is not None
        marking = self._marking.setdefault(sentence.said_index, _Marking())
        ends: dict[int, int] = {}
        for offset, label in enumerate(_piece_labels(sentence, at, piece)):
            if label >= marking.done:
                self._mark_word(sentence, label, frame + int(starts[offset]), marking)
            if marking.open is not None and sounds(piece[offset]):
                ends[marking.open] = frame + int(starts[offset + 1])
        for index, end_frame in ends.items():
            self._timings[index] = replace(self._timings[index], end_frame=end_frame)

    def _mark_word(self, sentence: Sentence, label: int, frame: int, marking: _Marking) -> None:
        """A word mark for ``sentence.words[label]``, unless the request does not hold it
        or the mark before already holds all of it."""
        assert self._timings is not None
        marking.done = label + 1
        word = sentence.words[label]
        span = request_span(sentence.said, word.start, word.end)
        if span is None or span[0] == span[1]:
            marking.open = None
            return
        start = max(span[0], marking.end)
        if start < span[1]:
            self._timings.append(Timing("word", frame, start, span[1]))
            marking.end = span[1]
            marking.open = len(self._timings) - 1


def _piece_labels(sentence: Sentence, at: int, piece: list[str]) -> list[int]:
    assert sentence.labels is not None
    return sentence.labels[at : at + len(piece)]
