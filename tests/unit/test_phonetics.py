"""Phonetic alphabets -> IPA for [[...]] blocks (tempaudio_api.phonetics)."""

# ruff: noqa: RUF001  (IPA letters that look like ASCII ones)

from __future__ import annotations

import unicodedata

import pytest

from tempaudio_api.phonetics import ALPHABETS, to_ipa


def test_alphabets_are_polly_names() -> None:
    assert ALPHABETS == ("ipa", "x-sampa")


@pytest.mark.parametrize(
    ("x_sampa", "ipa"),
    [
        ('pI"kA:n', "pɪˈkɑːn"),  # Polly's own examples for <phoneme alphabet="x-sampa">
        ('"pi.k{n', "ˈpi.kæn"),
        ('%foUn@"tIS@n', "ˌfoʊnəˈtɪʃən"),
        ("T@U", "θəʊ"),
        ("r\\`", "ɻ"),  # longest match: one symbol, not r + \ + `
        ("r\\", "ɹ"),
        ("r`", "ɽ"),
        ("d`", "ɖ"),
        ("@`", "ɚ"),
        ("G\\_<", "ʛ"),
        ("b_<", "ɓ"),
        ("|\\|\\", "ǁ"),
        ("||", "‖"),
        ("t_h", "tʰ"),
        ("n_0", "n\u0325"),
        ("t_S", "t\u0361ʃ"),
        ("a~", "a\u0303"),
        ("n=", "n\u0329"),
        ("k_>", "kʼ"),
        ("e_H_T", "e\u1dc4"),
        ("i:\\", "iˑ"),
        ("t'", "tʲ"),
        ("g", "ɡ"),
        ("E{QV", "ɛæɒʌ"),
        ("h\\ j\\", "ɦ ʝ"),
        ("a-b", "ab"),
        ("", ""),
    ],
)
def test_x_sampa(x_sampa: str, ipa: str) -> None:
    assert to_ipa(x_sampa, "x-sampa") == ipa


@pytest.mark.parametrize("ipa", ["pɪˈkɑːn", "ˈpi.kæn", "tʃ iː z", ""])
def test_ipa_is_returned_as_is(ipa: str) -> None:
    assert to_ipa(ipa, "ipa") == ipa


def test_ipa_normal_forms_are_not_altered() -> None:
    nfd = unicodedata.normalize("NFD", "ẽ")
    nfc = unicodedata.normalize("NFC", "ẽ")
    assert nfd != nfc
    assert to_ipa(nfd, "ipa") == nfd
    assert to_ipa(nfc, "ipa") == nfc


@pytest.mark.parametrize("alphabet", ["IPA", "sampa", "x-amazon-pinyin", ""])
def test_unknown_alphabet(alphabet: str) -> None:
    with pytest.raises(ValueError, match="unknown phonetic alphabet") as caught:
        to_ipa("a", alphabet)
    assert "ipa, x-sampa" in str(caught.value)


@pytest.mark.parametrize(("x_sampa", "position"), [("pIÄ", 3), ("a#b", 2), ("[a", 1)])
def test_unknown_x_sampa_symbol(x_sampa: str, position: int) -> None:
    with pytest.raises(ValueError, match=f"unknown X-SAMPA symbol .* at position {position}"):
        to_ipa(x_sampa, "x-sampa")


@pytest.mark.parametrize("ipa", ["a]]b", "[[a", "a]", "[a", "a\nb", "a\tb", "a\x00", "a\x7f"])
def test_ipa_that_would_break_the_block_is_refused(ipa: str) -> None:
    with pytest.raises(ValueError, match=r"would end \[\[\.\.\.\]\]|control character"):
        to_ipa(ipa, "ipa")


def test_control_character_message_names_the_code_point() -> None:
    with pytest.raises(ValueError, match="U\\+000A"):
        to_ipa("a\nb", "ipa")
