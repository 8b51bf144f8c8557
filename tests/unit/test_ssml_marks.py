"""SSML to speech marks and captions through the whole pure pipeline (parse_ssml, plan,
with_words, Renderer, speech_marks, cues), with a stand-in voice whose phonemes are the
letters it reads: word marks never overlap, never hold markup and are never empty."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempaudio_service.core.errors import NoSpeech
from tempaudio_service.speech.marks import CUE_MS, SpeechMark, caption_file, cues, speech_marks
from tempaudio_service.speech.speaking import Renderer, plan, with_words
from tempaudio_service.speech.ssml import parse_ssml
from tempaudio_service.speech.voices import SynthesisOptions, Timing

RATE = 1000  # frames a second; a letter lasts FRAMES frames
FRAMES = 10


class _AnyPhoneme(dict[str, Any]):
    """The stand-in voice has a phoneme for every character."""

    def __contains__(self, key: object) -> bool:
        return True


class _Budget:
    def hold(self, weight: float) -> Any:
        return _Held()


class _Held:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_: object) -> None:
        return None


def _letters(text: str) -> list[list[str]]:
    """espeak stand-in: a said text is one sentence of its letters."""
    return [list(text)]


def _decode(phonemes: list[str], length_scale: float | None) -> tuple[Any, Any]:
    audio = np.full(len(phonemes) * FRAMES, 0.5, dtype=np.float32)
    return audio, np.arange(len(phonemes) + 1) * FRAMES


def timings_of(document: str) -> tuple[list[Timing], int]:
    """The timings of ``document`` said by the stand-in voice, and its frames."""
    options = SynthesisOptions()
    steps = with_words(plan(parse_ssml(document), _letters, _AnyPhoneme(), options), str)
    timings: list[Timing] = []
    renderer = Renderer(
        _decode,
        _Budget(),
        sample_rate=RATE,
        voice_scale=1.0,
        max_chunk_phonemes=150,
        max_audio_seconds=600.0,
        options=options,
        timings=timings,
    )
    for _ in renderer.render(steps):
        pass
    return timings, renderer.num_frames


def marks_of(document: str) -> list[SpeechMark]:
    timings, _ = timings_of(document)
    return speech_marks(timings, document, RATE)


def words_of(document: str) -> list[str]:
    return [mark.value for mark in marks_of(document) if mark.type == "word"]


def assert_clean(document: str, marks: list[SpeechMark]) -> None:
    """Word marks are in order, never empty, never overlap and never hold markup."""
    words = [mark for mark in marks if mark.type == "word"]
    for mark in words:
        assert mark.start < mark.end, mark
        assert document[mark.start : mark.end] == mark.value
        assert "<" not in mark.value, mark
        assert mark.end_time is not None
        assert mark.time < mark.end_time
    for before, after in itertools.pairwise(words):
        assert before.end <= after.start, (before, after)
        assert before.end_time is not None
        assert before.end_time <= after.time


@pytest.mark.parametrize(
    ("document", "words"),
    [
        pytest.param(
            '<speak><say-as interpret-as="digits">12</say-as>'
            '<say-as interpret-as="digits">34</say-as> end</speak>',
            ["12", "34", "end"],
            id="say-as digits side by side",
        ),
        pytest.param(
            '<speak><sub alias="one">1</sub><sub alias="two">2</sub> end</speak>',
            ["1", "2", "end"],
            id="sub side by side",
        ),
        pytest.param(
            '<speak><say-as interpret-as="fraction">1/2</say-as>'
            '<say-as interpret-as="fraction">3/4</say-as> end</speak>',
            ["1/2", "3/4", "end"],
            id="say-as fraction side by side",
        ),
        pytest.param(
            '<speak><say-as interpret-as="digits">12</say-as>34 end</speak>',
            ["12", "34", "end"],
            id="say-as glued to text",
        ),
        pytest.param(
            "<speak>un<emphasis>believ</emphasis>able</speak>",
            ["un", "believ", "able"],
            id="an ignored tag inside a word",
        ),
        pytest.param(
            '<speak>Hi <sub alias="hello world"/> there</speak>',
            ["Hi", "there"],
            id="an empty sub marks nothing",
        ),
        pytest.param(
            '<speak>Hi<sub alias="hello world"/>there</speak>',
            ["Hi", "there"],
            id="an empty sub glued to words",
        ),
        pytest.param(
            "<speak>caf&#233; &#65;&amp; Tom</speak>",
            ["caf&#233;", "&#65;&amp;", "Tom"],
            id="references inside a word stay in it",
        ),
    ],
)
def test_word_marks_hold_the_written_words_between_the_tags(
    document: str, words: list[str]
) -> None:
    marks = marks_of(document)
    assert [mark.value for mark in marks if mark.type == "word"] == words
    assert_clean(document, marks)


def test_an_alias_said_in_several_words_is_one_mark_until_its_last_sound() -> None:
    document = '<speak><sub alias="World Wide Web">WWW</sub> is</speak>'
    timings, _ = timings_of(document)
    www, is_ = (timing for timing in timings if timing.kind == "word")
    assert document[www.start : www.end] == "WWW"
    # "World Wide Web" is 14 letters: the mark ends with the last of them ("b").
    assert (www.frame, www.end_frame) == (0, 14 * FRAMES)
    assert is_.frame == 15 * FRAMES


_FRAGMENTS = st.sampled_from(
    [
        '<say-as interpret-as="digits">12</say-as>',
        '<say-as interpret-as="fraction">3/4</say-as>',
        '<say-as interpret-as="characters">AB</say-as>',
        '<sub alias="one two">1</sub>',
        '<sub alias="hello world"/>',
        '<sub alias="x"></sub>',
        '<phoneme ph="tə">to</phoneme>',
        *("<emphasis>un</emphasis>", "<emphasis>", "</emphasis>", "believ", "able"),
        *(" ", ",", ".", "'s", "Dr.", "&amp;", "&#65;", "caf&#233;"),
        *('<break time="1s"/>', '<break strength="none"/>', '<mark name="m"/>'),
        *("<s>one</s>", "<p>two words</p>", '<prosody rate="fast">quick</prosody>'),
    ]
)


def _balanced(parts: list[str]) -> str:
    """The parts with each <emphasis> closed: a well-formed document."""
    out: list[str] = []
    depth = 0
    for part in parts:
        if part == "</emphasis>" and not depth:
            continue
        depth += {"<emphasis>": 1, "</emphasis>": -1}.get(part, 0)
        out.append(part)
    return "<speak>" + "".join(out) + "</emphasis>" * depth + "</speak>"


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=12))
def test_any_document_of_these_pieces_gets_clean_word_marks_and_cues(parts: list[str]) -> None:
    document = _balanced(parts)
    try:
        timings, frames = timings_of(document)
    except NoSpeech:
        return
    marks = speech_marks(timings, document, RATE)
    assert_clean(document, marks)
    made = cues(marks, frames * 1000 // RATE, document, verbatim=False)
    for cue in made:
        assert cue.start_ms < cue.end_ms <= cue.start_ms + CUE_MS
        assert "<" not in cue.text
    for before, after in itertools.pairwise(made):
        assert before.end_ms <= after.start_ms


def test_a_cue_before_a_long_break_ends_with_its_word_not_the_break() -> None:
    document = '<speak>Hello<break time="10s"/>world.</speak>'
    timings, frames = timings_of(document)
    made = cues(speech_marks(timings, document, RATE), frames, document, verbatim=False)
    assert [(cue.start_ms, cue.end_ms, cue.text) for cue in made] == [
        (0, 5 * FRAMES, "Hello"),
        # The break, then "world." (its full stop is a phoneme of its own, silent).
        (5 * FRAMES + 10_000, 11 * FRAMES + 10_000, "world"),
    ]


def test_ssml_captions_show_references_decoded_and_escaped_once() -> None:
    document = "<speak>&#65;&amp; Tom &lt;b&gt; caf&#233;</speak>"
    timings, frames = timings_of(document)
    made = cues(speech_marks(timings, document, RATE), frames, document, verbatim=False)
    assert [cue.text for cue in made] == ["A& Tom <b> café"]
    assert caption_file(made, "vtt").decode().endswith("\nA&amp; Tom &lt;b&gt; café\n")
    assert caption_file(made, "srt").decode().endswith("\nA& Tom \u2039b\u203a café\n")
