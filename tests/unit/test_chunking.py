import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tempaudio_service.speech.chunking import chunk_limit, phonemized, split_phonemes, text_pieces


def words(text: str) -> list[str]:
    """Phoneme lists in tests: one character a phoneme, as espeak's output is."""
    return list(text)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("", 10, []),
        ("   ", 10, []),
        ("ab cd", 0, ["ab cd"]),
        ("ab cd", 5, ["ab cd"]),
        (" ab cd ", 5, ["ab cd"]),
        ("ab cd ef", 5, ["ab cd", "ef"]),
        ("ab cd ef gh", 5, ["ab cd", "ef gh"]),
        # A clause mark in the second half of the window wins over the last word break.
        ("abcde, fg hi jk", 12, ["abcde,", "fg hi jk"]),
        # ...but not one so early that the piece would be tiny.
        ("a, bcd efg hij", 10, ["a, bcd efg", "hij"]),
        # A word longer than the limit is cut inside it (espeak reads "hello-hello-..." or
        # thousands of letters without a space as one word).
        ("abcdefgh ij", 4, ["abcd", "efgh", "ij"]),
        ("ab abcdefgh", 4, ["ab", "abcd", "efgh"]),
        ("abcdefgh", 4, ["abcd", "efgh"]),
        ("abcdefghi", 4, ["abcd", "efgh", "i"]),
        # ...but never between a phoneme and the length or combining mark after it.
        ("abc\u02d0:", 3, ["ab", "c\u02d0:"]),
        ("ab\u0303cd", 2, ["a", "b\u0303", "cd"]),
    ],
)
def test_split_phonemes(text: str, limit: int, expected: list[str]) -> None:
    assert ["".join(piece) for piece in split_phonemes(words(text), limit)] == expected


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_phonemes"):
        split_phonemes(["a"], -1)


@pytest.mark.parametrize(
    ("limit", "length_scale", "expected"),
    [(150, 1.0, 150), (150, 0.5, 150), (150, 2.0, 75), (150, 5.0, 30), (3, 5.0, 1)],
)
def test_slower_speech_gets_shorter_pieces(limit: int, length_scale: float, expected: int) -> None:
    assert chunk_limit(limit, length_scale) == expected


def test_no_piece_of_a_run_on_word_is_over_the_limit() -> None:
    # 4,800 phonemes with no break: before, one piece of 4,800 (a 5 GB decoder peak).
    pieces = split_phonemes(list("h\u0259l\u02c8o\u028a" * 800), 150)
    assert max(len(piece) for piece in pieces) <= 150
    assert sum(len(piece) for piece in pieces) == 4800


phoneme_lists = st.lists(
    st.sampled_from(["a", "b", "\u026a", "\u02c8", ",", ".", " "]), max_size=200
)


@given(phonemes=phoneme_lists, limit=st.integers(min_value=1, max_value=60))
def test_pieces_rejoin_to_the_input_and_respect_the_limit(phonemes: list[str], limit: int) -> None:
    pieces = split_phonemes(phonemes, limit)
    # Nothing lost, nothing reordered: only breaks between pieces go.
    assert [p for piece in pieces for p in piece if p != " "] == [p for p in phonemes if p != " "]
    for piece in pieces:
        assert piece
        assert piece[0] != " "
        assert piece[-1] != " "
        assert len(piece) <= limit


# --- text the phonemizer reads at once ----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("One. Two.", 20, [("One. Two.", "sentence")]),
        # The last sentence end in reach wins, however early.
        (
            "One two. Three four five",
            15,
            [("One two.", "sentence"), ("Three four five", "sentence")],
        ),
        # Then a clause mark in the second half of the reach, then the last space.
        ("One two, three four", 12, [("One two,", "word"), ("three four", "sentence")]),
        ("A, bc de fg hi", 10, [("A, bc de", "word"), ("fg hi", "sentence")]),
        # A blank line ends a sentence (espeak's too).
        ("One two\n\nthree four", 12, [("One two", "sentence"), ("three four", "sentence")]),
        # A word longer than the reach is cut inside, never between a letter and its mark.
        ("abcdefghij", 4, [("abcd", "inside"), ("efgh", "inside"), ("ij", "sentence")]),
        ("abce\u0301fg", 4, [("abc", "inside"), ("e\u0301fg", "sentence")]),
        # A raw phoneme block is never cut: a longer one is a piece of its own.
        ("ab [[p q r s t]] cd", 6, [("ab", "word"), ("[[p q r s t]]", "word"), ("cd", "sentence")]),
        ("ab[[pqrstuv]]cd", 6, [("ab", "inside"), ("[[pqrstuv]]", "inside"), ("cd", "sentence")]),
        ("[[p. q]] r", 6, [("[[p. q]]", "word"), ("r", "sentence")]),
    ],
)
def test_text_is_cut_where_a_sentence_ends_if_one_does_in_reach(
    text: str, limit: int, expected: list[tuple[str, str]]
) -> None:
    assert [(p.text, p.ends) for p in text_pieces(text, limit)] == expected


def fake_phonemize(text: str) -> list[list[str]]:
    """A phonemizer without context, as espeak is at a word break: one "phoneme" a
    character, sentences ended by a mark before white space or by a blank line."""
    sentences = re.split(r"(?<=[.!?])\s+|\n\s*\n", text)
    return [list(" ".join(s.split())) for s in sentences if s.split()]


_TEXT = st.lists(
    st.sampled_from(["ab", "c", " ", "  ", ".", ",", "!", "\n", "\n\n", "[[p. q]]", "[[rs]]"]),
    max_size=40,
).map("".join)


@given(_TEXT, st.integers(1, 16))
def test_no_piece_is_over_the_limit_and_together_they_say_the_text(text: str, limit: int) -> None:
    calls: list[str] = []

    def spy(piece: str) -> list[list[str]]:
        calls.append(piece)
        return fake_phonemize(piece)

    assert phonemized(spy, text, limit) == fake_phonemize(text)
    for piece in calls:
        assert len(piece) <= limit or re.fullmatch(r"\[\[[^\]]*\]\]", piece), piece
    # In order, with only white space between them, and no block cut.
    at = 0
    for piece in calls:
        found = text.index(piece, at)
        assert not text[at:found].strip()
        at = found + len(piece)
    assert not text[at:].strip()


def test_a_sentence_cut_in_pieces_is_one_sentence_again() -> None:
    text = "one two three, four five six. seven eight"
    assert [p.text for p in text_pieces(text, 12)] == [
        "one two",
        "three, four",
        "five six.",
        "seven eight",
    ]
    assert phonemized(fake_phonemize, text, 12) == fake_phonemize(text)
    assert ["".join(s) for s in phonemized(fake_phonemize, text, 12)] == [
        "one two three, four five six.",
        "seven eight",
    ]
