"""Durations such as ``24h``, ``90m``, ``2d`` or ``1h30m``: one grammar for every program
(pure). No blanks, no signs, no fractions: ``" 24h"`` is a typo, everywhere."""

from __future__ import annotations

import re
from datetime import timedelta

from .errors import PolicyError

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
GRAMMAR = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
# The same grammar for the CRD's pattern (OpenAPI patterns have no non-capturing groups).
PATTERN = r"^([0-9]+d)?([0-9]+h)?([0-9]+m)?([0-9]+s)?$"
# Shortest and longest retention any program accepts. The cleanup computes now - retention,
# and SigV4 URLs live at most 7 days whatever the retention (the item keeps its ttl).
MIN_RETENTION = timedelta(minutes=1)
MAX_RETENTION = timedelta(days=365)


def parse_duration(text: str, what: str = "duration") -> timedelta:
    """``[Nd][Nh][Nm][Ns]``, greater than zero; ``PolicyError`` (a ValueError) otherwise."""
    match = GRAMMAR.match(text)
    if not text or match is None:
        raise PolicyError(
            f"invalid duration: {what} {text[:40]!r} is not a duration such as 24h, 90m, 2d"
            " or 1h30m"
        )
    total = timedelta(
        seconds=sum(int(n or 0) * s for n, (_, s) in zip(match.groups(), _UNITS, strict=True))
    )
    if total <= timedelta(0):
        raise PolicyError(f"{what} {text!r} must be greater than zero")
    return total


def parse_retention(text: str) -> timedelta:
    value = parse_duration(text, "retention")
    if not MIN_RETENTION <= value <= MAX_RETENTION:
        raise PolicyError(f"retention {text!r} must be between 1m and 365d")
    return value


def format_duration(value: timedelta) -> str:
    """The shortest ``[Nd][Nh][Nm][Ns]`` spelling of a whole-second duration."""
    remaining = int(value.total_seconds())
    parts = []
    for unit, seconds in _UNITS:
        count, remaining = divmod(remaining, seconds)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"
