"""SSML -> Script (pure): Amazon Polly's subset of SSML, said by espeak-ng and Piper.

A client that already speaks Polly's SSML should get the same reading here, or a 422 that
names what is not supported; nothing is dropped silently except the tags listed as ignored.
This module holds what a document says (``parse_ssml`` and its builder); ssml_reader.py
reads the XML safely and checks each tag's attributes, say_as.py holds the interpretations.

Tags (Polly's names and behaviour, https://docs.aws.amazon.com/polly/latest/dg/supportedtags.html):

- ``<speak>``: the root, required; its attributes (``xml:lang``, ``version``...) are ignored.
- ``<s>`` and ``<p>``: each opening and closing ends a sentence: the text said so far gets a
  full stop if it has no ``.!?…`` of its own, so espeak closes the sentence (the added
  punctuation has no Source). ``<p>`` also pauses between paragraphs, once, never before
  the first words or after the last: ``PARAGRAPH_PAUSE`` (Polly: as ``strength="x-strong"``).
- ``<break>``: ``time`` ("2s", "500ms") wins over ``strength``. Strengths follow Polly: none
  and x-weak no pause, weak and medium (the default) a comma's, strong a sentence's, x-strong
  a paragraph's: 0, 0.25, 0.5 and 0.75 s. Polly documents 10 s as the longest break without
  saying what a longer one does; here a longer one is refused (422), never shortened.
- ``<prosody rate>``: x-slow 0.5, slow 0.75, medium (or default) 1.0, fast 1.25, x-fast 1.5,
  or N% from 20% to 200% (Polly's range). A percentage is of the voice's default rate (SSML
  1.1), so a nested rate replaces the enclosing one. ``volume`` and ``pitch`` are checked
  against Polly's values and then ignored (Piper has no pitch or volume control), except
  ``volume="silent"``, refused rather than spoken; ``amazon:max-duration`` is refused.
- ``<say-as interpret-as>``: one piece of English text for espeak, with ONE ``replaced``
  Source over the element's content (the interpretations: say_as.py); content an
  interpretation cannot read is said as written; expletive is refused.
- ``<sub alias>``: the alias is said; ``<phoneme alphabet ph>``: a ``[[ipa]]`` block
  (tempaudio_api.phonetics); both with one ``replaced`` Source over the element's content,
  or none when it has no content (``<sub alias="W3C"/>``: nothing of the document to mark).
  These three hold text only: a tag inside them is refused. Two of them side by side are
  said apart ("1 2 3 4" for two digits elements, never "1 23 4").
- ``<mark name>``: a Mark at the offsets of the tag itself; it ends the Said before it.
- Ignored (``IGNORED_TAGS``), their content said as if they were not there: ``<lang>`` (one
  voice per request), ``<emphasis>``, ``<w>``/``<token>``, ``<amazon:effect>``,
  ``<amazon:domain>``, ``<amazon:emotion>``, ``<amazon:auto-breaths>`` and the empty
  ``<amazon:breath/>``. Any other tag or attribute is refused with its name.

Offsets are character offsets into ``document``; a verbatim Source says exactly
``document[start:end]``. Text holding entities or character references is split around
them: each reference is its own ``replaced`` Source. Consecutive text is one Said, split
only by a Pause, a Mark, a paragraph or a change of rate, so espeak reads it in context;
whitespace at either end of a Said is not said. Errors say where: line and column, both
counted from 1 (a column is a character, not a byte).

Safety: no DTD, so no entities to expand (ssml_reader.py). Nesting is limited to ``MAX_DEPTH``
and a script to ``MAX_ITEMS`` items; the said text is at most about three times the document.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tempaudio_service.speech.script import Item, Mark, Pause, Said, Script, Source
from tempaudio_service.speech.ssml_reader import (
    ATTRIBUTES,
    PARAGRAPH_PAUSE,
    Reader,
    Tag,
    break_seconds,
    check_attributes,
    checked_element,
    invalid,
    prosody_rate,
    said_as,
)

MAX_DEPTH = 32
MAX_ITEMS = 1000
IGNORED_TAGS = frozenset(
    {"lang", "emphasis", "w", "token", "amazon:effect", "amazon:domain", "amazon:emotion"}
    | {"amazon:auto-breaths", "amazon:breath"}
)
_CAPTURING = frozenset({"say-as", "sub", "phoneme", "break", "mark"})
_SENTENCE_END = frozenset(".!?…。\uff01\uff1f")
_CLOSERS = "\"')]}»”\u2019"


def parse_ssml(document: str, *, max_pause_seconds: float = 10.0) -> Script:
    """The script ``document`` says; InvalidRequest (422, param "text") if it cannot be."""
    try:
        data = document.encode("utf-8")
    except UnicodeEncodeError as error:
        message = f"SSML holds an unpaired surrogate at character {error.start + 1}"
        raise invalid(message) from None
    builder = _Builder(document, max_pause_seconds)
    Reader(document, data, builder).parse()
    return builder.finish()


@dataclass
class _Piece:
    """Part of a Said's text; ``start``/``end``: what of the document it says (None: added)."""

    text: str
    start: int | None = None
    end: int | None = None
    replaced: bool = False  # not the document's own text: an alias, a say-as, an entity
    element: bool = False  # what a <say-as>, <sub> or <phoneme> says

    @property
    def verbatim(self) -> bool:
        return self.start is not None and not self.replaced


@dataclass
class _Open:
    tag: Tag
    content: list[str] | None = None  # text of an element that is not said as written
    said: str = ""
    rate: float = 1.0


@dataclass
class _Builder:
    document: str
    max_pause: float
    items: list[Item] = field(default_factory=list)
    pieces: list[_Piece] = field(default_factory=list)
    opened: list[_Open] = field(default_factory=list)
    rate: float = 1.0  # of the pieces
    paragraph_due: bool = False
    spoke: bool = False  # since the last paragraph pause
    space_due: bool = False

    def start(self, tag: Tag) -> None:
        self._check_place(tag)
        opened = _Open(tag, [] if tag.name in _CAPTURING else None)
        opened.rate = self.opened[-1].rate if self.opened else 1.0
        self.opened.append(opened)
        if tag.name in IGNORED_TAGS:
            return
        check_attributes(tag)
        if tag.name in {"p", "s"}:
            self._sentence_end(paragraph=tag.name == "p")
        elif tag.name == "break":
            self._pause(break_seconds(tag, self.max_pause))
        elif tag.name == "prosody":
            opened.rate = prosody_rate(tag, opened.rate)
        elif tag.name in {"say-as", "sub", "phoneme", "mark"}:
            opened.said = checked_element(tag)

    def _check_place(self, tag: Tag) -> None:
        if not self.opened and tag.name != "speak":
            raise invalid(f"SSML must have <speak> at its root, not <{tag.shown}> ({tag.where})")
        if self.opened and tag.name == "speak":
            raise invalid(f"SSML tag <speak> may only be the root ({tag.where})")
        if len(self.opened) >= MAX_DEPTH:
            raise invalid(f"SSML nests deeper than {MAX_DEPTH} elements ({tag.where})")
        parent = self.opened[-1].tag if self.opened else None
        if parent is not None and parent.name in _CAPTURING:
            raise invalid(f"SSML tag <{tag.shown}> may not be inside <{parent.name}> ({tag.where})")
        if tag.name not in ATTRIBUTES and tag.name not in IGNORED_TAGS:
            supported = ", ".join(ATTRIBUTES)
            message = f"SSML tag <{tag.shown}> is not supported ({tag.where}); supported: "
            raise invalid(message + f"{supported}; ignored: {', '.join(sorted(IGNORED_TAGS))}")

    def end(self, start: int, end: int) -> None:
        opened = self.opened.pop()
        tag = opened.tag
        content = "".join(opened.content or ())
        if tag.name in {"break", "mark"} and content.strip():
            raise invalid(f"SSML tag <{tag.name}> must be empty ({tag.where})")
        if tag.name in {"p", "s"}:
            self._sentence_end(paragraph=tag.name == "p")
        elif tag.name == "mark":
            self._item(Mark(tag.attrs.get("name", ""), tag.start, end))
        elif tag.name == "say-as":
            said = said_as(tag, content)
            self._generated(content if said is None else said, tag, start)
        elif tag.name in {"sub", "phoneme"}:
            self._generated(opened.said, tag, start)

    def text(self, data: str, start: int, end: int) -> None:
        opened = self.opened[-1]
        if opened.content is not None:
            opened.content.append(data)
            return
        raw = self.document[start:end]
        # Equal lengths differ only by expat's CR -> LF: say the document's own text.
        if len(raw) == len(data):
            self._say(_Piece(raw, start, end))
        else:
            self._say(_Piece(data, start, end, replaced=True))

    def _generated(self, text: str, tag: Tag, content_end: int) -> None:
        """Say ``text`` for the element's content, as one replaced (non-verbatim) piece; an
        empty element's (``<sub alias="..."/>``) indexes nothing of the document. Two
        elements side by side are said apart: "1 2" and "3 4", not "1 23 4"."""
        if not text.strip():
            return
        if self.pieces and self.pieces[-1].element:
            self.space_due = True
        if tag.end == content_end:
            self._say(_Piece(text.strip(), element=True))
        else:
            self._say(_Piece(text.strip(), tag.end, content_end, replaced=True, element=True))

    def _say(self, piece: _Piece) -> None:
        rate = self.opened[-1].rate
        if self.pieces and rate != self.rate:
            self._flush()
        if not self.pieces:
            piece = _lstrip(piece)
            if not piece.text:
                return
            self._before_item()
            self.rate = rate
        elif self.space_due and not piece.text[:1].isspace():
            self.pieces.append(_Piece(" "))
        self.space_due = False
        self.pieces.append(piece)

    def _sentence_end(self, *, paragraph: bool) -> None:
        _rstrip(self.pieces)
        if self.pieces and not _ends_sentence(self.pieces):
            self.pieces.append(_Piece("."))
        self.space_due = bool(self.pieces)
        if paragraph:
            self._flush()
            self.paragraph_due = True

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._item(Pause(seconds))

    def _item(self, item: Item) -> None:
        self._flush()
        self._before_item()
        self._append(item)

    def _before_item(self) -> None:
        if self.paragraph_due and self.spoke:
            self._append(Pause(PARAGRAPH_PAUSE))
            self.spoke = False  # one pause however many paragraph tags are in between
        self.paragraph_due = False

    def _append(self, item: Item) -> None:
        if len(self.items) >= MAX_ITEMS:
            raise invalid(f"SSML makes more than {MAX_ITEMS} pieces (text, pauses and marks)")
        self.items.append(item)

    def _flush(self) -> None:
        _rstrip(self.pieces)
        if self.pieces:
            self._append(_said(self.pieces, self.rate))
            self.spoke = True
        self.pieces = []
        self.space_due = False

    def finish(self) -> Script:
        self._flush()
        return tuple(self.items)


def _lstrip(piece: _Piece) -> _Piece:
    cut = len(piece.text) - len(piece.text.lstrip())
    if not cut or piece.start is None:
        return piece
    if piece.verbatim:
        return _Piece(piece.text[cut:], piece.start + cut, piece.end)
    return piece if piece.text.strip() else _Piece("")


def _rstrip(pieces: list[_Piece]) -> None:
    """Drop trailing whitespace: it says nothing, and a full stop goes before it."""
    while pieces and not pieces[-1].text.strip():
        pieces.pop()
    last = pieces[-1] if pieces else None
    if last is not None and last.verbatim and last.start is not None:
        text = last.text.rstrip()
        pieces[-1] = _Piece(text, last.start, last.start + len(text))


def _ends_sentence(pieces: list[_Piece]) -> bool:
    for piece in reversed(pieces):
        text = piece.text.rstrip().rstrip(_CLOSERS)
        if text:
            return text[-1] in _SENTENCE_END
    return False


def _said(pieces: list[_Piece], rate: float) -> Said:
    sources: list[Source] = []
    at = 0
    for piece in pieces:
        if piece.start is not None and piece.end is not None:
            source = Source(at, at + len(piece.text), piece.start, piece.end, piece.replaced)
            last = sources[-1] if sources else None
            if (
                last
                and last.verbatim
                and source.verbatim
                and (last.said_end, last.end) == (at, piece.start)
            ):
                source = Source(last.said_start, source.said_end, last.start, source.end)
                sources.pop()
            sources.append(source)
        at += len(piece.text)
    return Said("".join(piece.text for piece in pieces), tuple(sources), rate)
