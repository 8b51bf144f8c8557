# ruff: noqa: RUF001
# IPA letters are the content of these tests.
import pytest

from tempaudio_api.lexicon import Lexicon, LexiconEntry
from tempaudio_service.core.errors import TextTooLong
from tempaudio_service.speech.pronounce import with_lexicons
from tempaudio_service.speech.script import Item, Mark, Pause, Said, Source, plain, request_span


def lexicon(name: str, *entries: LexiconEntry) -> Lexicon:
    return Lexicon(name=name, entries=entries)


def alias(grapheme: str, said: str) -> LexiconEntry:
    return LexiconEntry(grapheme=grapheme, alias=said)


def said_text(text: str, *lexicons: Lexicon) -> str:
    [item] = with_lexicons(plain(text), lexicons)
    assert isinstance(item, Said)
    return item.text


def span_of(said: Said, word: str, text: str) -> str:
    """What of the request ``text`` the word ``word`` of the said text says."""
    start = said.text.index(word)
    span = request_span(said, start, start + len(word))
    assert span is not None
    return text[span[0] : span[1]]


SQL = lexicon("db", alias("SQL", "sequel"))


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("SQL", "sequel"),
        ("I like SQL.", "I like sequel."),
        ("(SQL, SQL)", "(sequel, sequel)"),
        ("SQLite", "SQLite"),
        ("MySQL", "MySQL"),
        ("SQL_x", "SQL_x"),
        ("sql and Sql", "sql and Sql"),
    ],
)
def test_an_alias_replaces_whole_words_only_and_case_sensitively(text: str, said: str) -> None:
    assert said_text(text, SQL) == said


def test_the_longest_grapheme_wins_where_several_start_at_once() -> None:
    places = lexicon("places", alias("New York", "the big apple"), alias("New York City", "NYC"))
    assert said_text("New York City, New York", places) == "NYC, the big apple"


def test_the_first_lexicon_in_order_says_a_grapheme_both_define() -> None:
    first = lexicon("first", alias("GIF", "jif"))
    second = lexicon("second", alias("GIF", "gif"), alias("PNG", "ping"))
    assert said_text("GIF PNG", first, second) == "jif ping"
    assert said_text("GIF PNG", second, first) == "gif ping"


def test_a_phoneme_entry_is_said_as_a_raw_ipa_block() -> None:
    lexicons = lexicon(
        "p",
        LexiconEntry(grapheme="tomato", phoneme='t@"mA:toU', alphabet="x-sampa"),
        LexiconEntry(grapheme="grape", phoneme="ɡɹeɪp"),
    )
    assert said_text("tomato grape", lexicons) == "[[təˈmɑːtoʊ]] [[ɡɹeɪp]]"


def test_without_entries_the_script_is_unchanged() -> None:
    script = plain("SQL")
    assert with_lexicons(script, []) == script
    assert with_lexicons(script, [lexicon("empty")]) == script


def test_an_alias_is_not_said_again_with_another_grapheme() -> None:
    chain = lexicon("chain", alias("A", "B"), alias("B", "C"))
    assert said_text("A B", chain) == "B C"


def test_text_ssml_already_replaced_is_left_alone() -> None:
    # '<sub alias="SQL">S</sub> is SQL': the sub's alias says "SQL" for one letter.
    request = '<sub alias="SQL">S</sub> is SQL'
    sub_end = request.index("</sub>") + len("</sub>")
    item = Said(
        text="SQL is SQL",
        sources=(Source(0, 3, 0, sub_end, replaced=True), Source(3, 10, sub_end, len(request))),
    )
    [out] = with_lexicons((item,), [SQL])
    assert isinstance(out, Said)
    assert out.text == "SQL is sequel"
    assert out.sources[0] == Source(0, 3, 0, sub_end, replaced=True)
    assert span_of(out, "sequel", request) == "SQL"


def test_said_text_outside_any_source_is_kept_but_not_replaced() -> None:
    # "SQL" added for prosody (outside every source) says nothing of the request.
    item = Said(text="SQL, SQL", sources=(Source(5, 8, 0, 3),))
    [out] = with_lexicons((item,), [SQL])
    assert isinstance(out, Said)
    assert out.text == "SQL, sequel"
    assert request_span(out, 0, 3) is None
    assert request_span(out, 5, 11) == (0, 3)


def test_pauses_and_marks_pass_through_in_place() -> None:
    script: tuple[Item, ...] = (
        Pause(0.5),
        *plain("SQL"),
        Mark("here", 3, 20),
        Pause(1.0),
    )
    out = with_lexicons(script, [SQL])
    assert out[0] == Pause(0.5)
    assert isinstance(out[1], Said)
    assert out[1].text == "sequel"
    assert out[2:] == (Mark("here", 3, 20), Pause(1.0))


def test_the_speaking_rate_of_a_said_is_kept() -> None:
    item = Said(text="SQL", sources=(Source(0, 3, 0, 3),), rate=1.5)
    [out] = with_lexicons((item,), [SQL])
    assert isinstance(out, Said)
    assert out.rate == 1.5


def test_every_word_of_an_alias_indexes_the_whole_grapheme() -> None:
    text = "Visit New York City today."
    places = lexicon("places", alias("New York City", "the big apple"))
    [said] = with_lexicons(plain(text), [places])
    assert isinstance(said, Said)
    assert said.text == "Visit the big apple today."
    for word in ("the", "big", "apple"):
        assert span_of(said, word, text) == "New York City"
    start = said.text.index("big")
    assert request_span(said, start, start + 3) == (6, 19)


def test_words_outside_an_alias_keep_their_exact_offsets() -> None:
    text = "Visit New York City today, SQL fans."
    [said] = with_lexicons(plain(text), [lexicon("x", alias("New York City", "NYC")), SQL])
    assert isinstance(said, Said)
    assert said.text == "Visit NYC today, sequel fans."
    for word in ("Visit", "today", "fans"):
        start = said.text.index(word)
        span = request_span(said, start, start + len(word))
        assert span == (text.index(word), text.index(word) + len(word))
    assert span_of(said, "oday,", text) == "oday,"
    assert span_of(said, "sequel", text) == "SQL"


def test_a_span_across_an_alias_runs_from_the_first_word_to_the_last() -> None:
    text = "Visit New York City today."
    [said] = with_lexicons(plain(text), [lexicon("x", alias("New York City", "NYC"))])
    assert isinstance(said, Said)
    assert span_of(said, "Visit NYC today", text) == "Visit New York City today"


@pytest.mark.parametrize(("text", "cut"), [("SQLite is small", 3), ("MySQL is big", 2)])
def test_a_word_split_over_two_sources_is_still_one_word(text: str, cut: int) -> None:
    # What parse_ssml makes of '<speak>SQL<emphasis>ite</emphasis> is small</speak>':
    # adjacent said text from request offsets that are not adjacent.
    item = Said(
        text=text,
        sources=(Source(0, cut, 0, cut), Source(cut, len(text), 20, 20 + len(text) - cut)),
    )
    [out] = with_lexicons((item,), [SQL])
    assert isinstance(out, Said)
    assert out.text == text


# --- NFC --------------------------------------------------------------------------------

CAFE_NFC = "caf\u00e9"
CAFE_NFD = "cafe\u0301"


@pytest.mark.parametrize("grapheme", [CAFE_NFC, CAFE_NFD])
@pytest.mark.parametrize("written", [CAFE_NFC, CAFE_NFD])
def test_a_grapheme_matches_composed_or_decomposed_text(grapheme: str, written: str) -> None:
    text = f"Meet at the {written}, then the {written}."
    [said] = with_lexicons(plain(text), [lexicon("x", alias(grapheme, "coffee shop"))])
    assert isinstance(said, Said)
    assert said.text == "Meet at the coffee shop, then the coffee shop."
    # Marks index the request as the client wrote it, whichever form that was.
    assert span_of(said, "coffee shop", text) == written
    start = said.text.index("then")
    assert request_span(said, start, start + 4) == (text.index("then"), text.index("then") + 4)


def test_a_combining_mark_belongs_to_its_word() -> None:
    # "cafe" + U+0301 is "café": not the word "cafe" followed by something else.
    assert said_text(f"a {CAFE_NFD}.", lexicon("x", alias("cafe", "coffee"))) == f"a {CAFE_NFD}."
    assert said_text(f"{CAFE_NFD}\u0301 x", lexicon("x", alias(CAFE_NFC, "y"))) == (
        f"{CAFE_NFD}\u0301 x"
    )


def test_what_nfc_composes_across_characters_matches_too() -> None:
    # Hangul jamo (U+1100 U+1161 U+11A8) are one syllable (U+AC01) in NFC.
    jamo = "\u1100\u1161\u11a8"
    assert said_text(f"x {jamo} y", lexicon("k", alias("\uac01", "gak"))) == "x gak y"
    assert said_text("x \uac01 y", lexicon("k", alias(jamo, "gak"))) == "x gak y"


def test_text_outside_a_grapheme_is_said_as_written() -> None:
    text = f"{CAFE_NFD} SQL"
    assert said_text(text, SQL) == f"{CAFE_NFD} sequel"


# --- the limit on what is said -----------------------------------------------------------

ZZ = lexicon("zz", alias("zz", "a " * 249 + "a"))  # 499 characters for a word of two


def test_aliases_are_held_to_the_limit_on_what_one_request_says() -> None:
    text = " ".join(["zz"] * 1666)  # 4,997 characters, 833,000 said
    with pytest.raises(
        TextTooLong, match=r"'input' as said .* more than 5000 characters"
    ) as refused:
        with_lexicons(plain(text), [ZZ], max_chars=5000, field="input")
    assert refused.value.param == "input"
    assert refused.value.code == "text_too_long"
    # Within the limit, or without one, the aliases are said.
    [said] = with_lexicons(plain("zz zz"), [ZZ], max_chars=5000)
    assert isinstance(said, Said)
    assert len(said.text) == 2 * 499 + 1
    assert with_lexicons(plain(text), [ZZ]) != plain(text)


def test_a_script_already_over_the_limit_may_say_no_more_with_lexicons() -> None:
    # SSML may say more than its text (say-as); lexicons may not add to that.
    item = Said(text="SQL " + "x" * 96, sources=(Source(0, 100, 0, 100),))
    [said] = with_lexicons((item,), [lexicon("db", alias("SQL", "Q"))], max_chars=50)
    assert isinstance(said, Said)
    assert said.text == "Q " + "x" * 96
    with pytest.raises(TextTooLong, match="more than 100 characters"):
        with_lexicons((item,), [SQL], max_chars=50)
