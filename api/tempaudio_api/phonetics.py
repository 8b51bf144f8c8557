"""Phonetic alphabets to the IPA Piper reads in ``[[...]]`` blocks (pure, stdlib only).

SSML's ``<phoneme alphabet ph>`` and a lexicon's ``phoneme`` entries both end up as raw
phonemes inside ``[[...]]``; this module is the one place that turns what a client wrote
into that IPA and refuses what would break the block. IPA is passed through as written
(NFC and NFD are not altered: a voice's phoneme map decides what it knows), and X-SAMPA
is converted with the standard table (https://en.wikipedia.org/wiki/X-SAMPA), longest
symbol first, so ``r\\` `` is one symbol (ɻ), not r + backslash + backtick.

Refused: a ``[`` or ``]`` (the block ends at the first ``]]``, and a bracket next to the
block's own would move that end), control characters (Piper's block is one line), and
unknown X-SAMPA symbols. Each is a ValueError whose message says what and where.
"""

# ruff: noqa: RUF001  (IPA letters that look like ASCII ones are the point of this table)

from __future__ import annotations

import unicodedata

ALPHABETS = ("ipa", "x-sampa")

# X-SAMPA symbol -> IPA. Diacritics map to combining characters, so "n_0" is n + U+0325.
_X_SAMPA: dict[str, str] = {
    # Lower case
    "a": "a", "b": "b", "b_<": "ɓ", "c": "c", "d": "d", "d`": "ɖ", "d_<": "ɗ", "e": "e",
    "f": "f", "g": "ɡ", "g_<": "ɠ", "h": "h", "h\\": "ɦ", "i": "i", "j": "j", "j\\": "ʝ",
    "k": "k", "l": "l", "l`": "ɭ", "l\\": "ɺ", "m": "m", "n": "n", "n`": "ɳ", "o": "o",
    "p": "p", "p\\": "ɸ", "q": "q", "r": "r", "r`": "ɽ", "r\\": "ɹ", "r\\`": "ɻ", "s": "s",
    "s`": "ʂ", "s\\": "ɕ", "t": "t", "t`": "ʈ", "u": "u", "v": "v", "v\\": "ʋ", "w": "w",
    "x": "x", "x\\": "ɧ", "y": "y", "z": "z", "z`": "ʐ", "z\\": "ʑ",
    # Upper case
    "A": "ɑ", "B": "β", "B\\": "ʙ", "C": "ç", "D": "ð", "E": "ɛ", "F": "ɱ", "G": "ɣ",
    "G\\": "ɢ", "G\\_<": "ʛ", "H": "ɥ", "H\\": "ʜ", "I": "ɪ", "I\\": "ᵻ", "J": "ɲ",
    "J\\": "ɟ", "J\\_<": "ʄ", "K": "ɬ", "K\\": "ɮ", "L": "ʎ", "L\\": "ʟ", "M": "ɯ",
    "M\\": "ɰ", "N": "ŋ", "N\\": "ɴ", "O": "ɔ", "O\\": "ʘ", "P": "ʋ", "Q": "ɒ", "R": "ʁ",
    "R\\": "ʀ", "S": "ʃ", "T": "θ", "U": "ʊ", "U\\": "ᵿ", "V": "ʌ", "W": "ʍ", "X": "χ",
    "X\\": "ħ", "Y": "ʏ", "Z": "ʒ",
    # Other symbols
    ".": ".", '"': "ˈ", "%": "ˌ", "'": "ʲ", ":": "ː", ":\\": "ˑ", "@": "ə", "@\\": "ɘ",
    "@`": "ɚ", "{": "æ", "}": "ʉ", "1": "ɨ", "2": "ø", "3": "ɜ", "3\\": "ɞ", "4": "ɾ",
    "5": "ɫ", "6": "ɐ", "7": "ɤ", "8": "ɵ", "9": "œ", "&": "ɶ", "?": "ʔ", "?\\": "ʕ",
    "<\\": "ʢ", ">\\": "ʡ", "^": "ꜛ", "!": "ꜜ", "!\\": "ǃ", "|": "|", "|\\": "ǀ",
    "||": "‖", "|\\|\\": "ǁ", "=\\": "ǂ", "-\\": "‿", "-": "", " ": " ",
    # Diacritics and suprasegmentals
    '_"': "\u0308", "_+": "\u031f", "_-": "\u0320", "_/": "\u030c", "_0": "\u0325",
    "=": "\u0329", "_=": "\u0329", "_>": "ʼ", "_?\\": "ˤ", "_\\": "\u0302", "_^": "\u032f",
    "_}": "\u031a", "`": "˞", "~": "\u0303", "_~": "\u0303", "_A": "\u0318", "_a": "\u033a",
    "_B": "\u030f", "_B_L": "\u1dc5", "_c": "\u031c", "_d": "\u032a", "_e": "\u0334",
    "<F>": "↘", "_F": "\u0302", "_G": "ˠ", "_H": "\u0301", "_H_T": "\u1dc4", "_h": "ʰ",
    "_j": "ʲ", "_k": "\u0330", "_L": "\u0300", "_l": "ˡ", "_M": "\u0304", "_m": "\u033b",
    "_N": "\u033c", "_n": "ⁿ", "_O": "\u0339", "_o": "\u031e", "_q": "\u0319", "<R>": "↗",
    "_R": "\u030c", "_R_F": "\u1dc8", "_r": "\u031d", "_T": "\u030b", "_t": "\u0324",
    "_v": "\u032c", "_w": "ʷ", "_X": "\u0306", "_x": "\u033d",
    # A lone underscore (before no diacritic letter) ties two symbols: t_S -> t͡ʃ.
    "_": "\u0361",
}  # fmt: skip

_LONGEST = max(len(symbol) for symbol in _X_SAMPA)


def to_ipa(phonemes: str, alphabet: str) -> str:
    """``phonemes`` in ``alphabet`` as IPA for a ``[[...]]`` block; ValueError if not.

    The lexicon and SSML share this so that a pronunciation accepted in one is accepted
    in the other, and both fail with the same words.
    """
    if alphabet == "ipa":
        ipa = phonemes
    elif alphabet == "x-sampa":
        ipa = _from_x_sampa(phonemes)
    else:
        raise ValueError(
            f"unknown phonetic alphabet {alphabet[:40]!r}; supported: {', '.join(ALPHABETS)}"
        )
    _check_block(ipa, phonemes)
    return ipa


def _from_x_sampa(phonemes: str) -> str:
    out: list[str] = []
    at = 0
    while at < len(phonemes):
        for size in range(min(_LONGEST, len(phonemes) - at), 0, -1):
            ipa = _X_SAMPA.get(phonemes[at : at + size])
            if ipa is not None:
                out.append(ipa)
                at += size
                break
        else:
            raise ValueError(
                f"unknown X-SAMPA symbol {phonemes[at]!r} at position {at + 1} of {phonemes[:40]!r}"
            )
    return "".join(out)


def _check_block(ipa: str, written: str) -> None:
    """Refuse what would end the ``[[...]]`` block early or break its one line."""
    for char in ipa:
        if char in "[]":
            raise ValueError(f"phonemes {written[:40]!r} hold {char!r}, which would end [[...]]")
        if unicodedata.category(char) in {"Cc", "Cs"}:
            raise ValueError(f"phonemes {written[:40]!r} hold control character U+{ord(char):04X}")
