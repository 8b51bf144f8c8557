# ruff: noqa: RUF001, RUF003
# IPA letters are the content of these tests.
from collections.abc import Callable, Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tempaudio_service.speech.alignment import label_phonemes, written_words
from tempaudio_service.speech.script import Said, Source, seams


def shown(text: str) -> list[str]:
    return [text[word.start : word.end] for word in written_words(text)]


def alone_from(said: Mapping[str, str]) -> Callable[[str], str]:
    """A fake phonemizer of single words: only the words a test expects to be asked for."""
    return lambda word: said[word]


def labelled(text: str, sentences: list[str], said: Mapping[str, str]) -> list[list[int]]:
    """Labels of sentences written one character a phoneme, as espeak's output is."""
    return label_phonemes([list(s) for s in sentences], text, written_words(text), alone_from(said))


def labels_of(sentence: str, labels: list[int], text: str) -> list[tuple[str, str]]:
    """Each phoneme with the written word it is labelled with ("" for none)."""
    words = shown(text)
    return [
        (p, words[label] if label >= 0 else "") for p, label in zip(sentence, labels, strict=True)
    ]


def spoken_words_of(sentence: str, labels: list[int], text: str) -> dict[str, str]:
    """The sounds labelled with each written word, breaks and stress left out."""
    out: dict[str, str] = {}
    for phoneme, word in labels_of(sentence, labels, text):
        if phoneme not in " ,.ˈˌ":
            out[word] = out.get(word, "") + phoneme
    return out


# written_words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hello, world!", ["Hello", "world"]),
        (
            '"Quoted" (bracketed) [x] {y} «oui» ¿qué?',
            ["Quoted", "bracketed", "x", "y", "oui", "qué"],
        ),
        ("“Smart” ‘quotes’…", ["Smart", "quotes"]),
        ("it's don't", ["it's", "don't"]),
        ("well-known — dash", ["well-known", "dash"]),
        ("4,815 and 3.14.", ["4,815", "and", "3.14"]),
        ("  spaced\tout\nlines  ", ["spaced", "out", "lines"]),
        ("!? …", []),
    ],
)
def test_written_words_leave_out_the_punctuation_around_them(text: str, words: list[str]) -> None:
    assert shown(text) == words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("the U.S.A. today.", ["the", "U.S.A.", "today"]),
        ("Fruit, e.g. apples.", ["Fruit", "e.g.", "apples"]),
        ("Dr. Smith", ["Dr", "Smith"]),
        ("(i.e.)", ["i.e."]),
    ],
)
def test_a_final_period_stays_only_with_a_word_that_has_another_inside(
    text: str, words: list[str]
) -> None:
    assert shown(text) == words


@pytest.mark.parametrize(
    ("text", "words"), [("Wait... what?", ["Wait", "what"]), ("so ... ok", ["so", "ok"])]
)
def test_an_ascii_ellipsis_is_punctuation_as_the_unicode_one_is(
    text: str, words: list[str]
) -> None:
    assert shown(text) == words


def test_a_raw_phoneme_block_is_one_word_spaces_and_all() -> None:
    text = "say [[ˈhɛloʊ wɜːld]], then [[a]]."
    assert shown(text) == ["say", "[[ˈhɛloʊ wɜːld]]", "then", "[[a]]"]


@pytest.mark.parametrize(
    ("text", "cuts", "words"),
    [
        ("unbelievable, really", (2, 8), ["un", "believ", "able", "really"]),
        ("(one)two", (5,), ["one", "two"]),
        ("W3C's", (3,), ["W3C", "s"]),
        ("Dr. U.S.A.", (4,), ["Dr", "U.S.A."]),
        ("at [[tə]]x", (3, 9), ["at", "[[tə]]", "x"]),
        ("edges only", (0, 5, 6, 10), ["edges", "only"]),
    ],
)
def test_a_word_is_cut_at_the_seams_inside_it(
    text: str, cuts: tuple[int, ...], words: list[str]
) -> None:
    assert [text[w.start : w.end] for w in written_words(text, cuts)] == words


def test_seams_are_where_the_said_text_stops_saying_one_stretch_of_the_request() -> None:
    # <speak>un<emphasis>believ</emphasis>able caf&#233;!</speak>, said "unbelievable café!"
    said = Said(
        "unbelievable café!",
        (
            Source(0, 2, 7, 9),
            Source(2, 8, 19, 25),
            Source(8, 16, 36, 44),  # "able caf", and the "&#233;" right after it
            Source(16, 17, 44, 50, replaced=True),
            Source(17, 18, 50, 51),
        ),
    )
    assert seams(said) == (0, 2, 8, 18)
    # Text the request does not hold (an empty element's alias) is cut from its neighbours.
    glued = Said("Hihello worldthere", (Source(0, 2, 7, 9), Source(13, 18, 36, 41)))
    assert seams(glued) == (0, 2, 13, 18)
    assert [glued.text[w.start : w.end] for w in written_words(glued.text, seams(glued))] == [
        "Hi",
        "hello",
        "world",
        "there",
    ]


def test_written_words_index_the_text() -> None:
    text = '  "Hi," she said.'
    words = written_words(text)
    assert [(w.start, w.end) for w in words] == [(3, 5), (8, 11), (12, 16)]


# label_phonemes


def test_words_said_one_to_one_label_their_own_phonemes() -> None:
    text = "hello world"
    sentence = "həlˈoʊ wˈɜːld."
    [labels] = labelled(text, [sentence], {"hello": "həlˈoʊ", "world": "wˈɜːld"})
    assert labels == [0] * 7 + [1] * 7


def test_a_number_said_as_several_words_is_one_written_word() -> None:
    text = "In 4,815 in"
    sentence = "ɪn fˈɔːɹ θˈaʊzənd ˈeɪt hˈʌndɹɪd fɪftˈiːn ɪn"
    said = {"In": "ɪn", "4,815": "fɔːɹ θaʊzənd eɪt hʌndɹəd fɪftiːn", "in": "ɪn"}
    [labels] = labelled(text, [sentence], said)
    assert spoken_words_of(sentence, labels, text) == {
        "In": "ɪn",
        "4,815": "fɔːɹθaʊzəndeɪthʌndɹɪdfɪftiːn",
        "in": "ɪn",
    }


def test_two_written_words_said_as_one_each_start_at_their_own_sounds() -> None:
    text = "sat in the house"
    sentence = "sˈæt ɪnðə hˈaʊs"
    said = {"sat": "sæt", "in": "ɪn", "the": "ðə", "house": "haʊs"}
    [labels] = labelled(text, [sentence], said)
    assert spoken_words_of(sentence, labels, text) == {
        "sat": "sæt",
        "in": "ɪn",
        "the": "ðə",
        "house": "haʊs",
    }


def test_a_stress_mark_belongs_to_the_word_after_it() -> None:
    text = "hello world"
    sentence = "həlˈoʊ ˈwɜːld"
    [labels] = labelled(text, [sentence], {"hello": "həloʊ", "world": "wɜːld"})
    assert labels[sentence.index(" ") + 1] == 1  # the ˈ of ˈwɜːld
    assert labels[sentence.index("ˈ")] == 0  # the ˈ inside həlˈoʊ


def test_a_sound_spilled_over_a_word_break_starts_the_next_word() -> None:
    # espeak says "for" as fɔːɹ but the word alone as ɔːɹ here: the f is matched to
    # nothing and would take the word before it, across the break.
    text = "today, for example"
    sentence = "tədˈeɪ, fɔːɹ ɛɡzˈæmpəl"
    said = {"today": "tədˈeɪ", "for": "ɔːɹ", "example": "ɛɡzˈæmpəl"}
    [labels] = labelled(text, [sentence], said)
    assert labels[sentence.index("f")] == 1
    assert labels[sentence.index(",")] == 0  # punctuation stays with the word before


def test_breaks_and_punctuation_join_the_word_before_them() -> None:
    text = "one, two"
    sentence = "wˈʌn, tˈuː."
    [labels] = labelled(text, [sentence], {"one": "wʌn", "two": "tuː"})
    assert labels_of(sentence, labels, text)[4:6] == [(",", "one"), (" ", "one")]
    assert labels[-1] == 1


def test_labels_run_across_sentences_and_keep_their_shape() -> None:
    text = "Dr. Smith came."
    sentences = ["dˈɑːktɚ.", "smˈɪθ kˈeɪm."]
    labels = labelled(text, sentences, {"Dr": "dɑːktɚ", "Smith": "smɪθ", "came": "keɪm"})
    assert [len(sentence) for sentence in labels] == [len(s) for s in sentences]
    assert labels[0] == [0] * len(sentences[0])
    assert labels[1] == [1] * 6 + [2] * 6


def test_labels_never_go_back_even_when_the_sounds_are_out_of_order() -> None:
    text = "ab cd"
    sentence = "dc ba"  # nothing lines up in order
    [labels] = labelled(text, [sentence], {"ab": "ab", "cd": "cd"})
    assert labels == sorted(labels)
    assert labels[0] >= 0


def test_a_raw_phoneme_block_is_matched_by_its_own_phonemes() -> None:
    text = "say [[ˈhɛloʊ]]"
    sentence = "sˈeɪ hˈɛloʊ"
    # The fake knows only "say": a block is never phonemized again.
    [labels] = labelled(text, [sentence], {"say": "seɪ"})
    assert spoken_words_of(sentence, labels, text) == {"say": "seɪ", "[[ˈhɛloʊ]]": "hɛloʊ"}


def test_without_words_every_phoneme_is_unlabelled() -> None:
    sentences = [list("ab c"), list("d.")]
    assert label_phonemes(sentences, "", [], alone_from({})) == [[-1, -1, -1, -1], [-1, -1]]


# A phoneme string of a word: sounds, with stress marks that are not sounds.
_PHONEMES = st.text(alphabet="abdefhiklmnoprstuvzæðŋɐɑɔəɛɪʃʊʌʒθˈˌː", max_size=6)


@given(st.lists(_PHONEMES, min_size=1, max_size=12))
def test_words_said_as_alone_each_get_their_sounds_in_order(phonemes: list[str]) -> None:
    text = " ".join(f"w{index}" for index in range(len(phonemes)))
    said = {f"w{index}": p for index, p in enumerate(phonemes)}
    sentence = " ".join(phonemes) + "."
    [labels] = labelled(text, [sentence], said)
    assert labels == sorted(labels)
    for index, p in enumerate(phonemes):
        if any(c not in "ˈˌ" for c in p):
            assert index in labels
