"""Which ``Host`` a browser may name (pure): the defence against DNS rebinding.

A page of http://evil.example:8080 whose name is rebound to 127.0.0.1 (where ``kubectl
port-forward`` or ``make run`` listens) is same-origin with the service, so it may POST and
read answers: only the ``Host`` it sends, its own name, tells it apart. Requests that come
from a browser must name an allowed host (``TEMPAUDIO_CONSOLE_HOSTS``); other clients (SDKs,
curl, probes, in-cluster callers by any Service name or IP) send no browser's headers and
are never asked.

A browser is known by any of: ``Sec-Fetch-Site`` / ``Sec-Fetch-Mode`` (every current browser,
but only to secure origins: https, localhost, 127.0.0.1, so never to a rebound
http://evil.example); ``Origin`` (every browser's non-GET request, same-origin ones too, on
any origin); a ``User-Agent`` that begins ``Mozilla/`` (every browser's, on any request;
clients' own are ``curl/``, ``python-httpx/``, ``kube-probe/``, ``OpenAI/Python``...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "[::1]")
ANY = "*"
BROWSER_HEADERS = ("sec-fetch-site", "sec-fetch-mode", "origin")
BROWSER_AGENT = "mozilla/"
# A host name or IPv4 address, optionally "*." first; or a bracketed IPv6 address.
_PATTERN = re.compile(r"(\*\.)?[a-z0-9_-]+(\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\]")


def parse_hosts(text: str) -> tuple[str, ...]:
    """``localhost, *.example.com, [::1]`` as patterns (lower case, no port); ``*``: any."""
    hosts = tuple(dict.fromkeys(part.strip().lower().rstrip(".") for part in text.split(",")))
    hosts = tuple(host for host in hosts if host)
    if not hosts:
        raise ValueError("names no host (* allows any)")
    for host in hosts:
        if host != ANY and not _PATTERN.fullmatch(host):
            raise ValueError(
                f"{host[:64]!r} is not a host name, an address or *.domain (no scheme, no port;"
                " IPv6 in brackets)"
            )
    return hosts


def host_name(host_header: str) -> str:
    """The Host header's name, lower case, without its port or a final dot."""
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8080
        return host.partition("]")[0] + "]"
    return host.partition(":")[0].rstrip(".")


def is_allowed(host_header: str | None, allowed: Iterable[str]) -> bool:
    """Whether a Host (None: the request named none) matches one of the patterns."""
    patterns = tuple(allowed)
    if ANY in patterns:
        return True
    if not host_header:
        return False
    name = host_name(host_header)
    return any(
        name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:]))
        for pattern in patterns
    )


def is_browser(headers: Mapping[str, str]) -> bool:
    """Whether these (lower-case) request headers are a browser's."""
    if any(headers.get(name) for name in BROWSER_HEADERS):
        return True
    return headers.get("user-agent", "").lower().startswith(BROWSER_AGENT)
