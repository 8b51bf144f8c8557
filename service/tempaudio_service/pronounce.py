"""A script said with a policy's lexicons (pure): each grapheme found in the request's own
text is said as its alias, or as its phonemes (a raw ``[[...]]`` block, Piper's).

- Lexicons apply in the policy's order: the first that has a grapheme says it.
- A grapheme matches whole words only (not inside a longer word), case-sensitively, as a
  W3C PLS lexicon's graphemes do; the longest grapheme wins where several start at once.
- Only the request's own text is touched: never what SSML already replaced (``<sub>``,
  ``<say-as>``, ``<phoneme>``), nor an alias with another lexicon's grapheme in it.
- A replaced grapheme stays one written word for speech marks and captions.

Matching is a dictionary lookup at each token of the text, for the few lengths of the
graphemes that start with that token: linear in the text whatever the lexicons' size (a
regular expression of 80,000 alternatives is not). The index is built once per set of
lexicon versions and kept for the few sets in use.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tempaudio_api.lexicon import Lexicon
from tempaudio_api.phonetics import to_ipa

from .script import Item, Said, Script, Source

_TOKEN = re.compile(r"\w+|[^\w\s]")
# Indexes kept: one per set of lexicon versions in use (policies x edits in flight).
INDEXES_KEPT = 8


@dataclass(frozen=True)
class _Index:
    said: dict[str, str]  # grapheme -> what is said
    lengths: dict[str, tuple[int, ...]]  # first token -> grapheme lengths, longest first

    def match(self, text: str, token: re.Match[str]) -> str | None:
        """The longest grapheme at ``token`` that is a whole word there, or None."""
        at = token.start()
        if at > 0 and _is_word(text[at - 1]):
            return None  # inside a word ("ASP.NET" has no ".NET")
        for length in self.lengths.get(token.group(), ()):
            end = at + length
            grapheme = text[at:end]
            if grapheme in self.said and not (end < len(text) and _is_word(text[end])):
                return grapheme
        return None


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"


def _build(lexicons: Sequence[Lexicon]) -> _Index | None:
    said: dict[str, str] = {}
    for lexicon in lexicons:
        for entry in lexicon.entries:
            if entry.grapheme in said:
                continue
            if entry.alias is not None:
                said[entry.grapheme] = entry.alias
            elif entry.phoneme is not None:
                said[entry.grapheme] = f"[[{to_ipa(entry.phoneme, entry.alphabet)}]]"
    if not said:
        return None
    lengths: dict[str, set[int]] = {}
    for grapheme in said:
        first = _TOKEN.match(grapheme.strip())
        if first is not None and grapheme == grapheme.strip():
            lengths.setdefault(first.group(), set()).add(len(grapheme))
    ordered = {token: tuple(sorted(sizes, reverse=True)) for token, sizes in lengths.items()}
    return _Index(said, ordered)


_indexes: OrderedDict[tuple[tuple[str, str], ...], _Index | None] = OrderedDict()
_indexes_lock = threading.Lock()


def _index(lexicons: Sequence[Lexicon]) -> _Index | None:
    key = tuple((lexicon.name, lexicon.version) for lexicon in lexicons)
    with _indexes_lock:
        if key in _indexes:
            _indexes.move_to_end(key)
            return _indexes[key]
    index = _build(lexicons)
    with _indexes_lock:
        _indexes[key] = index
        while len(_indexes) > INDEXES_KEPT:
            _indexes.popitem(last=False)
    return index


def with_lexicons(script: Script, lexicons: Sequence[Lexicon]) -> Script:
    if not lexicons:
        return script
    index = _index(lexicons)
    if index is None:
        return script
    return tuple(_said_with(item, index) for item in script)


def _said_with(item: Item, index: _Index) -> Item:
    if not isinstance(item, Said):
        return item
    text: list[str] = []
    sources: list[Source] = []
    at = 0  # in the old text
    length = 0  # of the new text

    def keep(piece: str) -> None:
        nonlocal length
        text.append(piece)
        length += len(piece)

    for source in item.sources:
        keep(item.text[at : source.said_start])
        at = source.said_end
        if not source.verbatim:
            sources.append(_moved(source, length))
            keep(item.text[source.said_start : source.said_end])
            continue
        for piece, replaced, start, end in _split(item.text, source, index):
            sources.append(Source(length, length + len(piece), start, end, replaced=replaced))
            keep(piece)
    keep(item.text[at:])
    return Said(text="".join(text), sources=tuple(sources), rate=item.rate)


def _moved(source: Source, said_start: int) -> Source:
    return Source(
        said_start,
        said_start + source.said_end - source.said_start,
        source.start,
        source.end,
        replaced=source.replaced,
    )


def _split(text: str, source: Source, index: _Index) -> Iterable[tuple[str, bool, int, int]]:
    """The source's text in pieces: (what is said, replaced?, request start, end). Word
    boundaries are those of the whole said text: a word that SSML tags split in two
    ("SQL<emphasis>ite</emphasis>") is not a grapheme's."""
    shift = source.start - source.said_start
    at = source.said_start
    for token in _TOKEN.finditer(text, source.said_start, source.said_end):
        if token.start() < at:
            continue  # inside a grapheme just replaced
        grapheme = index.match(text, token)
        if grapheme is None or token.start() + len(grapheme) > source.said_end:
            continue
        start = token.start()
        if start > at:
            yield text[at:start], False, at + shift, start + shift
        end = start + len(grapheme)
        yield index.said[grapheme], True, start + shift, end + shift
        at = end
    if at < source.said_end:
        yield text[at : source.said_end], False, at + shift, source.said_end + shift
