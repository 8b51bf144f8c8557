"""SSML's XML, read safely, and the checks on each tag's attributes (pure), for ssml.py.

Apart from the builder so that ssml.py holds what a document SAYS, and this module how it
is read and what a tag may hold. ``Reader`` turns expat's events into a ``Handler``'s
start/end/text with character offsets into the document; the checks refuse a bad attribute
(422, param "text") when its element opens, so an error points at its start tag.

Safety: expat with defusedxml's protections (DefusedExpatParser with forbid_dtd=True): no
DTD, so no entity declarations, external entities or entity expansion ("billion laughs"
stops at ``<!DOCTYPE``). Pyexpat is used directly because only it reports offsets. Errors
say where: line and column, both counted from 1 (a column is a character, not a byte).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from typing import NoReturn, Protocol
from xml.parsers import expat

from tempaudio_api.phonetics import to_ipa
from tempaudio_service.core.errors import InvalidRequest, cut
from tempaudio_service.speech.say_as import DATE_FORMATS, KINDS, Interpretation, interpretation

COMMA_PAUSE = 0.25
SENTENCE_PAUSE = 0.5
PARAGRAPH_PAUSE = 0.75
STRENGTHS = {"none": 0.0, "x-weak": 0.0, "weak": COMMA_PAUSE, "medium": COMMA_PAUSE}
STRENGTHS |= {"strong": SENTENCE_PAUSE, "x-strong": PARAGRAPH_PAUSE}
RATES = {"x-slow": 0.5, "slow": 0.75, "medium": 1.0, "default": 1.0, "fast": 1.25, "x-fast": 1.5}
# Supported tags and their attributes; xml:*, xmlns* and version are allowed on any tag.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "speak": (),
    "p": (),
    "s": (),
    "break": ("time", "strength"),
    "prosody": ("rate", "volume", "pitch"),
    "say-as": ("interpret-as", "format", "detail"),
    "sub": ("alias",),
    "phoneme": ("alphabet", "ph"),
    "mark": ("name",),
}
_TAG_END = re.compile(r"""(?:[^>"']|"[^"]*"|'[^']*')*>""")
_TIME = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ms|s)")
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)%")
_VOLUME = re.compile(r"default|x-soft|soft|medium|loud|x-loud|[+-][0-9]+(?:\.[0-9]+)?dB")
_PITCH = re.compile(r"default|x-low|low|medium|high|x-high|[+-][0-9]+(?:\.[0-9]+)?%")


def invalid(message: str) -> InvalidRequest:
    """The 422 for any SSML that cannot be read or said: the request's "text" is at fault."""
    return InvalidRequest(message, param="text")


@dataclass(frozen=True)
class Tag:
    name: str
    attrs: dict[str, str]
    start: int
    end: int  # of the start tag
    line: int
    column: int

    @property
    def where(self) -> str:
        return f"line {self.line}, column {self.column}"

    @property
    def shown(self) -> str:
        """The tag's name as a message repeats it (errors.cut)."""
        return cut(self.name)

    def bad(self, attribute: str, why: str) -> InvalidRequest:
        value = self.attrs.get(attribute)
        shown = cut(attribute) + (f"={cut(value)!r}" if value is not None else "")
        return invalid(f"attribute {shown} of <{self.shown}> {why} ({self.where})")


class Handler(Protocol):
    """What the reader drives: ssml.py's builder."""

    def start(self, tag: Tag) -> None: ...
    def end(self, start: int, end: int) -> None: ...
    def text(self, data: str, start: int, end: int) -> None: ...


class Reader:
    """Expat events -> the handler's start/end/text, with character offsets.

    Expat gives the byte offset where each event starts; a text chunk ends where the next
    event starts, and a tag's end is found by scanning the (already well-formed) tag.
    """

    def __init__(self, document: str, data: bytes, handler: Handler) -> None:
        self._document = document
        self._data = data
        self._handler = handler
        lengths = (len(char.encode("utf-8")) for char in document)
        self._byte_at = None if len(data) == len(document) else [*accumulate(lengths, initial=0)]
        self._pending: tuple[int, str] | None = None
        self._empty: list[int | None] = []  # per open element: end of its <x/> tag, or None
        parser = self._parser = expat.ParserCreate(encoding="UTF-8")
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._refuse("a DTD (<!DOCTYPE>)")
        parser.EntityDeclHandler = self._refuse("an entity declaration")
        parser.UnparsedEntityDeclHandler = self._refuse("an entity declaration")
        parser.ExternalEntityRefHandler = self._refuse("an external entity")
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        parser.CommentHandler = self._boundary
        parser.ProcessingInstructionHandler = self._boundary
        parser.StartCdataSectionHandler = self._boundary
        parser.EndCdataSectionHandler = self._boundary

    def parse(self) -> None:
        try:
            self._parser.Parse(self._data, True)
        except expat.ExpatError as error:
            where = f"line {error.lineno}, column {error.offset + 1}"
            reason = expat.ErrorString(error.code)
            raise invalid(f"SSML is not well-formed at {where}: {reason}") from None

    def _refuse(self, what: str) -> Callable[..., NoReturn]:
        def refuse(*_: object) -> NoReturn:
            line, column = self._parser.CurrentLineNumber, self._parser.CurrentColumnNumber
            raise invalid(f"SSML may not hold {what} (line {line}, column {column + 1})")

        return refuse

    def _here(self) -> int:
        byte = self._parser.CurrentByteIndex
        return byte if self._byte_at is None else bisect_left(self._byte_at, byte)

    def _boundary(self, *_: object) -> None:
        if self._pending is not None:
            start, data = self._pending
            self._pending = None
            self._handler.text(data, start, self._here())

    def _text(self, data: str) -> None:
        self._boundary()
        self._pending = (self._here(), data)

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self._boundary()
        start = self._here()
        found = _TAG_END.match(self._document, start)
        end = found.end() if found else start
        self._empty.append(end if self._document[end - 2 : end] == "/>" else None)
        line, column = self._parser.CurrentLineNumber, self._parser.CurrentColumnNumber + 1
        self._handler.start(Tag(name, attrs, start, end, line, column))

    def _end(self, name: str) -> None:
        self._boundary()
        empty_end = self._empty.pop()
        if empty_end is not None:
            self._handler.end(empty_end, empty_end)
            return
        start = self._here()
        self._handler.end(start, self._document.find(">", start) + 1 or start)


def check_attributes(tag: Tag) -> None:
    allowed = ATTRIBUTES[tag.name]
    for name in tag.attrs:
        if name not in allowed and not name.startswith("xml") and name != "version":
            supported = ", ".join(allowed) or "none"
            raise tag.bad(name, f"is not supported; supported: {supported}")


def break_seconds(tag: Tag, cap: float) -> float:
    strength = tag.attrs.get("strength")
    if strength is not None and strength not in STRENGTHS:
        raise tag.bad("strength", f"must be one of {', '.join(STRENGTHS)}")
    time = tag.attrs.get("time")
    if time is None:
        return STRENGTHS[strength or "medium"]
    found = _TIME.fullmatch(time.strip())
    if found is None:
        raise tag.bad("time", 'must be a duration such as "2s" or "500ms"')
    seconds = float(found[1]) / (1000 if found[2] == "ms" else 1)
    if seconds > cap:
        raise tag.bad("time", f"is longer than the {cap:g} s a break may last")
    return seconds


def prosody_rate(tag: Tag, rate: float) -> float:
    volume, pitch = tag.attrs.get("volume"), tag.attrs.get("pitch")
    if volume is not None and not _VOLUME.fullmatch(volume.strip()):
        raise tag.bad("volume", "must be default, x-soft, soft, medium, loud, x-loud or ±NdB")
    if pitch is not None and not _PITCH.fullmatch(pitch.strip()):
        raise tag.bad("pitch", "must be default, x-low, low, medium, high, x-high or ±N%")
    value = tag.attrs.get("rate")
    if value is None:
        return rate
    if value.strip() in RATES:
        return RATES[value.strip()]
    found = _PERCENT.fullmatch(value.strip())
    if found is None or not 20 <= float(found[1]) <= 200:
        raise tag.bad("rate", f"must be one of {', '.join(RATES)} or 20% to 200%")
    return float(found[1]) / 100


def checked_element(tag: Tag) -> str:
    """What a <sub> or <phoneme> says; every element is checked when it opens, so that
    an error points at its start tag."""
    if tag.name == "say-as":
        _interpretation(tag)
        return ""
    if tag.name == "mark":
        if not tag.attrs.get("name"):
            raise tag.bad("name", "is required and may not be empty")
        return ""
    if tag.name == "sub":
        alias = tag.attrs.get("alias", "").strip()
        if not alias:
            raise tag.bad("alias", "is required and may not be empty")
        return alias
    ph = tag.attrs.get("ph", "").strip()
    if not ph:
        raise tag.bad("ph", "is required and may not be empty")
    try:
        return f"[[{to_ipa(ph, tag.attrs.get('alphabet', 'ipa'))}]]"
    except ValueError as error:
        which = "ph" if tag.attrs.get("alphabet", "ipa") in ("ipa", "x-sampa") else "alphabet"
        raise tag.bad(which, f"is refused: {error}") from None


def _interpretation(tag: Tag) -> Interpretation:
    kind = tag.attrs.get("interpret-as")
    if kind is None:
        raise tag.bad("interpret-as", "is required")
    found = interpretation(kind)
    if found is None:
        raise tag.bad("interpret-as", f"is not supported; supported: {', '.join(KINDS)}")
    form = tag.attrs.get("format")
    if kind == "date" and form is not None and form not in DATE_FORMATS:
        raise tag.bad("format", f"must be one of {', '.join(DATE_FORMATS)}")
    return found


def said_as(tag: Tag, content: str) -> str | None:
    """The text said for a <say-as>; None: its content, said as written."""
    return _interpretation(tag)(content, tag.attrs.get("format"))
