"""A script said with a policy's lexicons (pure): each grapheme found in the request's own
text is said as its alias, or as its phonemes (a raw ``[[...]]`` block, Piper's).

- Lexicons apply in the policy's order: the first that has a grapheme says it.
- A grapheme matches whole words only (not inside a longer word), case-sensitively, as a
  W3C PLS lexicon's graphemes do; the longest grapheme wins where several start at once.
- Text and graphemes are compared in Unicode NFC: "café" matches whether either was
  written composed (é) or decomposed (e + U+0301). What is not replaced is said as written.
- Only the request's own text is touched: never what SSML already replaced (``<sub>``,
  ``<say-as>``, ``<phoneme>``), nor an alias with another lexicon's grapheme in it.
- A replaced grapheme stays one written word for speech marks and captions.
- What is said is bounded: with its aliases, a request says at most ``max_chars``
  characters (TEMPAUDIO_MAX_TEXT_CHARS, as plain text), or what it said without them when
  that is more (SSML's own expansions); past it, ``TextTooLong`` before anything is
  phonemized, and the said text is never built whole first.

Matching is a dictionary lookup at each token of the text, for the few lengths of the
graphemes that start with that token: linear in the text whatever the lexicons' size (a
regular expression of 80,000 alternatives is not). The index is built once per set of
lexicon versions and kept for the few sets in use.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from tempaudio_api.lexicon import Lexicon
from tempaudio_api.phonetics import to_ipa
from tempaudio_service.core.errors import TextTooLong
from tempaudio_service.speech.script import Item, Said, Script, Source

_TOKEN = re.compile(r"\w+|[^\w\s]")
# Indexes kept: one per set of lexicon versions in use (policies x edits in flight).
INDEXES_KEPT = 8
# A run of characters normalized together (a letter and its marks) is at most this long:
# a longer one (hundreds of combining marks) is cut, so normalizing stays linear.
MAX_CLUSTER = 32


@dataclass(frozen=True)
class _Index:
    said: dict[str, str]  # grapheme (NFC) -> what is said
    lengths: dict[str, tuple[int, ...]]  # first token -> grapheme lengths, longest first

    def match(self, text: str, token: re.Match[str], before: str, after: str) -> str | None:
        """The longest grapheme at ``token`` that is a whole word there, or None; ``before``
        and ``after`` are the characters around ``text`` ("" at an end)."""
        at = token.start()
        if _is_word(text[at - 1] if at else before):
            return None  # inside a word ("ASP.NET" has no ".NET")
        for length in self.lengths.get(token.group(), ()):
            end = at + length
            grapheme = text[at:end]
            if grapheme in self.said and not _is_word(text[end] if end < len(text) else after):
                return grapheme
        return None


def _is_word(char: str) -> bool:
    """A letter, digit, underscore or combining mark (the "e" of NFD "café" is no word's end)."""
    return char.isalnum() or char == "_" or unicodedata.category(char[:1] or " ")[0] == "M"


@dataclass(frozen=True)
class _Normalized:
    """``text[start:...]`` in NFC, and where its runs start and end in ``text``."""

    text: str
    start: int
    # NFC offset -> offset in ``text``, at each edge of a run normalized apart; None: the
    # text was NFC already, and offsets only shift by ``start``.
    edges: Mapping[int, int] | None

    def original(self, at: int) -> int | None:
        """Where NFC offset ``at`` is in the original text; None: inside a run."""
        return self.start + at if self.edges is None else self.edges.get(at)


def _normalized(text: str, start: int, end: int) -> _Normalized:
    part = text[start:end]
    if unicodedata.is_normalized("NFC", part):
        return _Normalized(part, start, None)
    out: list[str] = []
    edges = {0: start}
    length = 0
    for run_start, run_end in _runs(part):
        normal = unicodedata.normalize("NFC", part[run_start:run_end])
        out.append(normal)
        length += len(normal)
        edges[length] = start + run_end
    return _Normalized("".join(out), start, edges)


def _runs(part: str) -> Iterable[tuple[int, int]]:
    """Spans of ``part`` that NFC normalizes apart: a character and the marks after it,
    joined with what comes next while NFC composes across (Hangul jamo), at most
    ``MAX_CLUSTER`` long."""
    run_start = 0
    for at in range(1, len(part) + 1):
        joined = at < len(part) and at - run_start < MAX_CLUSTER
        if joined and _joins(part[run_start:at], part[at]):
            continue
        yield run_start, at
        run_start = at


def _joins(run: str, char: str) -> bool:
    """Whether NFC may change ``run`` + ``char`` across their edge: a combining mark (it
    may be reordered or composed), or a character NFC composes with the run's end."""
    if unicodedata.combining(char):
        return True
    nfc = unicodedata.normalize
    return nfc("NFC", run + char) != nfc("NFC", run) + nfc("NFC", char)


def _build(lexicons: Sequence[Lexicon]) -> _Index | None:
    said: dict[str, str] = {}
    for lexicon in lexicons:
        for entry in lexicon.entries:
            grapheme = unicodedata.normalize("NFC", entry.grapheme)
            if grapheme in said:
                continue
            if entry.alias is not None:
                said[grapheme] = entry.alias
            elif entry.phoneme is not None:
                said[grapheme] = f"[[{to_ipa(entry.phoneme, entry.alphabet)}]]"
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


class _Budget:
    """The characters one request may still say: ``TextTooLong`` past them (None: any)."""

    def __init__(self, limit: int | None, field: str) -> None:
        self._limit = limit
        self._left = limit
        self._field = field

    def take(self, chars: int) -> None:
        if self._left is None:
            return
        self._left -= chars
        if self._left < 0:
            raise TextTooLong(
                f"'{self._field}' as said with the policy's lexicons has more than"
                f" {self._limit} characters, the limit (an alias counts at its own length)",
                param=self._field,
            )


def with_lexicons(
    script: Script,
    lexicons: Sequence[Lexicon],
    *,
    max_chars: int | None = None,
    field: str = "text",
) -> Script:
    """``script`` said with ``lexicons``, in order; ``TextTooLong`` (naming ``field``) once
    it says more than ``max_chars``, or than ``script`` says alone when that is more."""
    if not lexicons:
        return script
    index = _index(lexicons)
    if index is None:
        return script
    alone = sum(len(item.text) for item in script if isinstance(item, Said))
    budget = _Budget(None if max_chars is None else max(max_chars, alone), field)
    return tuple(_said_with(item, index, budget) for item in script)


def _said_with(item: Item, index: _Index, budget: _Budget) -> Item:
    if not isinstance(item, Said):
        return item
    text: list[str] = []
    sources: list[Source] = []
    at = 0  # in the old text
    length = 0  # of the new text

    def keep(piece: str) -> None:
        nonlocal length
        budget.take(len(piece))
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
    ("SQL<emphasis>ite</emphasis>") is not a grapheme's. Graphemes are found in the
    source's text in NFC; what is not replaced is cut from the text as written."""
    shift = source.start - source.said_start
    view = _normalized(text, source.said_start, source.said_end)
    around = (text[source.said_start - 1 : source.said_start], text[source.said_end :][:1])
    at = source.said_start  # in ``text``
    done = 0  # in ``view.text``
    for token in _TOKEN.finditer(view.text):
        if token.start() < done:
            continue  # inside a grapheme just replaced
        found = _found(view, token, index, around)
        if found is None:
            continue
        grapheme, start, end = found
        if start > at:
            yield text[at:start], False, at + shift, start + shift
        yield index.said[grapheme], True, start + shift, end + shift
        at, done = end, token.start() + len(grapheme)
    if at < source.said_end:
        yield text[at : source.said_end], False, at + shift, source.said_end + shift


def _found(
    view: _Normalized, token: re.Match[str], index: _Index, around: tuple[str, str]
) -> tuple[str, int, int] | None:
    """The grapheme at ``token`` and where it starts and ends in the text as written."""
    grapheme = index.match(view.text, token, *around)
    if grapheme is None:
        return None
    start = view.original(token.start())
    end = view.original(token.start() + len(grapheme))
    if start is None or end is None:
        return None  # an edge inside a run NFC made one (never a word's edge)
    return grapheme, start, end
