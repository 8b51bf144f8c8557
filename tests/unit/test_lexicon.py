"""TempAudioLexicon: the spec parser, the PLS import (hostile documents included), a policy's
spec.lexicons, and the generated lexicon CRD (pure)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tempaudio_api.errors import LexiconError, PolicyError
from tempaudio_api.generate import LEXICON_CRD_PATHS, lexicon_crd, outputs
from tempaudio_api.lexicon import Lexicon, LexiconEntry, entries_from_pls, lexicon_from_spec
from tempaudio_api.lexicon_rules import (
    MAX_ENTRIES,
    MAX_LEXICONS,
    REFUSED_CHARACTERS,
    TEXT_PATTERN,
    check_text,
)
from tempaudio_api.policy import Policy
from tempaudio_api.schema import LEXICON_FILE, check_fields
from tests.conftest import undescribed

REPO = Path(__file__).resolve().parents[2]
PLS_NS = "http://www.w3.org/2005/01/pronunciation-lexicon"
PLS = f"""<?xml version="1.0" encoding="UTF-8"?>
<lexicon version="1.0" xmlns="{PLS_NS}" alphabet="ipa" xml:lang="en-US">
  <lexeme>
    <grapheme>W3C</grapheme>
    <alias>World Wide Web Consortium</alias>
  </lexeme>
  <lexeme>
    <grapheme>tomato</grapheme>
    <grapheme>Tomato</grapheme>
    <phoneme>t\u0259\u02c8me\u026ato\u028a</phoneme>
    <phoneme prefer="true" alphabet="x-sampa">t@"mA:t@U</phoneme>
  </lexeme>
</lexicon>
"""
BOMB = """<?xml version="1.0"?>
<!DOCTYPE lexicon [
  <!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
]>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon">
  <lexeme><grapheme>&c;</grapheme><alias>boom</alias></lexeme>
</lexicon>
"""
EXTERNAL = """<?xml version="1.0"?>
<!DOCTYPE lexicon [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon">
  <lexeme><grapheme>x</grapheme><alias>&secret;</alias></lexeme>
</lexicon>
"""


def test_entries_parse_in_order_with_their_defaults() -> None:
    lexicon = lexicon_from_spec("finance", {"entries": [
        {"grapheme": "EBITDA", "alias": "earnings before interest"},
        {"grapheme": "Dow", "phoneme": "daʊ"},
        {"grapheme": "SQL", "phoneme": "\"si:kw@l", "alphabet": "x-sampa"},
    ]})  # fmt: skip
    assert lexicon == Lexicon("finance", (
        LexiconEntry("EBITDA", alias="earnings before interest"),
        LexiconEntry("Dow", phoneme="daʊ", alphabet="ipa"),
        LexiconEntry("SQL", phoneme="\"si:kw@l", alphabet="x-sampa"),
    ))  # fmt: skip


def test_the_version_is_short_stable_and_follows_the_entries() -> None:
    one = lexicon_from_spec("a", {"entries": [{"grapheme": "x", "alias": "ex"}]})
    same = lexicon_from_spec("b", {"entries": [{"grapheme": "x", "alias": "ex"}]})
    edited = lexicon_from_spec("a", {"entries": [{"grapheme": "x", "alias": "eks"}]})
    assert len(one.version) == 16
    assert one.version == same.version  # the entries, not the name
    assert edited.version != one.version
    two = [{"grapheme": "x", "alias": "ex"}, {"grapheme": "y", "alias": "why"}]
    reordered = lexicon_from_spec("a", {"entries": two[::-1]}).version
    assert lexicon_from_spec("a", {"entries": two}).version != reordered


def entries(*items: dict[str, Any]) -> dict[str, Any]:
    return {"entries": list(items)}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({}, "needs entries, a pls document, or both"),
        (entries({"grapheme": "", "alias": "x"}), "grapheme must have 1 to 100"),
        (entries({"grapheme": "x" * 101, "alias": "x"}), "grapheme must have 1 to 100"),
        (entries({"grapheme": "x"}), "exactly one of alias and phoneme"),
        (entries({"grapheme": "x", "alias": "a", "phoneme": "b"}), "exactly one of alias"),
        (entries({"grapheme": "x", "alias": ""}), "alias must have 1 to 500"),
        (entries({"grapheme": "x", "alias": "a" * 501}), "alias must have 1 to 500"),
        (entries({"grapheme": "x", "phoneme": "b", "alphabet": "arpabet"}), "must be one of ipa"),
        (entries({"grapheme": "x", "phoneme": "ʃ", "alphabet": "x-sampa"}), "unknown X-SAMPA"),
        (entries({"grapheme": "x", "phoneme": "a]]b"}), "would end"),
        (entries({"grapheme": "x", "alias": "a"}, {"grapheme": "x", "alias": "b"}), "twice"),
        (entries({"grapheme": 3, "alias": "a"}), "grapheme must be a string"),
        ({"entries": "x"}, "entries must be a list"),
        ({"entries": ["x"]}, "must be an object"),
        (entries(*({"grapheme": f"g{i}", "alias": "a"} for i in range(MAX_ENTRIES + 1))),
         f"at most {MAX_ENTRIES}"),
        # Text of one line: no NUL (espeak reads C strings), no control character, no
        # lone surrogate (no UTF-8 can hold one: it broke every listing of its policy).
        (entries({"grapheme": "x", "alias": "a\0b"}),
         r"\('x'\): alias holds a control character, U\+0000, at position 2"),
        (entries({"grapheme": "x", "alias": "a\ud800b"}), "alias holds a surrogate, U\\+D800"),
        (entries({"grapheme": "x", "alias": "a\x85b"}), "alias holds a control character, U\\+0085"),
        (entries({"grapheme": "a\nb", "alias": "x"}), "grapheme holds a control character"),
        (entries({"grapheme": "\udc00", "alias": "x"}), "grapheme holds a surrogate"),
        (entries({"grapheme": "x", "phoneme": "a\tb"}), "phoneme holds a control character"),
        # One grapheme, composed (NFC) and decomposed (NFD): a request's text matches both.
        (entries({"grapheme": "caf\u00e9", "alias": "a"}, {"grapheme": "cafe\u0301", "alias": "b"}),
         "appears twice"),
    ],
)  # fmt: skip
def test_an_invalid_spec_says_why(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(LexiconError, match=message):
        lexicon_from_spec("finance", spec)


def test_the_version_of_any_entries_is_a_digest_never_an_error() -> None:
    # A Lexicon made without the parser (or by an older one) may hold a lone surrogate:
    # the digest, which every listing and request of its policy computes, still answers.
    one = Lexicon("a", (LexiconEntry("x", alias="a\ud800b"),)).version
    other = Lexicon("a", (LexiconEntry("x", alias="a\ud801b"),)).version
    assert len(one) == 16
    assert one != other


def test_a_lexicon_name_is_a_kubernetes_name() -> None:
    with pytest.raises(PolicyError, match="DNS-1123"):
        lexicon_from_spec("Finance", entries({"grapheme": "x", "alias": "a"}))


# --- W3C PLS -----------------------------------------------------------------------------


def test_a_pls_document_becomes_entries_one_per_grapheme() -> None:
    assert entries_from_pls(PLS) == (
        LexiconEntry("W3C", alias="World Wide Web Consortium"),
        LexiconEntry("tomato", phoneme='t@"mA:t@U', alphabet="x-sampa"),
        LexiconEntry("Tomato", phoneme='t@"mA:t@U', alphabet="x-sampa"),
    )


def test_pls_entries_follow_the_inline_ones_and_share_their_graphemes() -> None:
    lexicon = lexicon_from_spec("web", {"entries": [{"grapheme": "HTML", "alias": "H T M L"}],
                                        "pls": PLS})  # fmt: skip
    assert [e.grapheme for e in lexicon.entries] == ["HTML", "W3C", "tomato", "Tomato"]
    with pytest.raises(LexiconError, match="'W3C' appears twice"):
        lexicon_from_spec("web", {"entries": [{"grapheme": "W3C", "alias": "w"}], "pls": PLS})


def test_a_pls_document_may_wrap_its_text_over_lines() -> None:
    wrapped = (
        "<lexicon><lexeme>\n  <grapheme>W3C</grapheme>\n  <alias>World Wide\n"
        "    Web\tConsortium</alias>\n</lexeme></lexicon>"
    )
    assert entries_from_pls(wrapped) == (LexiconEntry("W3C", alias="World Wide Web Consortium"),)


def test_a_pls_document_without_a_namespace_is_read_too() -> None:
    plain = '<lexicon version="1.0"><lexeme><grapheme>Nginx</grapheme><alias>engine x</alias></lexeme></lexicon>'
    assert entries_from_pls(plain) == (LexiconEntry("Nginx", alias="engine x"),)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (BOMB, "refused"),
        (EXTERNAL, "refused"),
        ("<lexicon><lexeme>", "not well-formed"),
        ('<lexicon xmlns="urn:other"/>', "PLS 1.0 <lexicon>"),
        ("<speak/>", "PLS 1.0 <lexicon>"),
        ("<lexicon><lexeme><alias>a</alias></lexeme></lexicon>", "no grapheme"),
        ("<lexicon><lexeme><grapheme>a</grapheme></lexeme></lexicon>", "no alias or phoneme"),
        (('<lexicon alphabet="x-acme"><lexeme><grapheme>a</grapheme><phoneme>p</phoneme>'
          "</lexeme></lexicon>"), "alphabet 'x-acme'"),
        ("<lexicon>" + " " * 300_000 + "</lexicon>", "at most"),
    ],
)  # fmt: skip
def test_a_hostile_or_broken_pls_document_is_refused(document: str, message: str) -> None:
    with pytest.raises(LexiconError, match=message):
        entries_from_pls(document)
    with pytest.raises(PolicyError, match=message):
        lexicon_from_spec("x", {"pls": document})


# --- the policy's spec.lexicons ------------------------------------------------------------

BASE: dict[str, Any] = {"storage": {"bucket": "my-audio"}, "dynamodb": {"table": "audio"}}


def test_a_policy_names_its_lexicons_in_order() -> None:
    policy = Policy.from_spec({**BASE, "lexicons": ["finance", "names.v2"]}, name="a",
                              namespace="n")  # fmt: skip
    assert policy.lexicons == ("finance", "names.v2")
    assert Policy.from_spec(BASE, name="a", namespace="n").lexicons == ()


@pytest.mark.parametrize(
    ("lexicons", "message"),
    [
        (["finance", "finance"], "finance more than once"),
        (["Finance"], "DNS-1123"),
        ("finance", "a list of lexicon names"),
        ([f"l{i}" for i in range(MAX_LEXICONS + 1)], f"at most {MAX_LEXICONS}"),
    ],
)
def test_a_policy_names_lexicons_by_their_rules(lexicons: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        Policy.from_spec({**BASE, "lexicons": lexicons}, name="a", namespace="n")


# --- the declared schema and its generated CRD ---------------------------------------------


def test_a_lexicon_file_field_the_schema_does_not_declare_is_named() -> None:
    check_fields({"entries": [{"grapheme": "x", "alias": "a"}]}, LEXICON_FILE)
    with pytest.raises(PolicyError, match=r"spec\.entries\[0\]\.say.*TempAudioLexicon"):
        check_fields({"entries": [{"grapheme": "x", "say": "a"}]}, LEXICON_FILE)


def test_the_lexicon_crd_takes_its_bounds_from_the_api() -> None:
    crd = lexicon_crd()
    assert crd["metadata"]["name"] == "tempaudiolexicons.tempaudio.dev"
    (version,) = crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    listed = spec["properties"]["entries"]
    assert listed["maxItems"] == MAX_ENTRIES
    assert listed["x-kubernetes-list-map-keys"] == ["grapheme"]  # each grapheme once
    assert listed["items"]["properties"]["alphabet"]["enum"] == ["ipa", "x-sampa"]


def refused(text: str) -> bool:
    try:
        check_text(text, "alias", "here")
    except LexiconError:
        return True
    return False


def test_the_lexicon_crd_refuses_the_characters_the_parser_refuses() -> None:
    schema = lexicon_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    fields = schema["properties"]["spec"]["properties"]["entries"]["items"]["properties"]
    assert {fields[name]["pattern"] for name in ("grapheme", "alias", "phoneme")} == {TEXT_PATTERN}
    # The pattern is RE2's (the API server's): \x{HHHH}. Read as Python's, it agrees with
    # the parser on both sides of each edge of each refused range.
    python = re.compile(re.sub(r"\\x\{([0-9A-F]{4})\}", r"\\u\1", TEXT_PATTERN))
    edges = {c for low, high in REFUSED_CHARACTERS for c in (low - 1, low, high, high + 1)}
    for code in sorted(edges - {-1}):
        text = f"a{chr(code)}b"
        assert (python.match(text) is None) == refused(text), hex(code)


def test_a_stale_lexicon_crd_fails_the_check(tmp_path: Path) -> None:
    written = outputs(REPO)
    assert {REPO / p for p in LEXICON_CRD_PATHS} <= set(written)
    for path, text in written.items():
        copy = tmp_path / path.relative_to(REPO)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(text)
        assert path.read_text() == text, f"{path} is stale: run `make generate`"
    check = [sys.executable, "-m", "tempaudio_api.generate", "--check", "--repo", str(tmp_path)]
    stale = tmp_path / LEXICON_CRD_PATHS[1]
    stale.write_text(stale.read_text().replace("maxItems: 5000", "maxItems: 9"))
    result = subprocess.run(check, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert LEXICON_CRD_PATHS[1] in result.stderr


def test_kubectl_explain_has_a_description_for_every_lexicon_field() -> None:
    assert undescribed(lexicon_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]) == []
