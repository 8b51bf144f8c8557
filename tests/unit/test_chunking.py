import pytest
from hypothesis import given
from hypothesis import strategies as st

from tempaudio_service.chunking import split_phonemes


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
        # A word longer than the limit stays whole.
        ("abcdefgh ij", 4, ["abcdefgh", "ij"]),
        ("ab abcdefgh", 4, ["ab", "abcdefgh"]),
        ("abcdefgh", 4, ["abcdefgh"]),
    ],
)
def test_split_phonemes(text: str, limit: int, expected: list[str]) -> None:
    assert ["".join(piece) for piece in split_phonemes(words(text), limit)] == expected


def test_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="max_phonemes"):
        split_phonemes(["a"], -1)


phoneme_lists = st.lists(
    st.sampled_from(["a", "b", "\u026a", "\u02c8", ",", ".", " "]), max_size=200
)


@given(phonemes=phoneme_lists, limit=st.integers(min_value=1, max_value=60))
def test_pieces_rejoin_to_the_input_and_respect_the_limit(phonemes: list[str], limit: int) -> None:
    pieces = split_phonemes(phonemes, limit)
    # Nothing lost, nothing reordered: the same words, only the breaks between pieces go.
    assert [w for piece in pieces for w in "".join(piece).split(" ") if w] == [
        w for w in "".join(phonemes).split(" ") if w
    ]
    for piece in pieces:
        assert piece
        assert piece[0] != " "
        assert piece[-1] != " "
        # Over the limit only when the piece is one word that cannot be split.
        assert len(piece) <= limit or " " not in piece
