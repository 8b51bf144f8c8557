"""Strict parsing of ``TEMPAUDIO_*`` values (pure), one rule per kind, shared by every program.

A value that is not recognised is an error naming its variable, never a silent default:
above all not for anything that deletes (``TEMPAUDIO_CLEANUP_DRY_RUN=on`` once ran a real
cleanup because only ``1``/``true``/``yes`` were known).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TypeVar

from tempaudio_api.durations import parse_retention
from tempaudio_api.storage import prefix_problem
from tempaudio_api.values import parse_bool
from tempaudio_service.core.hosts import parse_hosts

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
T = TypeVar("T")


class ConfigError(ValueError):
    """A setting holds a value the program cannot use; the message names it."""


def parse_log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"{text!r} is not a log level ({', '.join(LOG_LEVELS)})")
    return level


def parse_prefix(text: str) -> str:
    """The key prefix holding the ``YYYY-MM-DD/`` folders, by the policy's rule
    (``tempaudio_api.storage``); a missing last ``/`` is added.

    Not empty: the cleanup deletes under it, so an empty prefix would scope the whole bucket.
    """
    if not text.strip():
        raise ValueError("the prefix must not be empty (it scopes what the cleanup deletes)")
    prefix = text if text.endswith("/") else text + "/"
    problem = prefix_problem(prefix)
    if problem:
        raise ValueError(problem)
    return prefix


class Env:
    """Typed reads of one environment mapping; every error names the variable."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def raw(self, name: str) -> str | None:
        """The value, or None when unset or empty."""
        value = self._environ.get(name)
        return value if value else None

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def integer(self, name: str, default: int, minimum: int = 1, maximum: int | None = None) -> int:
        raw = self.raw(name)
        if raw is None:
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            raise ConfigError(f"{name}={raw[:40]!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"{minimum} to {maximum}"
            raise ConfigError(f"{name}={raw!r} must be {bounds}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        return self._parsed(name, parse_bool, default)

    def retention(self, name: str, default: timedelta) -> timedelta:
        # The policy's grammar, blanks included: " 24h" is refused here as in a policy.
        return self._parsed(name, parse_retention, default)

    def prefix(self, name: str, default: str) -> str:
        # Set but empty is an error here, not "unset": it would widen what the cleanup deletes.
        return self._parsed(name, parse_prefix, default, empty_is_unset=False)

    def log_level(self, name: str, default: str) -> str:
        return self._parsed(name, parse_log_level, default)

    def hosts(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        return self._parsed(name, parse_hosts, default)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = self.raw(name)
        if raw is None:
            return default
        if raw.strip() not in choices:
            raise ConfigError(f"{name}={raw!r} must be one of: {', '.join(choices)}")
        return raw.strip()

    def _parsed(
        self, name: str, parse: Callable[[str], T], default: T, *, empty_is_unset: bool = True
    ) -> T:
        raw = self._environ.get(name)
        if raw is None or (raw == "" and empty_is_unset):
            return default
        try:
            return parse(raw)
        except ValueError as error:
            raise ConfigError(f"{name}: {error}") from None
