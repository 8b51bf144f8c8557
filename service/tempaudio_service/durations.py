"""Duration strings such as ``24h``, ``90m``, ``2d`` or ``1h30m`` (pure)."""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def parse_duration(text: str) -> timedelta:
    """Parse ``[Nd][Nh][Nm][Ns]`` into a positive timedelta; raise ValueError otherwise."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"invalid duration {text!r}: use e.g. 24h, 90m, 2d or 1h30m")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    total = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if total <= timedelta(0):
        raise ValueError(f"invalid duration {text!r}: must be greater than zero")
    return total


def format_duration(value: timedelta) -> str:
    """The shortest ``[Nd][Nh][Nm][Ns]`` spelling of a whole-second duration."""
    remaining = int(value.total_seconds())
    if remaining <= 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        count, remaining = divmod(remaining, _UNIT_SECONDS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
