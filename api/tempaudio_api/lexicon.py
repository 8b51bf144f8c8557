"""TempAudioLexicon spec -> validated Lexicon: how graphemes are said (pure).

A lexicon's spec holds ``entries`` (each a ``grapheme`` with an ``alias``, or with a
``phoneme`` in an ``alphabet``), a W3C PLS 1.0 document in ``pls``, or both: the inline
entries come first, then the PLS document's, and a grapheme may appear once in all.
The CRD's schema refuses most bad input; this parser is the rule both programs apply
(the operator accepts a lexicon with it, the service reads what was accepted, a policy
file is read with it), and the one place a PLS document is read, safely (defusedxml).
Graphemes, aliases and phonemes are text of one line: no control characters (NUL, line
breaks) and no surrogates (``lexicon_rules.REFUSED_CHARACTERS``; a PLS document's line
breaks and indents are white space, read as single spaces).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, ParseError

from .errors import LexiconError
from .lexicon_rules import (
    MAX_ALIAS,
    MAX_ENTRIES,
    MAX_GRAPHEME,
    MAX_PHONEME,
    MAX_PLS,
    check_name,
    check_text,
)
from .phonetics import ALPHABETS, to_ipa

_PLS_NS = "http://www.w3.org/2005/01/pronunciation-lexicon"
# XML's white space: a PLS document may wrap a long alias over lines.
_XML_SPACE = re.compile(r"[ \t\r\n]+")


@dataclass(frozen=True)
class LexiconEntry:
    grapheme: str
    alias: str | None = None
    phoneme: str | None = None
    alphabet: str = "ipa"


@dataclass(frozen=True)
class Lexicon:
    name: str
    entries: tuple[LexiconEntry, ...]

    @property
    def version(self) -> str:
        """A short digest of the entries, in order: what the repeat cache keys on, so audio
        said with an older lexicon is never served for a newer one. Total: whatever the
        entries hold (the parser refuses surrogates, but a digest must not be what fails)."""
        rows = [[e.grapheme, e.alias, e.phoneme, e.alphabet] for e in self.entries]
        encoded = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(encoded.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _check_phoneme(phoneme: str, alphabet: str, at: str) -> None:
    if alphabet not in ALPHABETS:
        raise LexiconError(
            f"{at}: alphabet {alphabet[:20]!r} must be one of {', '.join(ALPHABETS)}"
        )
    if not phoneme.strip() or len(phoneme) > MAX_PHONEME:
        raise LexiconError(f"{at}: phoneme must have 1 to {MAX_PHONEME} characters")
    check_text(phoneme, "phoneme", at)
    try:
        to_ipa(phoneme, alphabet)
    except ValueError as error:
        raise LexiconError(f"{at}: {error}") from None


def _text(value: Any, field: str, at: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise LexiconError(f"{at}: {field} must be a string")
    return value


def entry(item: Mapping[str, Any], at: str) -> LexiconEntry:
    """One entry: a grapheme with exactly one of alias and phoneme."""
    if not isinstance(item, Mapping):
        raise LexiconError(f"{at} must be an object with grapheme and alias or phoneme")
    grapheme = _text(item.get("grapheme"), "grapheme", at) or ""
    if not grapheme.strip() or len(grapheme) > MAX_GRAPHEME:
        raise LexiconError(f"{at}: grapheme must have 1 to {MAX_GRAPHEME} characters")
    check_text(grapheme, "grapheme", at)
    alias = _text(item.get("alias"), "alias", at)
    phoneme = _text(item.get("phoneme"), "phoneme", at)
    if (alias is None) == (phoneme is None):
        raise LexiconError(f"{at} ({grapheme[:40]!r}): set exactly one of alias and phoneme")
    alphabet = _text(item.get("alphabet"), "alphabet", at) or "ipa"
    if alias is not None:
        if not alias.strip() or len(alias) > MAX_ALIAS:
            raise LexiconError(
                f"{at} ({grapheme[:40]!r}): alias must have 1 to {MAX_ALIAS} characters"
            )
        check_text(alias, "alias", f"{at} ({grapheme[:40]!r})")
        return LexiconEntry(grapheme, alias=alias)
    assert phoneme is not None
    _check_phoneme(phoneme, alphabet, f"{at} ({grapheme[:40]!r})")
    return LexiconEntry(grapheme, phoneme=phoneme, alphabet=alphabet)


def _checked(entries: Iterable[LexiconEntry]) -> tuple[LexiconEntry, ...]:
    """Bounded, each grapheme once: once as text, so "café" written composed (NFC) and
    decomposed (NFD) is one grapheme twice (a request's text matches them alike)."""
    result: list[LexiconEntry] = []
    seen: set[str] = set()
    for item in entries:
        key = unicodedata.normalize("NFC", item.grapheme)
        if key in seen:
            raise LexiconError(f"grapheme {item.grapheme[:40]!r} appears twice")
        seen.add(key)
        result.append(item)
        if len(result) > MAX_ENTRIES:
            raise LexiconError(f"more than {MAX_ENTRIES} entries")
    return tuple(result)


def lexicon_from_spec(name: str, spec: Mapping[str, Any]) -> Lexicon:
    """A TempAudioLexicon's spec, validated: ``LexiconError`` (a ``PolicyError``) says why not."""
    check_name(name)
    items = spec.get("entries") or []
    pls = spec.get("pls")
    if not isinstance(items, list):
        raise LexiconError("entries must be a list")
    if not items and not pls:
        raise LexiconError("the lexicon needs entries, a pls document, or both")
    if len(items) > MAX_ENTRIES:
        raise LexiconError(f"{len(items)} entries; at most {MAX_ENTRIES}")
    inline = [entry(item, f"entries[{index}]") for index, item in enumerate(items)]
    imported = entries_from_pls(pls) if pls else ()
    return Lexicon(name, _checked([*inline, *imported]))


# --- W3C PLS 1.0 --------------------------------------------------------------------------


def _local(element: Element) -> str:
    tag = element.tag
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _parse_xml(document: str) -> Element:
    """The document's root, refusing DTDs (entity bombs), entities and external references."""
    # Imported by name: defusedxml ships no type stubs (its use here is two calls).
    safe = importlib.import_module("defusedxml.ElementTree")
    defused = importlib.import_module("defusedxml")
    try:
        root: Element = safe.fromstring(document, forbid_dtd=True)
    except defused.DefusedXmlException as error:
        raise LexiconError(f"pls: refused ({type(error).__name__}): no DTD or entities") from None
    except ParseError as error:
        raise LexiconError(f"pls: not well-formed XML: {error}") from None
    return root


def _one_line(text: str | None) -> str:
    """An element's text with its XML white space (line breaks, indents) as single spaces."""
    return _XML_SPACE.sub(" ", text or "").strip()


def _pronunciation(lexeme: Element, alphabet: str, at: str) -> dict[str, str]:
    """The lexeme's pronunciation: the first one marked prefer="true", else the first."""
    said = [c for c in lexeme if _local(c) in {"alias", "phoneme"}]
    if not said:
        raise LexiconError(f"{at}: no alias or phoneme")
    chosen = next((c for c in said if c.get("prefer") == "true"), said[0])
    text = _one_line(chosen.text)
    if _local(chosen) == "alias":
        return {"alias": text}
    return {"phoneme": text, "alphabet": chosen.get("alphabet") or alphabet}


def entries_from_pls(document: str) -> tuple[LexiconEntry, ...]:
    """A W3C PLS 1.0 document's lexemes as entries, one per grapheme, in document order."""
    if not isinstance(document, str) or len(document) > MAX_PLS:
        raise LexiconError(f"pls must be a document of at most {MAX_PLS} characters")
    root = _parse_xml(document)
    if root.tag not in {"lexicon", f"{{{_PLS_NS}}}lexicon"}:
        raise LexiconError(f"pls: the root must be a PLS 1.0 <lexicon> ({_PLS_NS})")
    alphabet = root.get("alphabet") or "ipa"
    found: list[LexiconEntry] = []
    for index, lexeme in enumerate(c for c in root if _local(c) == "lexeme"):
        at = f"pls lexeme {index + 1}"
        graphemes = [_one_line(c.text) for c in lexeme if _local(c) == "grapheme"]
        if not graphemes:
            raise LexiconError(f"{at}: no grapheme")
        said = _pronunciation(lexeme, alphabet, at)
        found += [entry({"grapheme": g, **said}, at) for g in graphemes]
        if len(found) > MAX_ENTRIES:
            raise LexiconError(f"pls: more than {MAX_ENTRIES} entries")
    return _checked(found)
