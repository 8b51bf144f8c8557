import itertools
import json
import re
from dataclasses import replace

import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st

from tempaudio_service.speech.marks import (
    CUE_CHARS,
    CUE_GAP_MS,
    CUE_LINE_CHARS,
    CUE_MS,
    Cue,
    SpeechMark,
    caption_file,
    cues,
    json_lines,
    speech_marks,
)
from tempaudio_service.speech.voices import Timing


def word_marks(text: str, times: list[int]) -> list[SpeechMark]:
    """A word mark at each time for the words of ``text`` (letters only, as the aligner
    finds them: the punctuation around a word is not in its mark)."""
    found = list(re.finditer(r"\w+", text))
    assert len(found) == len(times)
    return [
        SpeechMark(time, "word", match.start(), match.end(), match.group())
        for match, time in zip(found, times, strict=True)
    ]


def caption_text(caption: bytes) -> list[str]:
    """The text lines of a caption file: neither header, numbers, timings nor blanks."""
    return [
        line
        for line in caption.decode().split("\n")
        if line and line != "WEBVTT" and "-->" not in line and not line.isdigit()
    ]


# speech_marks


@pytest.mark.parametrize(
    ("frame", "rate", "ms"),
    [(0, 22050, 0), (22050, 22050, 1000), (11025, 22050, 500), (1, 22050, 0), (33, 16000, 2)],
)
def test_a_mark_is_at_whole_milliseconds_of_its_frame_at_the_voice_rate(
    frame: int, rate: int, ms: int
) -> None:
    [mark] = speech_marks([Timing("word", frame, 0, 2)], "Hi", rate)
    assert mark.time == ms


def test_a_sentence_comes_before_its_first_word_at_the_same_time() -> None:
    text = "Hi there."
    timings = [
        Timing("word", 0, 0, 2),
        Timing("sentence", 0, 0, 9),
        Timing("word", 4410, 3, 8),
    ]
    marks = speech_marks(timings, text, 22050)
    assert [(m.type, m.time) for m in marks] == [("sentence", 0), ("word", 0), ("word", 200)]


def test_marks_are_in_time_order_whatever_order_they_were_found_in() -> None:
    text = "one two three"
    timings = [Timing("word", 300, 8, 13), Timing("word", 0, 0, 3), Timing("word", 100, 4, 7)]
    marks = speech_marks(timings, text, 1000)
    assert [m.value for m in marks] == ["one", "two", "three"]


def test_a_mark_value_is_the_text_it_indexes_and_an_ssml_mark_value_is_its_name() -> None:
    text = '<speak>Hello <mark name="here"/>world</speak>'
    tag = text.index("<mark")
    timings = [
        Timing("word", 0, 7, 12),
        Timing("ssml", 500, tag, text.index("/>") + 2, name="here"),
        Timing("word", 500, text.index("world"), text.index("world") + 5),
    ]
    marks = speech_marks(timings, text, 1000)
    assert [(m.type, m.value) for m in marks] == [
        ("word", "Hello"),
        ("word", "world"),
        ("ssml", "here"),
    ]
    for mark in marks:
        if mark.type == "word":
            assert text[mark.start : mark.end] == mark.value
    ssml = next(m for m in marks if m.type == "ssml")
    assert text[ssml.start : ssml.end] == '<mark name="here"/>'


# json_lines


def test_json_lines_is_one_compact_object_a_line_of_the_requested_types_only() -> None:
    text = "Café au lait."
    marks = [
        SpeechMark(0, "sentence", 0, 13, text),
        SpeechMark(0, "word", 0, 4, "Café"),
        SpeechMark(120, "ssml", 5, 5, "m"),
        SpeechMark(250, "word", 5, 7, "au"),
    ]
    data = json_lines(marks, ["word"])
    lines = data.decode().split("\n")
    assert lines[-1] == ""  # every line ends with a newline
    objects = [json.loads(line) for line in lines[:-1]]
    assert objects == [
        {"time": 0, "type": "word", "start": 0, "end": 4, "value": "Café"},
        {"time": 250, "type": "word", "start": 5, "end": 7, "value": "au"},
    ]
    assert all(": " not in line and ", " not in line for line in lines)


def test_json_lines_keeps_non_ascii_text_as_is() -> None:
    data = json_lines([SpeechMark(0, "word", 0, 5, "naïve")], ["word", "sentence"])
    assert "naïve".encode() in data
    assert b"\\u" not in data


def test_json_lines_of_no_requested_marks_is_empty() -> None:
    assert json_lines([SpeechMark(0, "ssml", 0, 1, "m")], ["word"]) == b""


def test_json_lines_escape_what_line_readers_end_a_line_at() -> None:
    names = ["a\u2028b", "c\u2029d", "e\x85f", "g\nh"]
    data = json_lines([SpeechMark(n, "ssml", 0, 1, name) for n, name in enumerate(names)], ["ssml"])
    lines = data.decode().splitlines()
    assert [json.loads(line)["value"] for line in lines] == names
    assert data.count(b"\n") == len(names)


# cues


def test_each_sentence_starts_a_new_cue_that_ends_where_the_next_begins() -> None:
    text = "Hello there. How are you?"
    hello, there, how, are, you = word_marks(text, [0, 400, 1000, 1200, 1400])
    marks = [
        SpeechMark(0, "sentence", 0, 12, text[:12]),
        hello,
        there,
        SpeechMark(1000, "sentence", 13, 25, text[13:]),
        how,
        are,
        you,
    ]
    assert cues(marks, 2000, text, verbatim=True) == [
        Cue(0, 1000, "Hello there."),
        Cue(1000, 2000, "How are you?"),
    ]


def test_the_last_cue_ends_with_the_audio() -> None:
    text = "Only words"
    [cue] = cues(word_marks(text, [100, 300]), 4321, text, verbatim=True)
    assert (cue.start_ms, cue.end_ms) == (100, 4321)


def test_a_cue_lasts_at_least_a_millisecond() -> None:
    text = "late"
    [cue] = cues(word_marks(text, [900]), 900, text, verbatim=True)
    assert cue.end_ms > cue.start_ms


def test_a_cue_is_split_before_it_would_be_over_the_character_limit() -> None:
    text = " ".join(f"word{n:02d}" for n in range(40))  # 279 characters, one sentence
    marks = word_marks(text, [n * 10 for n in range(40)])
    made = cues(marks, 1000, text, verbatim=True)
    assert len(made) > 1
    assert all(len(cue.text) <= CUE_CHARS for cue in made)
    # ...and no cue could have taken the next word.
    for cue, following in itertools.pairwise(made):
        assert len(cue.text + " " + following.text.split(" ")[0]) > CUE_CHARS
    assert " ".join(cue.text for cue in made) == text


@pytest.mark.parametrize(("gap", "count"), [(CUE_MS, 1), (CUE_MS + 1, 2)])
def test_a_cue_is_split_when_it_would_be_on_screen_too_long(gap: int, count: int) -> None:
    text = "slow words"
    made = cues(word_marks(text, [0, gap]), gap + 500, text, verbatim=True)
    assert len(made) == count


def test_verbatim_cues_show_the_punctuation_stuck_to_the_first_and_last_words() -> None:
    text = '"Well," she said,\n  (quietly).  Next'
    marks = word_marks(text, [0, 100, 200, 300, 5000])[:4]
    [cue] = cues(marks, 1000, text, verbatim=True)
    assert cue.text == '"Well," she said, (quietly).'


def test_a_sentence_split_over_two_cues_keeps_each_word_punctuation_in_its_own_cue() -> None:
    text = "Wait, (what)?"
    made = cues(word_marks(text, [0, CUE_MS + 1]), CUE_MS + 500, text, verbatim=True)
    assert [cue.text for cue in made] == ["Wait,", "(what)?"]


def test_ssml_cues_join_the_mark_values_not_the_document() -> None:
    text = '<speak><sub alias="Doctor">Dr.</sub> Smith!</speak>'
    sub = text.index("<sub")
    smith = text.index("Smith")
    marks = [
        SpeechMark(0, "word", sub, text.index("</sub>") + 6, "Doctor"),
        SpeechMark(300, "ssml", 0, 0, "ignored"),
        SpeechMark(400, "word", smith, smith + 5, "Smith"),
    ]
    [cue] = cues(marks, 900, text, verbatim=False)
    assert cue.text == "Doctor Smith"


def test_ssml_cues_show_references_decoded() -> None:
    text = "<speak>&#65;&amp; &lt;b&gt;</speak>"
    marks = [
        SpeechMark(0, "word", 7, 17, "&#65;&amp;"),
        SpeechMark(500, "word", 18, 27, "&lt;b&gt;"),
    ]
    [cue] = cues(marks, 900, text, verbatim=False)
    assert cue.text == "A& <b>"
    assert caption_text(caption_file([cue], "vtt")) == ["A&amp; &lt;b&gt;"]


def test_a_cue_ends_with_its_last_word_when_silence_follows() -> None:
    text = "Hello world"
    hello, world = word_marks(text, [0, 10_500])
    timed = [replace(hello, end_time=400), replace(world, end_time=11_000)]
    made = cues(timed, 11_100, text, verbatim=True)
    assert [(cue.start_ms, cue.end_ms) for cue in made] == [(0, 400), (10_500, 11_100)]


@pytest.mark.parametrize(("gap", "end"), [(CUE_GAP_MS, 1400), (CUE_GAP_MS + 1, 900)])
def test_a_cue_runs_on_to_the_next_one_across_a_short_gap(gap: int, end: int) -> None:
    text = "One. Two."
    one, two = word_marks(text, [0, 900 + gap])
    marks = [
        SpeechMark(0, "sentence", 0, 4, "One."),
        replace(one, end_time=900),
        SpeechMark(900 + gap, "sentence", 5, 9, "Two."),
        replace(two, end_time=1900 + gap),
    ]
    first, _ = cues(marks, 5000, text, verbatim=True)
    assert first.end_ms == end


def test_a_cue_whose_last_word_ends_past_the_limit_is_split_before_it() -> None:
    text = "quick slow"
    quick, slow = word_marks(text, [0, CUE_MS - 1000])
    timed = [replace(quick, end_time=500), replace(slow, end_time=CUE_MS + 500)]
    made = cues(timed, CUE_MS + 600, text, verbatim=True)
    assert [cue.text for cue in made] == ["quick", "slow"]
    assert all(cue.end_ms - cue.start_ms <= CUE_MS for cue in made)


def test_no_cue_is_on_screen_longer_than_the_limit() -> None:
    text = "Looooong"
    [word] = word_marks(text, [100])
    [cue] = cues([replace(word, end_time=100 + 2 * CUE_MS)], 3 * CUE_MS, text, verbatim=True)
    assert (cue.start_ms, cue.end_ms) == (100, 100 + CUE_MS)
    [cue] = cues([word], 3 * CUE_MS, text, verbatim=True)  # its end not known
    assert (cue.start_ms, cue.end_ms) == (100, 100 + CUE_MS)


def test_marks_other_than_words_and_sentences_make_no_cue() -> None:
    assert cues([SpeechMark(0, "ssml", 0, 0, "m")], 100, "x", verbatim=True) == []


def test_a_word_longer_than_a_cue_is_cut_to_one() -> None:
    text = "a" + "b" * 200 + " c"
    made = cues(word_marks(text, [0, 100]), 1000, text, verbatim=True)
    assert all(len(cue.text) <= CUE_CHARS for cue in made)
    assert made[0].text.startswith("ab")
    assert made[0].text.endswith("\u2026")
    assert made[-1].text == "c"


# caption_file


def test_webvtt_has_its_header_and_dotted_timings() -> None:
    data = caption_file([Cue(1500, 3000, "Hello"), Cue(3000, 4250, "world")], "vtt")
    assert data.decode() == (
        "WEBVTT\n\n00:00:01.500 --> 00:00:03.000\nHello\n\n00:00:03.000 --> 00:00:04.250\nworld\n"
    )


def test_subrip_numbers_its_cues_and_uses_a_comma_before_milliseconds() -> None:
    data = caption_file([Cue(1500, 3000, "Hello"), Cue(3000, 4250, "world")], "srt")
    assert data.decode() == (
        "1\n00:00:01,500 --> 00:00:03,000\nHello\n\n2\n00:00:03,000 --> 00:00:04,250\nworld\n"
    )


@pytest.mark.parametrize(
    ("ms", "clock"),
    [
        (3_599_999, "00:59:59.999"),
        (3_600_000, "01:00:00.000"),
        (3_723_456, "01:02:03.456"),
        (25 * 3_600_000 + 7, "25:00:00.007"),
    ],
)
def test_timings_past_an_hour_count_hours(ms: int, clock: str) -> None:
    data = caption_file([Cue(ms, ms + 1, "x")], "vtt").decode()
    assert data.split("\n")[2].startswith(f"{clock} --> ")


@pytest.mark.parametrize("fmt", ["vtt", "srt"])
def test_an_arrow_in_the_text_cannot_end_the_timing_line(fmt: str) -> None:
    data = caption_file([Cue(0, 1000, "a --> b"), Cue(1000, 2000, "-->")], fmt).decode()
    assert data.count("-->") == 2  # the timing lines' own
    assert all("-->" not in line for line in caption_text(data.encode()))


def test_webvtt_escapes_markup_characters_as_entities() -> None:
    cue = Cue(0, 1000, "Tom & Jerry <3 x>y <b>")
    assert caption_text(caption_file([cue], "vtt")) == ["Tom &amp; Jerry &lt;3 x&gt;y &lt;b&gt;"]


def test_subrip_shows_angle_brackets_as_look_alikes_players_do_not_read_as_tags() -> None:
    cue = Cue(0, 1000, "Tom & Jerry <i>x</i>")
    [line] = caption_text(caption_file([cue], "srt"))
    assert "<" not in line
    assert ">" not in line
    assert line == "Tom & Jerry \u2039i\u203ax\u2039/i\u203a"


def test_a_short_cue_stays_on_one_line() -> None:
    text = "x" * 20 + " " + "y" * (CUE_LINE_CHARS - 21)
    assert caption_text(caption_file([Cue(0, 1000, text)], "srt")) == [text]


def test_a_long_cue_is_broken_at_the_space_nearest_the_middle() -> None:
    text = "The quick brown fox jumps over the lazy dog and runs far away"  # 61 characters
    lines = caption_text(caption_file([Cue(0, 1000, text)], "srt"))
    assert lines == ["The quick brown fox jumps over", "the lazy dog and runs far away"]
    assert all(len(line) <= CUE_LINE_CHARS for line in lines)


def test_a_long_cue_without_a_space_is_broken_in_the_middle() -> None:
    text = "x" * 30 + "y" * 30
    assert caption_text(caption_file([Cue(0, 1000, text)], "srt")) == ["x" * 30, "y" * 30]


def clusters(text: str) -> list[str]:
    return regex.findall(r"\X", text)


# A flag (two regional indicators), a letter and a combining accent, a family (ZWJ), a
# Devanagari syllable with its vowel sign, a letter: one grapheme cluster each.
CLUSTERS = [
    "\U0001f1fa\U0001f1f8",
    "e\u0301",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\u0915\u093f",
    "x",
]


def cluster_bounds(text: str) -> set[int]:
    return {0, *itertools.accumulate(len(c) for c in clusters(text))}


@given(st.lists(st.sampled_from(CLUSTERS), min_size=15, max_size=80))
def test_a_line_break_without_a_space_falls_between_grapheme_clusters(parts: list[str]) -> None:
    text = "".join(parts)
    broken = "\n".join(caption_text(caption_file([Cue(0, 1000, text)], "srt")))
    if len(text) > CUE_LINE_CHARS:
        at = broken.index("\n")
        assert at in cluster_bounds(text)
        assert broken == text[:at] + "\n" + text[at:]
    else:
        assert broken == text


@given(st.lists(st.sampled_from(CLUSTERS), min_size=20, max_size=80))
def test_a_word_cut_to_a_cue_keeps_whole_grapheme_clusters(parts: list[str]) -> None:
    word = "".join(parts)
    [cue] = cues(word_marks_of(word), 1000, word, verbatim=True)
    assert len(cue.text) <= CUE_CHARS
    kept = cue.text.removesuffix("\u2026")
    assert word.startswith(kept)
    assert len(kept) in cluster_bounds(word)


def word_marks_of(text: str) -> list[SpeechMark]:
    """One word mark over all of ``text``."""
    return [SpeechMark(0, "word", 0, len(text), text)] if text else []


def test_a_long_cue_without_a_space_is_broken_between_clusters_near_the_middle() -> None:
    text = "e\u0301" * 25  # 50 characters, 25 clusters: the middle character is an accent
    assert caption_text(caption_file([Cue(0, 1000, text)], "srt")) == [
        "e\u0301" * 12,
        "e\u0301" * 13,
    ]


def test_a_word_cut_to_a_cue_keeps_whole_flags() -> None:
    flags = "\U0001f1fa\U0001f1f8" * 60  # 120 characters
    [cue] = cues(word_marks_of(flags), 1000, flags, verbatim=True)
    assert cue.text == "\U0001f1fa\U0001f1f8" * 41 + "\u2026"


@given(
    st.lists(
        st.text(alphabet="abcdefghij", min_size=1, max_size=8),
        min_size=2,
        max_size=12,
    )
)
def test_a_broken_cue_keeps_every_word_and_its_lines_balance(words: list[str]) -> None:
    text = " ".join(words)
    lines = caption_text(caption_file([Cue(0, 1000, text)], "srt"))
    assert " ".join(lines) == text
    if len(text) > CUE_LINE_CHARS:
        assert len(lines) == 2
        middle = len(text) // 2
        # No other space is nearer the middle than the one the text was broken at.
        cut = len(lines[0])
        assert all(abs(cut - middle) <= abs(i - middle) for i, c in enumerate(text) if c == " ")
    else:
        assert lines == [text]


def test_every_line_of_a_captioned_cue_fits_a_broadcast_line() -> None:
    text = " ".join(["abcdefghij"] * 7 + ["abcd"])  # 81 characters, but no two lines of 42
    marks = word_marks(text, [n * 100 for n in range(8)])
    made = cues(marks, 1000, text, verbatim=True)
    assert len(made) == 2
    assert " ".join(cue.text for cue in made) == text
    lines = caption_text(caption_file(made, "srt"))
    assert all(len(line) <= CUE_LINE_CHARS for line in lines)
