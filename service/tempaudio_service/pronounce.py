"""A script said with a policy's lexicons (pure): each grapheme found in the request's own
text is said as its alias, or as its phonemes (a raw ``[[...]]`` block, Piper's).

- Lexicons apply in the policy's order: the first that has a grapheme says it.
- A grapheme matches whole words only (not inside a longer word), case-sensitively, as a
  W3C PLS lexicon's graphemes do; the longest grapheme wins where several start at once.
- Only the request's own text is touched: never what SSML already replaced (``<sub>``,
  ``<say-as>``, ``<phoneme>``), nor an alias with another lexicon's grapheme in it.
- A replaced grapheme stays one written word for speech marks and captions.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence

from tempaudio_api.lexicon import Lexicon
from tempaudio_api.phonetics import to_ipa

from .script import Item, Said, Script, Source


@functools.lru_cache(maxsize=64)
def _compiled(lexicons: tuple[Lexicon, ...]) -> tuple[re.Pattern[str], dict[str, str]] | None:
    """The pattern of every grapheme and what each is said as (lexicons are frozen and
    hashable: a new version is a new key)."""
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
    alternatives = "|".join(re.escape(g) for g in sorted(said, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)"), said


def with_lexicons(script: Script, lexicons: Sequence[Lexicon]) -> Script:
    compiled = _compiled(tuple(lexicons))
    if compiled is None:
        return script
    pattern, said = compiled
    return tuple(_said_with(item, pattern, said) for item in script)


def _said_with(item: Item, pattern: re.Pattern[str], said: dict[str, str]) -> Item:
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
        for piece, replaced, start, end in _split(item.text, source, pattern, said):
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


def _split(
    text: str, source: Source, pattern: re.Pattern[str], said: dict[str, str]
) -> Iterable[tuple[str, bool, int, int]]:
    """The source's text in pieces: (what is said, replaced?, request start, end)."""
    shift = source.start - source.said_start
    at = source.said_start
    for match in pattern.finditer(text, source.said_start, source.said_end):
        if match.start() > at:
            yield text[at : match.start()], False, at + shift, match.start() + shift
        yield said[match.group()], True, match.start() + shift, match.end() + shift
        at = match.end()
    if at < source.said_end:
        yield text[at : source.said_end], False, at + shift, source.said_end + shift
