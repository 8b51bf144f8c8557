"""Speech marks and captions (pure): the synthesizer's timings as Amazon Polly's JSON lines,
and as WebVTT or SubRip cues of a readable length.

A mark is ``{"time": ms, "type": "word"|"sentence"|"ssml", "start": i, "end": j,
"value": v}``: ``time`` from the start of the audio, ``start``/``end`` character offsets
into the request's text (Polly's are byte offsets into UTF-8; characters are what a
Python, JavaScript or Go string indexes), so that ``text[start:end] == value``; an
``ssml`` mark's value is the ``<mark>``'s name and its offsets are the tag's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .voices import Timing

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


@dataclass(frozen=True)
class SpeechMark:
    time: int
    type: str
    start: int
    end: int
    value: str

    def as_json(self) -> dict[str, Any]:
        return {
            "time": self.time, "type": self.type, "start": self.start, "end": self.end,
            "value": self.value,
        }  # fmt: skip


def speech_marks(timings: Iterable[Timing], text: str, voice_rate: int) -> list[SpeechMark]:
    """Every timing as a mark, in time order (a sentence before its first word)."""
    marks = [
        SpeechMark(
            time=(timing.frame * 1000) // voice_rate,
            type=timing.kind,
            start=timing.start,
            end=timing.end,
            value=timing.name if timing.name is not None else text[timing.start : timing.end],
        )
        for timing in timings
    ]
    order = {kind: index for index, kind in enumerate(MARK_TYPES)}
    return sorted(marks, key=lambda mark: (mark.time, order.get(mark.type, 9)))


def json_lines(marks: Iterable[SpeechMark], types: Sequence[str]) -> bytes:
    """Polly's file: one JSON object a line, of the requested types."""
    lines = (
        json.dumps(mark.as_json(), ensure_ascii=False, separators=(",", ":"))
        for mark in marks
        if mark.type in types
    )
    return "".join(line + "\n" for line in lines).encode()


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str


def cues(marks: Sequence[SpeechMark], duration_ms: int, text: str, *, verbatim: bool) -> list[Cue]:
    """Words grouped into cues: a new cue at a sentence, or when the cue would be over
    ``CUE_CHARS`` or ``CUE_MS``. A cue ends when the next one starts (the last one with the
    audio). ``verbatim``: the request's text between the first and last word is shown
    (with its punctuation); otherwise (SSML) the words, joined by spaces."""
    groups: list[list[SpeechMark]] = []
    for mark in marks:
        if mark.type == "sentence":
            if groups and groups[-1]:
                groups.append([])
            continue
        if mark.type != "word":
            continue
        if not groups:
            groups.append([])
        group = groups[-1]
        if group and _too_big(group, mark, text, verbatim):
            group = []
            groups.append(group)
        group.append(mark)
    groups = [group for group in groups if group]
    out: list[Cue] = []
    for index, group in enumerate(groups):
        end = groups[index + 1][0].time if index + 1 < len(groups) else duration_ms
        out.append(Cue(group[0].time, max(end, group[0].time + 1), _shown(group, text, verbatim)))
    return out


def _shown(group: Sequence[SpeechMark], text: str, verbatim: bool) -> str:
    if verbatim:  # with the punctuation that sticks to the words at either end
        start, end = group[0].start, group[-1].end
        while start > 0 and not text[start - 1].isspace():
            start -= 1
        while end < len(text) and not text[end].isspace():
            end += 1
        return " ".join(text[start:end].split())
    return " ".join(mark.value for mark in group)


def _too_big(group: Sequence[SpeechMark], mark: SpeechMark, text: str, verbatim: bool) -> bool:
    return (
        len(_shown([*group, mark], text, verbatim)) > CUE_CHARS
        or mark.time - group[0].time > CUE_MS
    )


def _lines(text: str) -> str:
    """A cue of more than one line's worth is broken into two at a space near the middle."""
    if len(text) <= CUE_LINE_CHARS or " " not in text:
        return text
    middle = len(text) // 2
    spaces = [i for i, c in enumerate(text) if c == " "]
    cut = min(spaces, key=lambda i: abs(i - middle))
    return text[:cut] + "\n" + text[cut + 1 :]


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
        blocks.append(f"{number}\n{timing}\n{shown}\n" if fmt == "srt" else f"{timing}\n{shown}\n")
    head = "WEBVTT\n\n" if fmt == "vtt" else ""
    return (head + "\n".join(blocks)).encode()
