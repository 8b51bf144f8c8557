"""<say-as interpret-as> (pure): English text espeak-ng reads as Amazon Polly would say it.

Kept apart from the XML so that each interpretation is a plain ``(content, format) -> said``
function, read and tested on its own; ssml.py gives the said text ONE ``replaced`` Source
over the element's content. None from an interpretation: the content is said as written.

characters/spell-out: "AB1" -> "A-B 1" (letters one by one; a hyphen after "a" keeps espeak
from reading the article). cardinal/number: "1,234" -> "1234". ordinal: "3" -> "3rd".
digits: "123" -> "1 2 3". fraction: "2/9" -> "2 ninths", "3+1/2" -> "3 and a half".
telephone: "2025551212" -> "2 0 2, 5 5 5, 1 2 1 2" (10, 7 and 11 digits grouped; "+" ->
"plus", "x345" -> ", extension 3 4 5"). date (``format`` mdy, dmy, ymd, md, dm, ym, my, d,
m, y or yyyymmdd, where "?" hides a part; without format, 8 digits or "?" are yyyymmdd, a
4-digit first part ymd, else mdy): "12-31-1900" -> "December 31st, 1900". time: Polly's
duration "1'21\"" -> "1 minute 21 seconds", or a clock "5:30" -> "5:30", "5:00" -> "5
o'clock", "5:05 pm" -> "5 oh 5 PM". unit and address are said as written; content an
interpretation cannot read is said as written; expletive is refused (not in ``KINDS``).
Expansions are bounded per character, so the said text stays about three times the input.

What the expansions cost is counted before synthesis: digits, telephone and characters say
each digit on its own ("1 2 3"), and a digit's name takes far longer than the low estimate
per phoneme assumes (which holds for "a a a"); ``spoken_digit_seconds`` is the least such
digits take, so that a request whose digits alone are over the cap is refused before any
audio is made.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from itertools import accumulate, pairwise

Interpretation = Callable[[str, str | None], str | None]

_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
DATE_FORMATS = ("mdy", "dmy", "ymd", "md", "dm", "ym", "my", "d", "m", "y", "yyyymmdd")
_YYYYMMDD = re.compile(r"[0-9?]{8}")
_NUMBER = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)"
_CARDINAL = re.compile(rf"([+-]?){_NUMBER}(\.[0-9]+)?")
_ORDINAL = re.compile(rf"({_NUMBER})(?:st|nd|rd|th)?", re.IGNORECASE)
_FRACTION = re.compile(r"(?:([0-9]+)\s*\+\s*)?([0-9]+)\s*/\s*([0-9]+)")
_PHONE = re.compile(
    r"(\+?)\s*([0-9(][0-9()\-. ]*[0-9]|[0-9])\s*(?:(?:x|ext\.?)\s*([0-9]+))?", re.IGNORECASE
)
_CLOCK = re.compile(r"([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?(?:\s*([ap])\.?m\.?)?", re.IGNORECASE)
_DURATION = re.compile(
    r"(?:([0-9]+)\s*['\u2019\u2032])?\s*(?:([0-9]+(?:\.[0-9]+)?)\s*[\"\u201d\u2033])?"
)
_UNITS = (
    "", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
    "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
    "seventeenth", "eighteenth", "nineteenth",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
# The least audio an English digit said on its own makes at length_scale 1, in seconds, by
# digit (0 to 9): 3/4 of the shortest measured with en_US-joe-medium (30 of one digit in a
# row, apart by spaces or commas, noise_w 0 and the voice's 0.8); a random digit takes 0.28.
DIGIT_SECONDS = (0.29, 0.09, 0.10, 0.16, 0.13, 0.18, 0.24, 0.18, 0.19, 0.19)
# A digit said on its own: no letter, digit or underscore either side ("1 2", "3.5", not
# "12" or "x1"); raw phonemes ([[...]], Piper's) say no digit.
_SPOKEN_DIGIT = re.compile(r"(?<!\w)[0-9](?!\w)")
_RAW_PHONEMES = re.compile(r"\[\[.*?\]\]")


def _plain(digits: str) -> str:
    """Digits without leading zeros, as a string (int() refuses 4300 digits and more)."""
    return digits.lstrip("0") or "0"


def _ordinal_suffix(digits: str) -> str:
    tail = int(digits[-2:])
    if 11 <= tail % 100 <= 13:
        return "th"
    return {1: "st", 2: "nd", 3: "rd"}.get(tail % 10, "th")


def _characters(content: str, _: str | None) -> str | None:
    kept = [c for c in content if c.isalnum() or unicodedata.category(c)[0] == "S"]
    if not kept:
        return None
    return "".join(c + ("-" if c in "aA" else " ") for c in kept[:-1]) + kept[-1]


def _cardinal(content: str, _: str | None) -> str | None:
    found = _CARDINAL.fullmatch(content.strip())
    return found[0].replace(",", "") if found else None


def _ordinal(content: str, _: str | None) -> str | None:
    found = _ORDINAL.fullmatch(content.strip())
    if found is None:
        return None
    digits = found[1].replace(",", "")
    return digits + _ordinal_suffix(digits)


def _digits(content: str, _: str | None) -> str | None:
    if not re.search("[0-9]", content):
        return None
    return " ".join(re.findall(r"[0-9]|[^\W\d_]+", content))


def _fraction(content: str, _: str | None) -> str | None:
    found = _FRACTION.fullmatch(content.strip())
    if found is None:
        return None
    whole, over = found[1], _plain(found[3])
    upper = _plain(found[2])
    if len(over) > 2 or int(over) < 2:
        return f"{upper} over {over}" if over != "0" else None
    name = {"2": "half", "4": "quarter"}.get(over) or _denominator(int(over))
    if upper != "1":
        name = "halves" if over == "2" else name + "s"
    said = f"{'a' if whole and upper == '1' else upper} {name}"
    return f"{_plain(whole)} and {said}" if whole else said


def _denominator(number: int) -> str:
    if number < 20:
        return _UNITS[number]
    tens, unit = divmod(number, 10)
    return f"{_TENS[tens]}-{_UNITS[unit]}" if unit else _TENS[tens][:-1] + "ieth"


def _telephone(content: str, _: str | None) -> str | None:
    found = _PHONE.fullmatch(content.strip())
    if found is None:
        return None
    groups = re.findall("[0-9]+", found[2])
    if len(groups) == 1:
        digits = groups[0]
        sizes = {10: (3, 3, 4), 7: (3, 4), 11: (1, 3, 3, 4)}.get(len(digits), (len(digits),))
        if len(digits) == 11 and digits[0] != "1":
            sizes = (11,)
        bounds = [*accumulate(sizes, initial=0)]
        groups = [digits[a:b] for a, b in pairwise(bounds)]
    said = ", ".join(" ".join(group) for group in groups)
    said = "plus " + said if found[1] else said
    return said + ", extension " + " ".join(found[3]) if found[3] else said


def _time(content: str, _: str | None) -> str | None:
    clock = _CLOCK.fullmatch(content.strip())
    if clock is not None:
        return _clock(clock)
    duration = _DURATION.fullmatch(content.strip())
    if duration is None or not (duration[1] or duration[2]):
        return None
    parts = [(duration[1], "minute"), (duration[2], "second")]
    said = [f"{_plain(n)} {unit}{'' if _plain(n) == '1' else 's'}" for n, unit in parts if n]
    return " ".join(said)


def _clock(found: re.Match[str]) -> str | None:
    hours, minutes, seconds, noon = found.groups()
    if int(hours) > 24 or int(minutes) > 59 or (seconds and int(seconds) > 59):
        return None
    said = f"{int(hours)}:{minutes}"
    if minutes == "00":
        said = f"{int(hours)} o'clock"
    elif minutes[0] == "0":
        said = f"{int(hours)} oh {minutes[1]}"
    if seconds:
        said += f" and {int(seconds)} second{'' if int(seconds) == 1 else 's'}"
    return said + f" {noon.upper()}M" if noon else said


def _date(content: str, form: str | None) -> str | None:
    text = content.strip()
    if form == "yyyymmdd" or (form is None and _YYYYMMDD.fullmatch(text)):
        if not _YYYYMMDD.fullmatch(text):
            return None
        fields = {"y": text[:4], "m": text[4:6], "d": text[6:]}
        return _date_words({key: value for key, value in fields.items() if value.strip("?")})
    parts = [part for part in re.split(r"[-/.,\s]+", text) if part]
    form = form or ("ymd" if parts and len(parts[0]) == 4 else "mdy")
    if len(parts) != len(form):
        return None
    return _date_words(dict(zip(form, parts, strict=True)))


def _date_words(fields: dict[str, str]) -> str | None:
    """ "December 31st, 1900" from any of the parts; None if a part is not a date's."""
    sizes = {"y": 4, "m": 2, "d": 2}
    if not fields or any(
        not (value.isascii() and value.isdigit()) or len(value) > sizes[key]
        for key, value in fields.items()
    ):
        return None
    month, day, year = (int(fields[key]) if key in fields else 0 for key in "mdy")
    if month > 12 or ("m" in fields and month < 1) or ("d" in fields and day < 1):
        return None
    if day > (_MONTH_DAYS[month - 1] if month else 31):
        return None
    said = " ".join(
        [_MONTHS[month - 1]] * bool(month) + [f"{day}{_ordinal_suffix(str(day))}"] * bool(day)
    )
    if "y" in fields:
        said = f"{said}, {year}" if day else f"{said} {year}".strip()
    return said


def _verbatim(content: str, _: str | None) -> str | None:
    return None


_INTERPRETATIONS: dict[str, Interpretation] = {
    "characters": _characters,
    "spell-out": _characters,
    "cardinal": _cardinal,
    "number": _cardinal,
    "ordinal": _ordinal,
    "digits": _digits,
    "fraction": _fraction,
    "telephone": _telephone,
    "date": _date,
    "time": _time,
    "unit": _verbatim,
    "address": _verbatim,
}

KINDS = tuple(_INTERPRETATIONS)


def interpretation(interpret_as: str) -> Interpretation | None:
    """The function for ``interpret-as``; None if it is not supported."""
    return _INTERPRETATIONS.get(interpret_as)


def spoken_digit_seconds(said: str, language: str) -> float:
    """The least audio the digits ``said`` says one by one make at length_scale 1 (what
    digits, telephone and characters expand to, and such digits in any text); 0 for a voice
    that does not speak English (espeak's language: "en-us", "en-gb-x-rp", …) (pure)."""
    if not language.lower().startswith("en"):
        return 0.0
    digits = _SPOKEN_DIGIT.findall(_RAW_PHONEMES.sub(" ", said))
    return sum(DIGIT_SECONDS[int(digit)] for digit in digits)
