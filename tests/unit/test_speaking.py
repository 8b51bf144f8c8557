# ruff: noqa: RUF001, RUF003
# IPA letters are the content of these tests.
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tempaudio_service.core.errors import AudioTooLong, NoSpeech
from tempaudio_service.speech.chunking import (
    WORD_BREAK,
    int16_frames,
    sentence_pieces,
    word_context,
)
from tempaudio_service.speech.script import Item, Mark, Pause, Said, Script, Source, plain
from tempaudio_service.speech.speaking import Renderer, Sentence, check_estimate, plan, with_words
from tempaudio_service.speech.voices import SynthesisOptions, Timing

RATE = 1000  # frames a second: a phoneme of FRAMES frames lasts 10 ms
FRAMES = 10


# _pieces and _context


def spelled(pieces: list[tuple[int, list[str]]]) -> list[tuple[int, str]]:
    return [(at, "".join(piece)) for at, piece in pieces]


def test_a_sentence_within_the_limit_is_one_piece() -> None:
    assert spelled(sentence_pieces(list("ab cd"), 10, 0)) == [(0, "ab cd")]


def test_pieces_keep_to_the_limit_and_know_where_they_start() -> None:
    phonemes = list("ab cd ef gh")
    assert spelled(sentence_pieces(phonemes, 5, 0)) == [(0, "ab cd"), (6, "ef gh")]


def test_a_first_piece_ends_at_the_first_break_after_that_many_phonemes() -> None:
    phonemes = list("ab cd ef gh ij kl mn")
    pieces = spelled(sentence_pieces(phonemes, 8, 3))
    assert pieces[0] == (0, "ab")
    assert pieces[1:] == [(3, "cd ef gh"), (12, "ij kl mn")]


def test_a_first_piece_is_not_cut_from_a_short_sentence() -> None:
    # Only a sentence of more than twice the first piece is worth starting early.
    assert spelled(sentence_pieces(list("ab cd"), 10, 3)) == [(0, "ab cd")]


# A sentence: something said, breaks anywhere (a leading one too).
_SENTENCE = st.lists(
    st.sampled_from(["a", "b", "ˈ", "ː", ",", ".", WORD_BREAK]), min_size=1, max_size=60
).filter(lambda s: any(p != WORD_BREAK for p in s))


@given(_SENTENCE, st.integers(1, 12), st.integers(0, 8))
def test_every_phoneme_is_in_exactly_one_piece_in_order(
    phonemes: list[str], limit: int, first: int
) -> None:
    pieces = sentence_pieces(phonemes, limit, first)
    covered = [False] * len(phonemes)
    end = 0
    for index, (at, piece) in enumerate(pieces):
        assert piece
        assert phonemes[at : at + len(piece)] == piece
        assert at >= end
        # What lies between pieces is only the word breaks they dropped.
        assert all(p == WORD_BREAK for p in phonemes[end:at])
        covered[at : at + len(piece)] = [True] * len(piece)
        end = at + len(piece)
        cap = first if index == 0 and first and len(phonemes) > 2 * first else limit
        assert len(piece) <= cap
    assert all(done or p == WORD_BREAK for p, done in zip(phonemes, covered, strict=True))


def test_a_first_piece_after_a_leading_break_is_located_where_it_starts() -> None:
    phonemes = list(" ab cd ef gh")
    pieces = sentence_pieces(phonemes, 8, 2)
    assert all(phonemes[at : at + len(piece)] == piece for at, piece in pieces)


@given(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=5), st.integers(1, 5))
def test_a_first_piece_of_words_ends_at_a_word_break(word: list[str], first: int) -> None:
    phonemes = [*word, WORD_BREAK] * 20
    at, head = sentence_pieces(phonemes, 40, first)[0]
    assert at == 0
    if len(word) <= first:
        assert phonemes[len(head)] == WORD_BREAK
        assert len(head) <= first


def test_context_is_the_word_before_and_after_a_cut_piece() -> None:
    phonemes = list("ab cd ef, gh")
    before, after = word_context(phonemes, 3, 2, cut=True)  # the piece "cd"
    assert "".join(before) == "ab "
    assert "".join(after) == " ef,"


def test_context_stops_at_the_sentence_edges() -> None:
    phonemes = list("ab cd ef")
    assert word_context(phonemes, 0, 2, cut=True) == ([], list(" cd"))
    assert word_context(phonemes, 6, 2, cut=True) == (list("cd "), [])


def test_a_piece_not_cut_out_of_its_sentence_has_noword_context() -> None:
    assert word_context(list("ab cd ef"), 3, 2, cut=False) == ([], [])


def test_a_piece_cut_inside_a_word_has_no_context_there() -> None:
    # "abcdef" cut as "abc" and "def": no break next to the cut.
    assert word_context(list("abcdef gh"), 3, 3, cut=True) == ([], list(" gh"))


# int16_frames


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, "<i2")


def test_without_a_gain_audio_is_normalized_to_full_scale_and_the_gain_returned() -> None:
    pcm, gain = int16_frames(np.array([0.25, -0.5, 0.1], dtype=np.float32))
    assert samples(pcm).tolist() == [16384, -32767, 6553]
    assert gain == pytest.approx(32767 / 0.5)


def test_a_given_gain_is_kept_when_it_does_not_clip() -> None:
    pcm, gain = int16_frames(np.array([0.25, -0.5], dtype=np.float32), 1000.0)
    assert samples(pcm).tolist() == [250, -500]
    assert gain == 1000.0


def test_a_given_gain_that_would_clip_is_lowered_to_full_scale() -> None:
    pcm, gain = int16_frames(np.array([0.25, -0.5], dtype=np.float32), 100_000.0)
    assert samples(pcm).tolist() == [16384, -32767]
    assert gain == pytest.approx(32767 / 0.5)


def test_silence_keeps_the_gain_it_was_given() -> None:
    assert int16_frames(np.zeros(3), 7.0) == (bytes(6), 7.0)
    assert int16_frames(np.zeros(0)) == (b"", None)


# Renderer on a plan


class FakeDecoder:
    """Each phoneme is FRAMES frames of a tone; records what it was asked to say."""

    def __init__(self, budget: "FakeBudget | None" = None, *, durations: bool = True) -> None:
        self.calls: list[tuple[str, float | None]] = []
        self.budget = budget
        self.durations = durations

    def __call__(self, phonemes: list[str], length_scale: float | None) -> tuple[Any, Any]:
        if self.budget is not None:
            assert self.budget.held, "decoded outside the budget"
        self.calls.append(("".join(phonemes), length_scale))
        audio = np.tile(np.array([0.5, -0.5], dtype=np.float32), len(phonemes) * FRAMES // 2)
        bounds = np.arange(len(phonemes) + 1) * FRAMES
        return audio, bounds if self.durations else None


class FakeBudget:
    def __init__(self) -> None:
        self.held = False
        self.weights: list[float] = []

    @contextmanager
    def hold(self, weight: float) -> Iterator[None]:
        self.weights.append(weight)
        self.held = True
        try:
            yield
        finally:
            self.held = False


# What the fake espeak says: each said text as its sentences, each word alone.
SENTENCES = {
    "Hi there.": ["hˈaɪ ðˈɛɹ."],
    "Go on. Now.": ["ɡˈoʊ ˈɔn.", "nˈaʊ."],
    "...": ["."],
    "Hmm": ["ʘʘ"],  # sounds the voice does not have
}
ALONE = {"Hi": "haɪ", "there": "ðɛɹ", "Go": "ɡoʊ", "on": "ɔn", "Now": "naʊ"}
ID_MAP: Mapping[str, Any] = {
    p: [0] for text in SENTENCES.values() for s in text for p in s if p != "ʘ"
}


def phonemize(text: str) -> list[list[str]]:
    return [list(sentence) for sentence in SENTENCES[text]]


def make_plan(script: tuple[Item, ...], options: SynthesisOptions, *, timed: bool = True) -> Any:
    steps = plan(script, phonemize, ID_MAP, options)
    return with_words(steps, ALONE.__getitem__) if timed else steps


def renderer(
    options: SynthesisOptions,
    timings: list[Timing] | None,
    *,
    decode: FakeDecoder | None = None,
    budget: FakeBudget | None = None,
    max_seconds: float = 60.0,
    max_chunk: int = 150,
) -> Renderer:
    return Renderer(
        decode or FakeDecoder(),
        budget or FakeBudget(),
        sample_rate=RATE,
        voice_scale=1.0,
        max_chunk_phonemes=max_chunk,
        max_audio_seconds=max_seconds,
        options=options,
        timings=timings,
    )


# A request of two said parts with a break and a mark between them.
REQUEST = '<speak>Hi there.<break time="500ms"/><mark name="m"/>Go on. Now.</speak>'
FIRST = REQUEST.index("Hi")
SECOND = REQUEST.index("Go")
MARK_AT = REQUEST.index("<mark")
MARK_END = REQUEST.index("/>", MARK_AT) + 2


def said(text: str, at: int) -> Said:
    return Said(text=text, sources=(Source(0, len(text), at, at + len(text)),))


SCRIPT: tuple[Item, ...] = (
    said("Hi there.", FIRST),
    Pause(0.5),
    Mark("m", MARK_AT, MARK_END),
    said("Go on. Now.", SECOND),
)


def rendered(script: tuple[Item, ...], options: SynthesisOptions) -> tuple[bytes, list[Timing]]:
    timings: list[Timing] = []
    run = renderer(options, timings)
    audio = b"".join(run.render(make_plan(script, options)))
    assert run.num_frames * 2 == len(audio)
    return audio, timings


def marked(timings: list[Timing]) -> list[tuple[str, int, str]]:
    return [
        (t.kind, t.frame, t.name if t.name is not None else REQUEST[t.start : t.end])
        for t in timings
    ]


def test_words_are_marked_in_order_at_their_first_phoneme() -> None:
    _, timings = rendered(SCRIPT[:1], SynthesisOptions())
    assert marked(timings) == [
        ("sentence", 0, "Hi there"),
        ("word", 0, "Hi"),
        ("word", 5 * FRAMES, "there"),  # h ˈ a ɪ ␣ | ð
    ]


def test_a_word_mark_ends_where_its_last_sound_ends() -> None:
    _, timings = rendered(SCRIPT, SynthesisOptions(sentence_silence=0.2))
    go = 10 * FRAMES + 500 + 200
    ends = [(REQUEST[t.start : t.end], t.end_frame) for t in timings if t.kind == "word"]
    assert ends == [
        ("Hi", 4 * FRAMES),  # h ˈ a ɪ, not the break after it
        ("there", 9 * FRAMES),  # ð ˈ ɛ ɹ, not the full stop
        ("Go", go + 4 * FRAMES),
        ("on", go + 8 * FRAMES),
        ("Now", go + 9 * FRAMES + 200 + 4 * FRAMES),
    ]


def test_a_word_decoded_over_two_pieces_ends_in_the_second() -> None:
    text = "abcdefghijklmnop."
    options = SynthesisOptions()
    steps = with_words(
        plan(plain(text), lambda _: [list(text)], {p: [0] for p in text}, options), str
    )
    timings: list[Timing] = []
    b"".join(renderer(options, timings, max_chunk=6).render(steps))
    [word] = [t for t in timings if t.kind == "word"]
    assert (word.frame, word.end_frame) == (0, 16 * FRAMES)


def test_pauses_sentence_silence_and_marks_move_the_words_after_them() -> None:
    audio, timings = rendered(SCRIPT, SynthesisOptions(sentence_silence=0.2))
    first = 10 * FRAMES  # "hˈaɪ ðˈɛɹ."
    pause = 500
    silence = 200
    go = first + pause + silence
    now = go + 9 * FRAMES + silence  # "ɡˈoʊ ˈɔn.", then the next sentence "nˈaʊ."
    assert marked(timings) == [
        ("sentence", 0, "Hi there"),
        ("word", 0, "Hi"),
        ("word", 50, "there"),
        ("ssml", first + pause, "m"),
        ("sentence", go, "Go on"),
        ("word", go, "Go"),
        ("word", go + 5 * FRAMES, "on"),  # the stress of ˈɔn starts the word
        ("sentence", now, "Now"),
        ("word", now, "Now"),
    ]
    assert len(audio) == 2 * (now + 5 * FRAMES)
    quiet = samples(audio)[first : first + pause + silence]
    assert not quiet.any()
    assert samples(audio)[go : go + 10].all()


def test_a_mark_before_any_speech_is_at_the_start() -> None:
    _, timings = rendered((Mark("m", MARK_AT, MARK_END), SCRIPT[0]), SynthesisOptions())
    assert marked(timings)[0] == ("ssml", 0, "m")
    assert [t.frame for t in timings if t.kind == "word"] == [0, 50]


def test_sentence_silence_comes_only_between_sentences() -> None:
    audio, _ = rendered(SCRIPT[:1], SynthesisOptions(sentence_silence=0.2))
    assert len(audio) == 2 * 10 * FRAMES


def test_without_timings_nothing_is_marked_and_the_audio_is_the_same() -> None:
    options = SynthesisOptions(sentence_silence=0.2)
    timed_audio, _ = rendered(SCRIPT, options)
    run = renderer(options, None)
    audio = b"".join(run.render(make_plan(SCRIPT, options, timed=False)))
    assert audio == timed_audio


def test_a_model_without_durations_gives_audio_but_no_word_marks() -> None:
    timings: list[Timing] = []
    options = SynthesisOptions()
    run = renderer(options, timings, decode=FakeDecoder(durations=False))
    audio = b"".join(run.render(make_plan(SCRIPT[:1], options)))
    assert len(audio) == 2 * 10 * FRAMES
    assert [t.kind for t in timings] == ["sentence"]


def test_each_decode_holds_the_budget_for_its_phonemes_and_speed() -> None:
    budget = FakeBudget()
    decoder = FakeDecoder(budget)
    options = SynthesisOptions(length_scale=2.0)
    run = renderer(options, None, decode=decoder, budget=budget)
    b"".join(run.render(make_plan(SCRIPT[:1], options)))
    assert decoder.calls == [("hˈaɪ ðˈɛɹ.", 2.0)]
    assert budget.weights == [10 * 2.0]


def test_a_slower_said_part_is_decoded_at_its_own_length_scale() -> None:
    slow = Said(text="Hi there.", sources=(Source(0, 9, 0, 9),), rate=0.5)
    decoder = FakeDecoder()
    options = SynthesisOptions()
    b"".join(renderer(options, None, decode=decoder).render(make_plan((slow,), options)))
    assert decoder.calls == [("hˈaɪ ðˈɛɹ.", 2.0)]


def test_a_long_sentence_is_decoded_in_pieces_with_every_word_marked_once_in_order() -> None:
    words = [f"w{n}" for n in range(12)]
    spoken = ["pa", "ti", "ku", "mo", "se", "ra", "no", "bi", "fu", "de", "lo", "ga"]
    text = " ".join(words) + "."
    sentence = " ".join(spoken) + "."
    decoder = FakeDecoder()
    timings: list[Timing] = []
    options = SynthesisOptions()
    steps = with_words(
        plan(plain(text), lambda _: [list(sentence)], {p: [0] for p in sentence}, options),
        dict(zip(words, spoken, strict=True)).__getitem__,
    )
    run = renderer(options, timings, decode=decoder, max_chunk=12)
    audio = b"".join(run.render(steps))
    assert len(decoder.calls) > 1
    assert all(len(phonemes) <= 12 for phonemes, _ in decoder.calls)
    word_marks = [t for t in timings if t.kind == "word"]
    assert [text[t.start : t.end] for t in word_marks] == words
    frames = [t.frame for t in word_marks]
    assert frames == sorted(frames)
    assert len(set(frames)) == len(frames)
    assert frames[-1] < len(audio) // 2


def test_pauses_over_the_cap_are_refused_before_anything_is_decoded() -> None:
    decoder = FakeDecoder()
    options = SynthesisOptions()
    steps = make_plan((Pause(0.6), Pause(0.6), SCRIPT[0]), options)
    run = renderer(options, None, decode=decoder, max_seconds=1.0)
    with pytest.raises(AudioTooLong):
        b"".join(run.render(steps))
    assert decoder.calls == []


def test_decoded_audio_over_the_cap_is_refused() -> None:
    options = SynthesisOptions()
    steps = make_plan(SCRIPT[:1], options)  # 100 frames of speech
    run = renderer(options, None, max_seconds=0.05)
    with pytest.raises(AudioTooLong):
        b"".join(run.render(steps))


def test_pauses_within_the_cap_are_said() -> None:
    options = SynthesisOptions()
    steps = make_plan((Pause(0.4), SCRIPT[0], Pause(0.4)), options)
    audio = b"".join(renderer(options, None, max_seconds=1.0).render(steps))
    assert len(audio) == 2 * (400 + 100 + 400)


@pytest.mark.parametrize(
    "script",
    [
        pytest.param((Pause(1.0), Mark("m", 0, 1)), id="only a pause and a mark"),
        pytest.param((said("...", 0),), id="only punctuation"),
        pytest.param((said("Hmm", 0), Pause(0.5)), id="only sounds the voice lacks"),
        pytest.param((), id="nothing"),
    ],
)
def test_a_script_that_says_nothing_is_refused(script: tuple[Item, ...]) -> None:
    with pytest.raises(NoSpeech):
        make_plan(script, SynthesisOptions())


def test_sentences_that_say_nothing_are_left_out_of_the_plan() -> None:
    steps = make_plan((said("...", 0), SCRIPT[0]), SynthesisOptions())
    assert len(steps) == 1


# Nothing to say, and the low estimate before decoding


def naming(text: str) -> list[list[str]]:
    """An espeak that names whatever it is given (":" as "colon")."""
    return [list("kˈoʊlən")]


NAMING_IDS: Mapping[str, Any] = {phoneme: [0] for phoneme in "kˈoʊlən"}


@pytest.mark.parametrize("text", [":::", "!?", "¿¡…", "« — »", "\u200b\u2060", "%", "[[ ]]"])
def test_text_of_only_punctuation_spaces_and_invisible_characters_is_nothing_to_say(
    text: str,
) -> None:
    with pytest.raises(NoSpeech):
        plan(plain(text), naming, NAMING_IDS, SynthesisOptions())


@pytest.mark.parametrize("text", ["a", "$", "+", "😀", "¹", ": a :", "[[ˈa]]"])
def test_a_letter_digit_or_symbol_is_something_to_say(text: str) -> None:
    (step,) = plan(plain(text), naming, NAMING_IDS, SynthesisOptions())
    assert isinstance(step, Sentence)


def one_phoneme_a_character(text: str) -> list[list[str]]:
    """An espeak that gives each digit one phoneme: far fewer than its name has."""
    return [["a" if char.isdigit() else " " for char in text]]


def estimate_of(text: str, max_seconds: float, language: str = "en-us", **options: Any) -> None:
    """``check_estimate`` of ``text`` said with ``options``: AudioTooLong if refused."""
    chosen = SynthesisOptions(**options)
    steps = plan(plain(text), one_phoneme_a_character, {"a": [0], " ": [0]}, chosen)
    check_estimate(steps, 1.0, chosen, max_seconds, language)


ZEROS = " ".join("0" * 100)  # 199 phonemes here (4 s at 0.02 s each); "zero" 100 times


def test_digits_said_one_by_one_are_estimated_by_their_names_in_english() -> None:
    with pytest.raises(AudioTooLong, match="at least 29 s"):
        estimate_of(ZEROS, 20.0)  # 100 x 0.29 s, where the phonemes alone say 4 s
    estimate_of(ZEROS, 30.0)  # within the cap: on to decoding
    estimate_of(ZEROS, 20.0, language="de")  # "null": not English names
    estimate_of(ZEROS, 20.0, length_scale=0.5)  # twice as fast: 14.5 s
    estimate_of(f"[[{ZEROS}]]", 20.0)  # raw phonemes say no digit
    estimate_of(" ".join(["x0"] * 100), 20.0)  # digits inside words are not said alone
    with pytest.raises(AudioTooLong, match="at least 45 s"):  # 100 x (0.16 + 0.29) s
        estimate_of(", ".join(["3.0"] * 100), 40.0)  # "three point zero": both said alone


def test_the_estimate_is_of_each_said_part_at_its_own_rate() -> None:
    def parts(rate: float) -> Script:
        return (Said(ZEROS, (), rate=rate), Pause(1.0), Said(ZEROS, (), rate=rate))

    chosen = SynthesisOptions()
    ids = {"a": [0], " ": [0]}
    steps = plan(parts(1.0), one_phoneme_a_character, ids, chosen)
    with pytest.raises(AudioTooLong, match="at least 59 s"):  # 29 + 1 + 29
        check_estimate(steps, 1.0, chosen, 50.0, "en-us")
    slow = plan(parts(2.0), one_phoneme_a_character, ids, chosen)  # <prosody rate> twice
    check_estimate(slow, 1.0, chosen, 50.0, "en-us")
