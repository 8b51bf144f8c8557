"""A policy's asynchronous synthesis jobs (``spec.jobs``): whether they run, how long a
job's text may be, and where a finished job may call back (pure).

A callback is a request the service makes on a caller's say-so, from inside the cluster:
left open, any caller could point it at any address the service reaches. So the policy,
which the platform team writes, names the URL prefixes a job's ``callback_url`` must
start with, and ``callback_allowed`` compares them on the parsed URL (scheme, host,
port, then the path), never on the text, where ``https://ok.example@evil.example/``
and ``https://ok.example.evil.example/`` both start with ``https://ok.example``.

The bounds and patterns here are the CRD's too: ``schema.py`` fills them into the declared
schema, so the API server and this parser refuse the same prefixes, each with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import PolicyError

# The longest text one job may hold, and spec.jobs.maxCharacters' default.
MAX_JOB_CHARACTERS = 200_000
MAX_CALLBACK_PREFIXES = 16
MAX_CALLBACK_PREFIX = 512
# An absolute http(s) URL with no user@, no ?query and no #fragment (the CRD's pattern).
CALLBACK_PREFIX_PATTERN = r"^https?://[^/@?#\s]+(/[^?#\s]*)?$"
# A port from 1 to 65535, without leading zeros.
PORT_PATTERN = (
    r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
)
# What may stand between the scheme and the path: a host name or an [IPv6] address, then
# a port. RE2 and Python read it alike (a CEL rule, and the checks below).
AUTHORITY_PATTERN = r"^https?://([A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])(:" + PORT_PATTERN + r")?(/|$)"
# Printable ASCII, no backslash (browsers read one as '/'): an international host is
# written in its xn-- form.
TEXT_PATTERN = r"^[!-\[\]-~]*$"
# A '.' or '..' path segment, also percent-encoded, also with ';' parameters (Tomcat and
# Jetty read /hooks/..;x/admin as /admin): a client or a server resolving it would leave
# the prefix's path (/hooks/../admin is /admin).
DOT_SEGMENT_PATTERN = r"/(\.|%2[eE]){1,2}(;[^/]*)?(/|$)"
# A '/' or '\' hidden in one segment (%2F, %5C), which some servers split on.
ENCODED_SEPARATOR_PATTERN = r"%(2[fF]|5[cC])"
# A '%' that does not start an escape (two hex digits); RE2 has no lookahead.
BAD_ESCAPE_PATTERN = r"%([^0-9A-Fa-f]|[0-9A-Fa-f]([^0-9A-Fa-f]|$)|$)"
# What no callback URL's path may hold (a prefix holds no query: the whole prefix).
REFUSED_PATH_PATTERN = f"{DOT_SEGMENT_PATTERN}|{ENCODED_SEPARATOR_PATTERN}|{BAD_ESCAPE_PATTERN}"
_PREFIX = re.compile(CALLBACK_PREFIX_PATTERN)
# A URL's scheme and host may be in any case; a prefix's scheme is lower case (_PREFIX).
_AUTHORITY = re.compile(AUTHORITY_PATTERN, re.IGNORECASE)
_TEXT = re.compile(TEXT_PATTERN)
_REFUSED_PATH = re.compile(REFUSED_PATH_PATTERN)
_DEFAULT_PORTS = {"http": 80, "https": 443}
FIELDS = ("enabled", "maxCharacters", "callbackUrlPrefixes")


@dataclass(frozen=True)
class JobsSpec:
    """``spec.jobs``; its defaults are the CRD's, so an absent block reads as an empty one."""

    # False: POST /tts/jobs under this policy is refused (jobs_disabled).
    enabled: bool = True
    # The longest text one job under this policy may hold.
    max_characters: int = MAX_JOB_CHARACTERS
    # Where a job's callback_url may point; none: jobs under this policy take no callback.
    callback_url_prefixes: tuple[str, ...] = ()

    def allows_callback(self, url: str) -> bool:
        """``callback_allowed`` under this policy's prefixes."""
        return callback_allowed(self.callback_url_prefixes, url)


@dataclass(frozen=True)
class _Target:
    """Where a URL sends a request: what the prefix rule compares."""

    scheme: str
    host: str
    port: int
    path: str


def callback_allowed(prefixes: Iterable[str], url: str) -> bool:
    """Whether ``url`` is under one of ``prefixes``: the same scheme, host (both in any
    case) and port (80 and 443 by default), and a path that starts with the prefix's
    path, at a segment's end unless that path ends with '/' or is empty (``/hooks``
    admits ``/hooks/x`` and ``/hooks``, never ``/hooksevil``). A URL with user@, a
    #fragment, a scheme but http(s), a '.' or '..' segment, a backslash, whitespace or
    other than ASCII is never allowed; a query is its own."""
    target = _target(url)
    if target is None:
        return False
    path = target.path or "/"
    for prefix in prefixes:
        under = _target(prefix)
        if under is None or (under.scheme, under.host, under.port) != (
            target.scheme,
            target.host,
            target.port,
        ):
            continue
        if _path_under(path, under.path):
            return True
    return False


def _path_under(path: str, prefix: str) -> bool:
    if not path.startswith(prefix):
        return False
    rest = path[len(prefix) :]
    return not prefix or prefix.endswith("/") or not rest or rest.startswith("/")


def _target(url: str) -> _Target | None:
    """The parsed destination of ``url``, or None where it is not one a callback may have."""
    if not _TEXT.fullmatch(url) or not _AUTHORITY.match(url) or "#" in url:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # what _AUTHORITY lets through should parse; never assume it
        return None
    if parts.scheme not in _DEFAULT_PORTS or "@" in parts.netloc or not parts.hostname:
        return None
    if _REFUSED_PATH.search(parts.path):
        return None
    return _Target(
        scheme=parts.scheme,
        host=parts.hostname.lower(),
        port=_DEFAULT_PORTS[parts.scheme] if port is None else port,
        path=parts.path,
    )


def parse_jobs(value: Any) -> JobsSpec:
    """A policy's ``spec.jobs``; absent, the defaults."""
    if value is None:
        return JobsSpec()
    if not isinstance(value, Mapping):
        raise PolicyError(f"jobs must be an object ({', '.join(FIELDS)})")
    unknown = set(value) - set(FIELDS)
    if unknown:
        raise PolicyError(f"jobs has unknown fields {sorted(unknown)}")
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        raise PolicyError(f"jobs.enabled {str(enabled)[:20]!r} must be true or false")
    return JobsSpec(
        enabled=enabled,
        max_characters=_max_characters(value.get("maxCharacters", MAX_JOB_CHARACTERS)),
        callback_url_prefixes=_prefixes(value.get("callbackUrlPrefixes")),
    )


def _max_characters(value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_JOB_CHARACTERS
    ):
        raise PolicyError(
            f"jobs.maxCharacters {str(value)[:20]!r} must be a whole number from 1 to"
            f" {MAX_JOB_CHARACTERS}"
        )
    return value


def _prefixes(value: Any) -> tuple[str, ...]:
    where = "jobs.callbackUrlPrefixes"
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where} must be a list of URL prefixes (strings)")
    if len(value) > MAX_CALLBACK_PREFIXES:
        raise PolicyError(f"{where} has {len(value)} entries; at most {MAX_CALLBACK_PREFIXES}")
    return tuple(check_prefix(text, f"{where}[{index}]") for index, text in enumerate(value))


def check_prefix(text: str, at: str = "jobs.callbackUrlPrefixes[]") -> str:
    """``text`` if it is a callback URL prefix, else a ``PolicyError`` saying why, at ``at``."""
    shown = f"{at} {text[:80]!r}"
    if len(text) > MAX_CALLBACK_PREFIX:
        raise PolicyError(f"{at} has {len(text)} characters; at most {MAX_CALLBACK_PREFIX}")
    if not _TEXT.fullmatch(text):
        raise PolicyError(
            f"{shown} must be printable ASCII without backslashes or spaces (write an"
            " international host name in its xn-- form)"
        )
    if not _PREFIX.fullmatch(text):
        raise PolicyError(
            f"{shown} must be an absolute http:// or https:// URL (lower case scheme) with no"
            " user@, ?query or #fragment"
        )
    if not _AUTHORITY.match(text):
        raise PolicyError(
            f"{shown} must name a host (letters, digits, '.', '-', '_', or an [IPv6] address)"
            " and at most a port from 1 to 65535"
        )
    if _REFUSED_PATH.search(text):
        raise PolicyError(
            f"{shown}: its path must have no '.' or '..' segment, no %2F or %5C, and a '%'"
            " only before two hex digits"
        )
    return text
