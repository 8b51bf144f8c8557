"""Speech marks and captions (pure): the synthesizer's timings as Amazon Polly's JSON lines,
and as WebVTT or SubRip cues of a readable length.

A mark is ``{"time": ms, "type": "word"|"sentence"|"ssml", "start": i, "end": j,
"value": v}``: ``time`` from the start of the audio, ``start``/``end`` offsets in code
points into the request's text (Polly's are UTF-8 byte offsets), so that
``text[start:end] == value`` in Python; an ``ssml`` mark's value is the ``<mark>``'s name
and its offsets are the tag's.

Captions show the written text: for SSML a word's value decoded (``&amp;`` is "&"), and
escaped once for the caption format; a line is broken and a cue cut only between grapheme
clusters (Unicode's extended grapheme clusters, as the regex module finds them), so a flag or
a letter with its accent stays whole.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import regex

from tempaudio_service.speech.voices import Timing

MARK_TYPES = ("sentence", "word", "ssml")
# What Polly's speech marks are served as.
MARKS_EXTENSION = "marks"
MARKS_CONTENT_TYPE = "application/x-json-stream"
# Caption format -> (extension, content type).
CAPTIONS = {"vtt": ("vtt", "text/vtt; charset=utf-8"), "srt": ("srt", "application/x-subrip")}
# A readable cue: at most this many characters (one broadcast subtitle line, 42, twice)
# and this long on screen; a sentence starts a new cue.
CUE_CHARS = 84
CUE_LINE_CHARS = 42
CUE_MS = 7000
# A cue ends with its last word, or runs on to the next cue when that starts at most this
# long after the word, so that cues do not flicker off between words ("chaining": Netflix's
# subtitle timing guidelines close gaps of 12 frames, half a second, or fewer).
CUE_GAP_MS = 500
# What Python's str.splitlines() (and so many a line reader) ends a line at that JSON
# leaves as it is: escaped in the marks file, so that each mark is one line.
_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}


@dataclass(frozen=True)
class SpeechMark:
    time: int
    type: str
    start: int
    end: int
    value: str
    # When a word's last sound ends, ms (None: not known); captions use it, Polly's JSON
    # has no such field.
    end_time: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "type": self.type,
            "start": self.start,
            "end": self.end,
            "value": self.value,
        }


def speech_marks(timings: Iterable[Timing], text: str, voice_rate: int) -> list[SpeechMark]:
    """Every timing as a mark, in time order (a sentence before its first word)."""
    marks = [
        SpeechMark(
            time=(timing.frame * 1000) // voice_rate,
            type=timing.kind,
            start=timing.start,
            end=timing.end,
            value=timing.name if timing.name is not None else text[timing.start : timing.end],
            end_time=None if timing.end_frame is None else (timing.end_frame * 1000) // voice_rate,
        )
        for timing in timings
    ]
    order = {kind: index for index, kind in enumerate(MARK_TYPES)}
    return sorted(marks, key=lambda mark: (mark.time, order.get(mark.type, 9)))


def json_lines(marks: Iterable[SpeechMark], types: Sequence[str]) -> bytes:
    """Polly's file: one JSON object a line, of the requested types; a line break JSON
    allows inside a string (U+2028 in a ``<mark name>``) is escaped."""
    lines = (
        json.dumps(mark.as_json(), ensure_ascii=False, separators=(",", ":"))
        for mark in marks
        if mark.type in types
    )
    return "".join(_one_line(line) + "\n" for line in lines).encode()


def _one_line(line: str) -> str:
    for char, escaped in _LINE_BREAKS.items():
        line = line.replace(char, escaped)
    return line


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str


def cues(marks: Sequence[SpeechMark], duration_ms: int, text: str, *, verbatim: bool) -> list[Cue]:
    """Words grouped into cues: a new cue at a sentence, or when the cue would be over
    ``CUE_CHARS`` or ``CUE_MS``. A cue ends with its last word (``_end``). ``verbatim``:
    each word is shown as written, with the punctuation that sticks to it; otherwise (SSML)
    as its value, decoded. A word longer than a cue is cut to one."""
    words = [mark for mark in marks if mark.type == "word"]
    shown = _pieces(words, text) if verbatim else [_written(word.value) for word in words]
    groups = _groups(words, shown, {mark.start for mark in marks if mark.type == "sentence"})
    out: list[Cue] = []
    for number, group in enumerate(groups):
        start = words[group[0]].time
        following = words[groups[number + 1][0]].time if number + 1 < len(groups) else None
        end = _end(start, words[group[-1]], following, duration_ms)
        out.append(Cue(start, end, _cut(" ".join(shown[index] for index in group), CUE_CHARS)))
    return out


def _written(value: str) -> str:
    """An SSML word as written: its character and entity references decoded (the document
    is XML without a DTD, so only XML's five named entities can be in it)."""
    return " ".join(html.unescape(value).split())


def _groups(words: Sequence[SpeechMark], shown: Sequence[str], starts: set[int]) -> list[list[int]]:
    """The indexes of the words of each cue."""
    groups: list[list[int]] = []
    size = 0
    for index, word in enumerate(words):
        piece = len(shown[index])
        said_until = word.time if word.end_time is None else word.end_time
        if (
            not groups
            or word.start in starts
            or size + 1 + piece > CUE_CHARS
            or not _fits(" ".join(shown[i] for i in [*groups[-1], index]))
            or said_until - words[groups[-1][0]].time > CUE_MS
        ):
            groups.append([])
            size = -1
        groups[-1].append(index)
        size += 1 + piece
    return groups


def _end(start: int, last: SpeechMark, following: int | None, duration_ms: int) -> int:
    """Where a cue starting at ``start`` ends: with its last word, or when the next cue
    starts (the audio ends) if that is within ``CUE_GAP_MS`` of it or the word's end is
    not known; never after ``CUE_MS``, never before it starts."""
    end = duration_ms if following is None else following
    if last.end_time is not None and end - last.end_time > CUE_GAP_MS:
        end = last.end_time
    return max(start + 1, min(end, start + CUE_MS))


def _pieces(words: Sequence[SpeechMark], text: str) -> list[str]:
    """Each word as written with the punctuation stuck to it: the gap between two words
    goes to the first up to a space, to the second after the last space. The pieces never
    overlap, so all of them together are at most the text."""
    bounds = [(word.start, word.end) for word in words]
    for index in range(len(bounds) - 1):
        (start, end), (next_start, next_end) = bounds[index], bounds[index + 1]
        gap = text[end:next_start]
        if not gap.strip():
            continue
        first_space = next((i for i, c in enumerate(gap) if c.isspace()), len(gap))
        last_space = max((i for i, c in enumerate(gap) if c.isspace()), default=len(gap) - 1)
        bounds[index] = (start, end + first_space)
        bounds[index + 1] = (next_start - (len(gap) - last_space - 1), next_end)
    if bounds:
        start, end = bounds[0]
        while start > 0 and not text[start - 1].isspace():
            start -= 1
        bounds[0] = (start, end)
        start, end = bounds[-1]
        while end < len(text) and not text[end].isspace():
            end += 1
        bounds[-1] = (start, end)
    return [" ".join(text[start:end].split()) for start, end in bounds]


def _fits(text: str) -> bool:
    """The text is one line, or two at a space, of at most ``CUE_LINE_CHARS`` each."""
    if len(text) <= CUE_LINE_CHARS:
        return True
    return any(
        c == " " and i <= CUE_LINE_CHARS and len(text) - i - 1 <= CUE_LINE_CHARS
        for i, c in enumerate(text)
    )


def _lines(text: str) -> str:
    """A cue of more than one line's worth is broken into two at a space near the middle
    (or between grapheme clusters in the middle, when it has no space)."""
    if len(text) <= CUE_LINE_CHARS:
        return text
    middle = len(text) // 2
    bounds = _boundaries(text)
    spaces = sorted(i for i in bounds if text[i : i + 1] == " " and i + 1 in bounds)
    if not spaces:
        inner = sorted(bounds - {0, len(text)})
        if not inner:
            return text  # one cluster: nothing to break it at
        cut = min(inner, key=lambda i: abs(i - middle))
        return text[:cut] + "\n" + text[cut:]
    fitting = [i for i in spaces if i <= CUE_LINE_CHARS and len(text) - i - 1 <= CUE_LINE_CHARS]
    cut = min(fitting or spaces, key=lambda i: abs(i - middle))
    return text[:cut] + "\n" + text[cut + 1 :]


def _boundaries(text: str) -> set[int]:
    """Where the grapheme clusters of ``text`` start, and its end."""
    return {0, *(match.end() for match in regex.finditer(r"\X", text))}


def _cut(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: cut with "…" after the last grapheme
    cluster that fits (inside the first, when even that one does not)."""
    if len(text) <= limit:
        return text
    at = max(i for i in _boundaries(text) if i <= limit - 1)
    return text[: at or limit - 1] + "…"


def _clock(ms: int, separator: str) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{separator}{millis:03d}"


def caption_file(cue_list: Sequence[Cue], fmt: str) -> bytes:
    """WebVTT or SubRip."""
    blocks: list[str] = []
    separator = "." if fmt == "vtt" else ","
    for number, cue in enumerate(cue_list, start=1):
        timing = f"{_clock(cue.start_ms, separator)} --> {_clock(cue.end_ms, separator)}"
        # Cue text must not hold "-->"; WebVTT reads & and < as markup.
        shown = _lines(cue.text.replace("-->", "->"))
        if fmt == "vtt":
            shown = shown.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        else:  # players read SubRip's <i>, <b>, <font> as markup
            shown = shown.replace("<", "\u2039").replace(">", "\u203a")
        blocks.append(f"{number}\n{timing}\n{shown}\n" if fmt == "srt" else f"{timing}\n{shown}\n")
    head = "WEBVTT\n\n" if fmt == "vtt" else ""
    return (head + "\n".join(blocks)).encode()
