"""The bounds and names of a pronunciation lexicon: the parser (``lexicon.py``) and the
declared schema (``schema.py`` fills them in) take them from here (pure)."""

from __future__ import annotations

import re
from typing import Any

from .errors import LexiconError

KIND = "TempAudioLexicon"
PLURAL = "tempaudiolexicons"
SHORT_NAME = "tal"
MAX_ENTRIES = 5000
MAX_GRAPHEME = 100
MAX_ALIAS = 500
MAX_PHONEME = 500
# A PLS document inline in the spec: well under what one object may hold (about 1.5 MB).
MAX_PLS = 262_144
# Lexicons one policy says its requests with (spec.lexicons), in order.
MAX_LEXICONS = 16
# Object names, and so the names spec.lexicons holds (a DNS-1123 subdomain).
MAX_NAME = 253
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_NAME = re.compile(NAME_PATTERN)
# What a grapheme, alias or phoneme may not hold: control characters (Unicode's Cc: C0,
# DEL, C1; NUL and line breaks included: espeak reads C strings, and a word is one line)
# and surrogates (Cs: no UTF-8 text can carry a lone one). One table: the parser's check
# and the CRD's pattern (RE2, which the API server evaluates) are both made from it.
REFUSED_CHARACTERS = ((0x00, 0x1F), (0x7F, 0x9F), (0xD800, 0xDFFF))
# RE2's syntax (\x{...}); the parser's own expression takes the same ranges.
TEXT_PATTERN = (
    "^[^"
    + "".join(rf"\x{{{low:04X}}}-\x{{{high:04X}}}" for low, high in REFUSED_CHARACTERS)
    + "]*$"
)
_REFUSED = re.compile(
    "["
    + "".join(f"{re.escape(chr(low))}-{re.escape(chr(high))}" for low, high in REFUSED_CHARACTERS)
    + "]"
)


def check_name(name: str, what: str = "lexicon") -> str:
    """A lexicon's name as Kubernetes names objects (a DNS-1123 subdomain)."""
    if len(name) > MAX_NAME or not _NAME.match(name):
        raise LexiconError(
            f"{what} name {name[:60]!r} must be a DNS-1123 subdomain (lower case letters,"
            f" digits, '-' and '.', at most {MAX_NAME} characters)"
        )
    return name


def check_text(value: str, field: str, at: str) -> str:
    """``value`` unless it holds a character of ``REFUSED_CHARACTERS`` (named, with where)."""
    found = _REFUSED.search(value)
    if found is not None:
        kind = "a surrogate" if 0xD800 <= ord(found.group()) <= 0xDFFF else "a control character"
        raise LexiconError(
            f"{at}: {field} holds {kind}, U+{ord(found.group()):04X}, at position"
            f" {found.start() + 1}; graphemes, aliases and phonemes are text of one line"
        )
    return value


def lexicon_names(value: Any) -> tuple[str, ...]:
    """A policy's ``spec.lexicons``: names in its namespace, each once, in order."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LexiconError("lexicons must be a list of lexicon names")
    if len(value) > MAX_LEXICONS:
        raise LexiconError(f"lexicons names {len(value)}; at most {MAX_LEXICONS}")
    names = tuple(check_name(v, "lexicons:") for v in value)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise LexiconError(f"lexicons names {', '.join(twice)} more than once")
    return names
