"""SSML -> Script (tempaudio_service.speech.ssml): Polly's subset, offsets, errors and bounds."""

# ruff: noqa: RUF001  (IPA letters that look like ASCII ones)

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tempaudio_service.core.errors import InvalidRequest
from tempaudio_service.speech.script import Item, Mark, Pause, Said, Script, Source
from tempaudio_service.speech.ssml import MAX_DEPTH, MAX_ITEMS, parse_ssml
from tempaudio_service.speech.ssml_reader import PARAGRAPH_PAUSE


def check(document: str, script: Script) -> None:
    """Every Source indexes the document; a verbatim one says exactly what it indexes."""
    for item in script:
        if isinstance(item, Mark):
            assert document[item.start : item.end].startswith("<mark")
            assert document[item.end - 1] == ">"
        if not isinstance(item, Said):
            continue
        said_at = 0
        for source in item.sources:
            assert said_at <= source.said_start <= source.said_end <= len(item.text)
            assert 0 <= source.start <= source.end <= len(document)
            if source.verbatim:
                said = item.text[source.said_start : source.said_end]
                assert document[source.start : source.end] == said
            said_at = source.said_end


def parse(document: str) -> Script:
    script = parse_ssml(document)
    check(document, script)
    return script


def said(document: str) -> list[str]:
    return [item.text for item in parse(document) if isinstance(item, Said)]


def only(document: str) -> Said:
    items = parse(document)
    assert len(items) == 1
    assert isinstance(items[0], Said)
    return items[0]


def verbatim(document: str, text: str) -> Source:
    start = document.index(text)
    return Source(0, len(text), start, start + len(text))


def refused(document: str, *words: str) -> str:
    with pytest.raises(InvalidRequest) as caught:
        parse_ssml(document)
    assert caught.value.param == "text"
    assert caught.value.status_code == 422
    for word in words:
        assert word in caught.value.message
    return caught.value.message


# --- text and offsets -----------------------------------------------------------------------


def test_plain_text_is_one_verbatim_said() -> None:
    document = "<speak>Mary had a little lamb.</speak>"
    assert parse(document) == (
        Said("Mary had a little lamb.", (verbatim(document, "Mary had a little lamb."),)),
    )


def test_empty_speak_says_nothing() -> None:
    assert parse("<speak/>") == ()
    assert parse("<speak>  \n </speak>") == ()
    assert parse("<speak><p/><s></s></speak>") == ()


def test_whitespace_around_the_text_is_not_said() -> None:
    document = "<speak>\n   Hello there  \n</speak>"
    assert only(document) == Said("Hello there", (verbatim(document, "Hello there"),))


def test_speak_attributes_and_xml_declaration_are_ignored() -> None:
    document = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        '<speak version="1.1" xmlns="http://www.w3.org/2001/10/synthesis" xml:lang="en-US">'
        "Olá</speak>"
    )
    assert only(document) == Said("Olá", (verbatim(document, "Olá"),))


def test_offsets_are_characters_not_bytes() -> None:
    document = "<speak>héllo 😀 <break/>wörld</speak>"
    items = parse(document)
    assert [item.text for item in items if isinstance(item, Said)] == ["héllo 😀", "wörld"]
    last = items[-1]
    assert isinstance(last, Said)
    assert last.sources == (verbatim(document, "wörld"),)


def test_a_byte_order_mark_is_counted_as_one_character() -> None:
    document = "\ufeff<speak>é</speak>"
    assert only(document).sources == (Source(0, 1, 8, 9),)


def test_entities_are_their_own_replaced_sources() -> None:
    document = "<speak>Tom &amp; Jerry&#233;s</speak>"
    assert only(document) == Said(
        "Tom & Jerryés",
        (
            Source(0, 4, 7, 11),
            Source(4, 5, 11, 16, replaced=True),
            Source(5, 11, 16, 22),
            Source(11, 12, 22, 28, replaced=True),
            Source(12, 13, 28, 29),
        ),
    )


def test_cdata_and_comments_keep_one_said() -> None:
    document = "<speak>a <!-- not said --><![CDATA[b < c]]> d</speak>"
    result = only(document)
    assert result.text == "a b < c d"
    assert [document[s.start : s.end] for s in result.sources] == ["a ", "b < c", " d"]


def test_crlf_is_one_replaced_newline_and_a_lone_cr_is_kept() -> None:
    document = "<speak>a\r\nb\rc</speak>"
    result = only(document)
    assert result.text == "a\nb\rc"
    assert result.sources[1] == Source(1, 2, 8, 10, replaced=True)


def test_unpaired_surrogate_is_refused() -> None:
    refused("<speak>\ud800</speak>", "surrogate")


# --- sentences and paragraphs ----------------------------------------------------------------


def test_s_ends_sentences_with_added_punctuation() -> None:
    document = "<speak><s>Mary had a little lamb</s><s>Whose fleece was white</s>And so on.</speak>"
    result = only(document)
    assert result.text == "Mary had a little lamb. Whose fleece was white. And so on."
    assert result.sources == (
        Source(0, 22, 10, 32),
        Source(24, 46, 39, 61),
        Source(48, 58, 65, 75),
    )


def test_existing_sentence_punctuation_is_kept() -> None:
    assert said("<speak><s>Really?</s> <s>Yes!</s><s>He said “no.”</s></speak>") == [
        "Really? Yes! He said “no.”"
    ]


def test_full_stop_goes_before_trailing_whitespace() -> None:
    assert said("<speak><s>one  </s>\n<s> two</s></speak>") == ["one. two."]


def test_text_before_s_ends_its_sentence() -> None:
    assert said("<speak>Hello<s>world</s></speak>") == ["Hello. world."]


def test_paragraphs_pause_between_not_around() -> None:
    document = "<speak><p>One</p>\n<p>Two</p></speak>"
    assert parse(document) == (
        Said("One.", (verbatim(document, "One"),)),
        Pause(PARAGRAPH_PAUSE),
        Said("Two.", (verbatim(document, "Two"),)),
    )


def test_text_after_a_paragraph_is_a_new_paragraph() -> None:
    items = parse("<speak>Intro <p>Body</p> outro</speak>")
    assert items[1::2] == (Pause(PARAGRAPH_PAUSE), Pause(PARAGRAPH_PAUSE))
    assert [item.text for item in items[::2] if isinstance(item, Said)] == [
        "Intro.",
        "Body.",
        "outro",
    ]


# --- breaks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "seconds"),
    [
        ('time="2s"', 2.0),
        ('time="500ms"', 0.5),
        ('time="1.5s"', 1.5),
        ('time="10000ms"', 10.0),
        ('time="10s"', 10.0),
        ('strength="weak"', 0.25),
        ('strength="medium"', 0.25),
        ("", 0.25),
        ('strength="strong"', 0.5),
        ('strength="x-strong"', 0.75),
        ('time="300ms" strength="x-strong"', 0.3),
    ],
)
def test_break(attributes: str, seconds: float) -> None:
    document = f"<speak>a<break {attributes}/>b</speak>"
    assert parse(document) == (
        Said("a", (Source(0, 1, 7, 8),)),
        Pause(seconds),
        Said("b", (Source(0, 1, document.index("/>b") + 2, document.index("/>b") + 3),)),
    )


@pytest.mark.parametrize("attributes", ['strength="none"', 'strength="x-weak"', 'time="0s"'])
def test_break_of_nothing_does_not_split_the_said(attributes: str) -> None:
    assert said(f"<speak>a <break {attributes}/>b</speak>") == ["a b"]


def test_break_over_the_cap_is_refused() -> None:
    refused('<speak><break time="10001ms"/></speak>', "time='10001ms'", "<break>", "10 s")
    refused('<speak><break time="11s"/></speak>', "line 1, column 8")
    assert parse_ssml('<speak><break time="20s"/></speak>', max_pause_seconds=30) == (Pause(20.0),)


@pytest.mark.parametrize(
    ("attributes", "name"),
    [
        ('time="2"', "time"),
        ('time="-1s"', "time"),
        ('time="2 h"', "time"),
        ('strength="big"', "strength"),
    ],
)
def test_bad_break_attribute(attributes: str, name: str) -> None:
    refused(f"<speak><break {attributes}/></speak>", f"attribute {name}=", "<break>")


def test_break_must_be_empty() -> None:
    refused("<speak><break>x</break></speak>", "<break> must be empty")
    assert parse("<speak><break> </break></speak>") == (Pause(0.25),)


def test_breaks_at_the_edges_are_kept() -> None:
    assert parse('<speak><break time="1s"/>a<break time="2s"/></speak>')[::2] == (
        Pause(1.0),
        Pause(2.0),
    )


# --- prosody -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "value"),
    [
        ("x-slow", 0.5),
        ("slow", 0.75),
        ("medium", 1.0),
        ("fast", 1.25),
        ("x-fast", 1.5),
        ("85%", 0.85),
        ("20%", 0.2),
        ("200%", 2.0),
        ("150.5%", 1.505),
    ],
)
def test_prosody_rate(rate: str, value: float) -> None:
    assert only(f'<speak><prosody rate="{rate}">words</prosody></speak>').rate == value


def test_rate_change_splits_the_said() -> None:
    document = '<speak>one <prosody rate="slow">two</prosody> three</speak>'
    assert [(item.text, item.rate) for item in parse(document) if isinstance(item, Said)] == [
        ("one", 1.0),
        ("two", 0.75),
        ("three", 1.0),
    ]


def test_nested_rate_replaces_and_attributes_without_rate_inherit() -> None:
    document = (
        '<speak><prosody rate="50%">a <prosody rate="200%">b</prosody> '
        '<prosody volume="loud" pitch="+5%">c</prosody></prosody></speak>'
    )
    assert [item.rate for item in parse(document) if isinstance(item, Said)] == [0.5, 2.0, 0.5]


@pytest.mark.parametrize(
    ("attributes", "name"),
    [
        ('rate="300%"', "rate"),
        ('rate="19%"', "rate"),
        ('rate="2"', "rate"),
        ('rate="quick"', "rate"),
        ('volume="silent"', "volume"),
        ('volume="+6"', "volume"),
        ('pitch="up"', "pitch"),
        ('amazon:max-duration="2s"', "amazon:max-duration"),
    ],
)
def test_bad_prosody_attribute(attributes: str, name: str) -> None:
    refused(f"<speak><prosody {attributes}>x</prosody></speak>", f"attribute {name}", "<prosody>")


def test_volume_and_pitch_are_ignored() -> None:
    document = '<speak><prosody volume="-6dB" pitch="x-high">quiet</prosody></speak>'
    assert only(document) == Said("quiet", (verbatim(document, "quiet"),))


# --- say-as, sub, phoneme ----------------------------------------------------------------------


def say_as(kind: str, content: str, extra: str = "") -> str:
    document = f'<speak><say-as interpret-as="{kind}"{extra}>{content}</say-as></speak>'
    result = only(document)
    start = document.index(">", 7) + 1
    assert result.sources == (Source(0, len(result.text), start, start + len(content), True),)
    return result.text


@pytest.mark.parametrize(
    ("kind", "content", "text"),
    [
        ("characters", "ABC", "A-B C"),
        ("spell-out", "read", "r e a-d"),
        ("characters", "IBM 7", "I B M 7"),
        ("characters", "U.S.", "U S"),
        ("characters", "a", "a"),
        ("digits", "123", "1 2 3"),
        ("digits", "12-34", "1 2 3 4"),
        ("cardinal", "1,234", "1234"),
        ("number", "-12.5", "-12.5"),
        ("ordinal", "1", "1st"),
        ("ordinal", "2", "2nd"),
        ("ordinal", "3", "3rd"),
        ("ordinal", "11", "11th"),
        ("ordinal", "112", "112th"),
        ("ordinal", "21", "21st"),
        ("ordinal", "1,234", "1234th"),
        ("ordinal", "3rd", "3rd"),
        ("fraction", "2/9", "2 ninths"),
        ("fraction", "1/2", "1 half"),
        ("fraction", "3/4", "3 quarters"),
        ("fraction", "3+1/2", "3 and a half"),
        ("fraction", "1/20", "1 twentieth"),
        ("fraction", "5/21", "5 twenty-firsts"),
        ("fraction", "3/100", "3 over 100"),
        ("telephone", "2025551212", "2 0 2, 5 5 5, 1 2 1 2"),
        ("telephone", "5551212", "5 5 5, 1 2 1 2"),
        ("telephone", "12025551212", "1, 2 0 2, 5 5 5, 1 2 1 2"),
        ("telephone", "(202) 555-1212", "2 0 2, 5 5 5, 1 2 1 2"),
        ("telephone", "+44 20 7946", "plus 4 4, 2 0, 7 9 4 6"),
        ("telephone", "2025551212x345", "2 0 2, 5 5 5, 1 2 1 2, extension 3 4 5"),
        ("time", "1'21\"", "1 minute 21 seconds"),
        ("time", "2'", "2 minutes"),
        ("time", '1"', "1 second"),
        ("time", "5:30", "5:30"),
        ("time", "5:00", "5 o'clock"),
        ("time", "5:05 pm", "5 oh 5 PM"),
        ("time", "17:45:01", "17:45 and 1 second"),
        ("unit", "1meter", "1meter"),
        ("address", "1 Main St", "1 Main St"),
    ],
)
def test_say_as(kind: str, content: str, text: str) -> None:
    assert say_as(kind, content) == text


@pytest.mark.parametrize(
    ("content", "form", "text"),
    [
        ("12-31-1900", "mdy", "December 31st, 1900"),
        ("31/12/1900", "dmy", "December 31st, 1900"),
        ("2024-03-12", "ymd", "March 12th, 2024"),
        ("03-12", "md", "March 12th"),
        ("12/03", "dm", "March 12th"),
        ("2024-03", "ym", "March 2024"),
        ("03/2024", "my", "March 2024"),
        ("22", "d", "22nd"),
        ("9", "m", "September"),
        ("2024", "y", "2024"),
        ("????0922", "yyyymmdd", "September 22nd"),
        ("2024????", "yyyymmdd", "2024"),
        ("20240229", "yyyymmdd", "February 29th, 2024"),
        ("????0922", None, "September 22nd"),
        ("2024-03-12", None, "March 12th, 2024"),
        ("3/12/2024", None, "March 12th, 2024"),
    ],
)
def test_say_as_date(content: str, form: str | None, text: str) -> None:
    extra = f' format="{form}"' if form else ""
    assert say_as("date", content, extra) == text


@pytest.mark.parametrize(
    ("kind", "content", "extra"),
    [
        ("date", "13-01-2024", ' format="mdy"'),
        ("date", "02-30-2024", ' format="mdy"'),
        ("date", "12-2024", ' format="mdy"'),
        ("date", "20?40101", ' format="yyyymmdd"'),
        ("time", "25:00", ""),
        ("time", "soon", ""),
        ("cardinal", "twelve", ""),
        ("ordinal", "x", ""),
        ("telephone", "call me", ""),
        ("fraction", "1/0", ""),
        ("digits", "none", ""),
    ],
)
def test_say_as_content_it_cannot_read_is_said_as_written(
    kind: str, content: str, extra: str
) -> None:
    assert say_as(kind, content, extra) == content


def test_say_as_with_entities_has_one_source_over_the_content() -> None:
    document = '<speak>x <say-as interpret-as="characters">A&#36;B</say-as>.</speak>'
    result = only(document)
    assert result.text == "x A-$ B."
    content = document.index("A&#36;B")
    assert result.sources[1] == Source(2, 7, content, content + len("A&#36;B"), True)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("", ("interpret-as", "required")),
        (' interpret-as="expletive"', ("interpret-as='expletive'", "not supported")),
        (' interpret-as="date" format="ddmmyy"', ("format='ddmmyy'", "mdy")),
        (' interpret-as="digits" role="x"', ("attribute role", "<say-as>")),
    ],
)
def test_bad_say_as_attributes(extra: str, words: tuple[str, ...]) -> None:
    refused(f"<speak><say-as{extra}>1</say-as></speak>", *words, "line 1, column 8")


def test_say_as_holds_text_only() -> None:
    refused(
        '<speak><say-as interpret-as="digits">1<break/></say-as></speak>',
        "<break> may not be inside <say-as>",
    )


def test_sub_says_the_alias() -> None:
    document = '<speak>My favorite is <sub alias="Mercury">Hg</sub>, because.</speak>'
    hg = document.index("Hg")
    assert only(document) == Said(
        "My favorite is Mercury, because.",
        (Source(0, 15, 7, 22), Source(15, 22, hg, hg + 2, True), Source(22, 32, hg + 8, hg + 18)),
    )


def test_sub_of_the_same_length_is_still_replaced() -> None:
    document = '<speak><sub alias="ab">xy</sub></speak>'
    source = only(document).sources[0]
    assert source == Source(0, 2, 23, 25, True)
    assert not source.verbatim


def test_empty_sub_element_says_its_alias_which_indexes_nothing_of_the_document() -> None:
    document = '<speak><sub alias="W3C"/></speak>'
    assert only(document) == Said("W3C", ())


@pytest.mark.parametrize(
    ("document", "text"),
    [
        (
            (
                '<speak><say-as interpret-as="digits">12</say-as>'
                '<say-as interpret-as="digits">34</say-as></speak>'
            ),
            "1 2 3 4",
        ),
        ('<speak><sub alias="one">1</sub><sub alias="two">2</sub></speak>', "one two"),
        (
            (
                '<speak><say-as interpret-as="fraction">1/2</say-as><emphasis>'
                '<say-as interpret-as="fraction">3/4</say-as></emphasis></speak>'
            ),
            "1 half 3 quarters",
        ),
        ('<speak><phoneme ph="tə">to</phoneme><sub alias="W3C"/></speak>', "[[tə]] W3C"),
        # Text glued to an element stays glued, as it is written.
        ('<speak>x<sub alias="one">1</sub>y</speak>', "xoney"),
    ],
)
def test_elements_side_by_side_are_said_apart(document: str, text: str) -> None:
    assert only(document).text == text


def test_sub_needs_an_alias() -> None:
    refused("<speak><sub>x</sub></speak>", "attribute alias", "<sub>", "required")
    refused('<speak><sub alias=" ">x</sub></speak>', "alias=' '")


@pytest.mark.parametrize(
    ("alphabet", "ph", "ipa"),
    [
        ("ipa", "pɪˈkɑːn", "pɪˈkɑːn"),
        ("x-sampa", 'pI"kA:n', "pɪˈkɑːn"),
        ("x-sampa", '"pi.k{n', "ˈpi.kæn"),
    ],
)
def test_phoneme(alphabet: str, ph: str, ipa: str) -> None:
    document = f"<speak>You say, <phoneme alphabet='{alphabet}' ph='{ph}'>pecan</phoneme>.</speak>"
    pecan = document.index("pecan<")
    assert only(document) == Said(
        f"You say, [[{ipa}]].",
        (
            Source(0, 9, 7, 16),
            Source(9, 13 + len(ipa), pecan, pecan + 5, True),
            Source(13 + len(ipa), 14 + len(ipa), pecan + 15, pecan + 16),
        ),
    )


def test_phoneme_alphabet_defaults_to_ipa() -> None:
    assert only('<speak><phoneme ph="tə">to</phoneme></speak>').text == "[[tə]]"


@pytest.mark.parametrize(
    ("attributes", "words"),
    [
        ('alphabet="ipa"', ("attribute ph", "required")),
        ('alphabet="klingon" ph="a"', ("attribute alphabet='klingon'", "unknown phonetic")),
        ('alphabet="x-sampa" ph="pÄ"', ("attribute ph='pÄ'", "unknown X-SAMPA symbol")),
        ('ph="a]]b"', ("attribute ph=", "would end")),
        ('ph="a&#10;b"', ("control character",)),
    ],
)
def test_bad_phoneme(attributes: str, words: tuple[str, ...]) -> None:
    refused(f"<speak><phoneme {attributes}>x</phoneme></speak>", "<phoneme>", *words)


# --- marks ---------------------------------------------------------------------------------------


def test_mark_is_at_its_tag_and_splits_the_said() -> None:
    document = '<speak>Mary had a little <mark name="animal"/>lamb.</speak>'
    items = parse(document)
    assert items[1] == Mark("animal", 25, 46)
    assert document[25:46] == '<mark name="animal"/>'
    assert [item.text for item in items if isinstance(item, Said)] == ["Mary had a little", "lamb."]


def test_mark_written_with_an_end_tag_spans_both_tags() -> None:
    document = '<speak><mark name="a"></mark>x</speak>'
    assert parse(document)[0] == Mark("a", 7, 29)


def test_mark_needs_a_name_and_no_content() -> None:
    refused("<speak><mark/></speak>", "attribute name", "<mark>")
    refused('<speak><mark name="a">x</mark></speak>', "<mark> must be empty")


def test_mark_after_a_paragraph_comes_after_its_pause() -> None:
    items = parse('<speak><p>a</p><mark name="m"/><p>b</p></speak>')
    assert [type(item) for item in items] == [Said, Pause, Mark, Said]


# --- ignored and unsupported tags ---------------------------------------------------------------


@pytest.mark.parametrize(
    "tag",
    [
        '<emphasis level="strong">',
        '<lang xml:lang="fr-FR">',
        '<w role="amazon:VB">',
        '<amazon:effect name="whispered">',
        '<amazon:domain name="news">',
        '<amazon:auto-breaths volume="x-loud">',
    ],
)
def test_ignored_tags_say_their_content(tag: str) -> None:
    name = tag[1:].split()[0].rstrip(">")
    document = f"<speak>I <{tag[1:]}really</{name}> like it</speak>"
    assert said(document) == ["I really like it"]


def test_amazon_breath_says_nothing() -> None:
    assert said('<speak>a <amazon:breath duration="long"/>b</speak>') == ["a b"]


@pytest.mark.parametrize("tag", ["foo", "audio", "voice", "amazon:foo"])
def test_unsupported_tag_is_named(tag: str) -> None:
    message = refused(f"<speak>x <{tag}>y</{tag}></speak>", f"SSML tag <{tag}> is not supported")
    assert "(line 1, column 10); supported: speak, p, s, break" in message


def test_root_must_be_speak() -> None:
    refused("<p>Hello</p>", "<speak> at its root, not <p>")
    refused("<speak><speak>x</speak></speak>", "<speak> may only be the root")


def test_unknown_attribute_is_named() -> None:
    refused('<speak><p style="x">a</p></speak>', "attribute style='x' of <p>", "supported: none")


def test_attribute_values_in_messages_are_shortened() -> None:
    message = refused(f'<speak><break time="{"9" * 5000}"/></speak>', "<break>")
    assert len(message) < 300


LONG = "x" * 4000


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(f"<speak><{LONG}/></speak>", id="unsupported tag"),
        pytest.param(f"<{LONG}/>", id="root tag"),
        pytest.param(f'<speak><sub alias="a"><{LONG}/></sub></speak>', id="tag inside sub"),
        pytest.param(f'<speak><break {LONG}="1"/></speak>', id="unsupported attribute"),
        pytest.param(f'<speak><p {LONG}="{LONG}">a</p></speak>', id="attribute and value"),
        pytest.param(
            f'<speak><phoneme alphabet="x-sampa" ph="{LONG}Ä">a</phoneme></speak>',
            id="x-sampa phonemes",
        ),
        pytest.param(
            f'<speak><phoneme alphabet="{LONG}" ph="a">a</phoneme></speak>', id="phonetic alphabet"
        ),
        pytest.param(f'<speak><phoneme ph="{LONG}]]">a</phoneme></speak>', id="ipa phonemes"),
        pytest.param(f'<speak><say-as interpret-as="{LONG}">1</say-as></speak>', id="say-as"),
    ],
)
def test_names_and_values_in_messages_are_cut_to_40_characters(document: str) -> None:
    message = refused(document)
    assert "x" * 41 not in message
    assert "x" * 39 + "…" in message or "x" * 40 in message
    assert len(message) < 400


# --- malformed and hostile documents --------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ("<speak>a</p></speak>", ("line 1, column 11", "mismatched tag")),
        ("<speak>\n<s>a</speak>", ("line 2, column 7", "mismatched tag")),
        ("<speak>a", ("not well-formed at line 1", "no element found")),
        ("", ("no element found",)),
        ("Hello", ("syntax error",)),
        ("<speak>a &nbsp; b</speak>", ("undefined entity",)),
        ("<speak/><speak/>", ("junk after document element",)),
        ("<speak>\x00</speak>", ("not well-formed",)),
    ],
)
def test_malformed_xml_says_where(document: str, words: tuple[str, ...]) -> None:
    refused(document, "SSML is not well-formed", *words)


def test_billion_laughs_is_refused_quickly() -> None:
    entities = "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i else "lol"}">' for i in range(10)
    )
    document = f"<?xml version='1.0'?><!DOCTYPE speak [{entities}]><speak>&lol9;</speak>"
    began = time.monotonic()
    refused(document, "DTD")
    assert time.monotonic() - began < 1


def test_external_entities_are_refused() -> None:
    document = '<!DOCTYPE speak SYSTEM "file:///etc/passwd"><speak>x</speak>'
    refused(document, "DTD")
    refused('<!DOCTYPE speak [<!ENTITY x SYSTEM "file:///etc/passwd">]><speak>&x;</speak>', "DTD")


def test_depth_is_limited() -> None:
    ok = "<speak>" + "<s>" * (MAX_DEPTH - 1) + "x" + "</s>" * (MAX_DEPTH - 1) + "</speak>"
    assert said(ok) == ["x."]
    deep = "<speak>" + "<s>" * MAX_DEPTH + "x" + "</s>" * MAX_DEPTH + "</speak>"
    refused(deep, f"deeper than {MAX_DEPTH}")


def test_items_are_limited() -> None:
    pairs = "a<break/>" * (MAX_ITEMS // 2)
    assert len(parse(f"<speak>{pairs}</speak>")) == MAX_ITEMS
    refused(f"<speak>{pairs}a</speak>", f"more than {MAX_ITEMS}")


# --- fuzz: any string parses or is a 422; what parses indexes the document -----------------------

_FRAGMENTS = st.sampled_from(
    [
        "<s>", "</s>", "<p>", "</p>", "<p/>", "<break/>", '<break time="1s"/>',
        '<break strength="x-strong"/>', '<break time="99s"/>', '<prosody rate="slow">',
        '<prosody rate="150%">', "</prosody>", '<say-as interpret-as="characters">',
        '<say-as interpret-as="date" format="mdy">', '<say-as interpret-as="telephone">',
        '<say-as interpret-as="time">', '<say-as interpret-as="fraction">',
        '<say-as interpret-as="ordinal">', "</say-as>", '<sub alias="alias">', "</sub>",
        '<phoneme alphabet="x-sampa" ph="pI&quot;kA:n">', '<phoneme ph="a]]">', "</phoneme>",
        '<mark name="m"/>', "<emphasis>", "</emphasis>", "<foo>", "&amp;", "&#233;", "&#x1F600;",
        "&bogus;", "<!-- c -->", "<![CDATA[<x>]]>", "\r\n", " ", ".", "12-31-1900", "2025551212",
        "3+1/2", "5:05", "é", "😀", "[[", "]]", "<", ">", '"', "<speak>", "</speak>",
    ]
)  # fmt: skip


def _bounded(document: str, script: Script) -> None:
    check(document, script)
    total = sum(len(item.text) for item in script if isinstance(item, Said))
    assert total <= 3 * len(document) + 10


def _parses_or_422(document: str) -> Script | None:
    try:
        return parse_ssml(document)
    except InvalidRequest as error:
        if error.param != "text":
            raise
        return None


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_parses_or_is_refused(text: str) -> None:
    for document in (text, f"<speak>{text}</speak>"):
        script = _parses_or_422(document)
        if script is not None:
            _bounded(document, script)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(_FRAGMENTS, st.text(max_size=5)), max_size=30))
def test_any_tag_soup_parses_or_is_refused(parts: list[str]) -> None:
    document = "<speak>" + "".join(parts) + "</speak>"
    script = _parses_or_422(document)
    if script is not None:
        _bounded(document, script)
        items: list[Item] = list(script)
        assert all(isinstance(item, Said | Pause | Mark) for item in items)


_XML_CHARS = st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff")
_ESCAPED = st.text(_XML_CHARS, max_size=8).map(
    lambda text: text.replace("&", "&amp;").replace("<", "&lt;").replace("]]>", "]]&gt;")
)
_LEAVES = st.one_of(
    _ESCAPED,
    st.sampled_from(['<break time="200ms"/>', "<break/>", '<mark name="m"/>', "&#233;", "\r\n"]),
)
_ELEMENTS = st.sampled_from(
    [
        ("<s>", "</s>"), ("<p>", "</p>"), ('<prosody rate="fast">', "</prosody>"),
        ('<prosody rate="60%">', "</prosody>"), ("<emphasis>", "</emphasis>"),
        ('<lang xml:lang="fr">', "</lang>"),
    ]
)  # fmt: skip
_TEXT_ONLY = st.sampled_from(
    [
        ('<say-as interpret-as="characters">', "</say-as>"),
        ('<say-as interpret-as="digits">', "</say-as>"),
        ('<say-as interpret-as="date">', "</say-as>"),
        ('<say-as interpret-as="telephone">', "</say-as>"),
        ('<sub alias="an alias">', "</sub>"),
        ('<phoneme alphabet="ipa" ph="tə">', "</phoneme>"),
    ]
)


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    nested = st.tuples(_ELEMENTS, st.lists(children, max_size=4)).map(
        lambda pair: pair[0][0] + "".join(pair[1]) + pair[0][1]
    )
    text_only = st.tuples(_TEXT_ONLY, _ESCAPED).map(lambda pair: pair[0][0] + pair[1] + pair[0][1])
    return st.one_of(nested, text_only)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.recursive(_LEAVES, _element, max_leaves=12), max_size=5))
def test_well_formed_documents_parse_and_index_the_document(parts: list[str]) -> None:
    document = "<speak>" + "".join(parts) + "</speak>"
    _bounded(document, parse_ssml(document))
