"""Booleans: a policy's are JSON booleans; a setting's are words (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import PolicyError

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def flag(spec: Mapping[str, Any], name: str, *, default: bool) -> bool:
    """A policy's boolean field: true or false, never a string that looks like one (a
    ``suspend: "false"`` in a file is an error, not a suspended policy)."""
    value = spec.get(name, default)
    if not isinstance(value, bool):
        raise PolicyError(f"{name} {str(value)[:20]!r} must be true or false")
    return value


def parse_bool(text: str) -> bool:
    """A setting's boolean (an environment variable): one of the words, in any case."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"{text!r} is not a boolean (true/false, yes/no, on/off, 1/0)")
