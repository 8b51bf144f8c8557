"""A policy's spec.jobs: the parser, the CRD's copy of its rules, and the callback rule that
compares a job's callback_url with the policy's prefixes on the parsed URL (table-driven,
pure)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tempaudio_api import jobs
from tempaudio_api.errors import PolicyError
from tempaudio_api.jobs import (
    MAX_JOB_CHARACTERS,
    JobsSpec,
    callback_allowed,
    check_prefix,
    parse_jobs,
)
from tempaudio_api.policy import Policy
from tempaudio_api.schema import check_fields, spec_schema

BASE: dict[str, Any] = {"storage": {"bucket": "my-audio"}, "dynamodb": {"table": "audio"}}


def policy(**spec: Any) -> Policy:
    return Policy.from_spec({**BASE, **spec}, name="p", namespace="ns")


# --- the parser ---------------------------------------------------------------------------


def test_absent_or_empty_jobs_read_as_the_crds_defaults() -> None:
    assert policy().jobs == JobsSpec(True, MAX_JOB_CHARACTERS, ())
    assert policy(jobs={}).jobs == JobsSpec()
    assert MAX_JOB_CHARACTERS == 200_000


def test_a_policy_carries_its_jobs() -> None:
    prefixes = ["https://hooks.example.com/tempaudio/", "http://notifier.team-a.svc:8080"]
    spec = {"enabled": False, "maxCharacters": 5000, "callbackUrlPrefixes": prefixes}
    assert policy(jobs=spec).jobs == JobsSpec(False, 5000, tuple(prefixes))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("yes", r"jobs must be an object"),
        ({"maxCharacter": 5}, r"jobs has unknown fields \['maxCharacter'\]"),
        ({"enabled": "false"}, r"jobs.enabled 'false' must be true or false"),
        ({"maxCharacters": 0}, r"jobs.maxCharacters '0' must be a whole number from 1 to 200000"),
        ({"maxCharacters": 200_001}, r"jobs.maxCharacters '200001'"),
        ({"maxCharacters": True}, r"jobs.maxCharacters 'True'"),
        ({"maxCharacters": "100"}, r"jobs.maxCharacters '100'"),
        ({"maxCharacters": 1.5}, r"jobs.maxCharacters '1.5'"),
        ({"callbackUrlPrefixes": "https://ok.example/"}, r"must be a list of URL prefixes"),
        ({"callbackUrlPrefixes": [{"url": "https://ok.example/"}]}, r"must be a list of URL"),
        ({"callbackUrlPrefixes": ["https://ok.example/"] * 17}, r"17 entries; at most 16"),
    ],
)
def test_invalid_jobs_say_why(spec: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        policy(jobs=spec)


# (prefix, the reason's words) for prefixes both the CRD and the parser refuse.
REFUSED_PREFIXES = [
    ("https://ok.example@evil.example/", "no user@"),
    ("https://user:secret@ok.example/hooks/", "no user@"),
    ("https://ok.example/hooks?token=1", r"\?query"),
    ("https://ok.example/hooks#part", "#fragment"),
    ("ftp://ok.example/", "http:// or https://"),
    ("HTTPS://ok.example/", "lower case scheme"),
    ("//ok.example/hooks/", "absolute"),
    ("/hooks/", "absolute"),
    ("https://", "absolute"),
    ("https:///hooks", "absolute"),
    ("https://:8443/hooks", "must name a host"),
    ("https://ok.example:https/", "a port from 1 to 65535"),
    ("https://ok.example:/", "a port from 1 to 65535"),
    ("https://ok.example:0/", "a port from 1 to 65535"),
    ("https://ok.example:65536/", "a port from 1 to 65535"),
    ("https://ok.example:08443/", "a port from 1 to 65535"),
    ("https://ok.example/a b", "printable ASCII"),
    ("https://ok.example/hooks/\n", "printable ASCII"),
    ("https://ok.example\\@evil.example/", "backslashes"),
    ("https://bücher.example/", "xn-- form"),
    ("https://ok.example/hooks/../admin/", r"'\.\.' segment"),
    ("https://ok.example/hooks/./", r"'\.' or '\.\.' segment"),
    ("https://ok.example/hooks/%2E%2e/admin/", r"'\.\.' segment"),
    ("https://ok.example/hooks%2Fadmin/", "%2F"),
    ("https://ok.example/hooks%5cadmin/", "%5C"),
    ("https://ok.example/hooks%zz/", "two hex digits"),
    ("https://ok.example/hooks%2", "two hex digits"),
    ("https://ok.example/" + "a" * 494, "513 characters; at most 512"),
]
ACCEPTED_PREFIXES = [
    "https://ok.example",
    "https://ok.example/",
    "https://ok.example/hooks",
    "https://ok.example/hooks/tempaudio/",
    "http://notifier.team-a.svc.cluster.local:8080/jobs/",
    "http://notifier_1.team-a.svc:80",
    "https://10.0.0.7:8443/cb",
    "https://ok.example:1/",
    "https://ok.example:65535/",
    "https://ok.example:9999/",
    "https://[fd00::7]:8443/cb/",
    "https://ok.example/a%20b/~user/",
    "https://ok.example/" + "a" * 493,
]


@pytest.mark.parametrize(("prefix", "message"), REFUSED_PREFIXES)
def test_a_bad_callback_prefix_is_refused_naming_its_field(prefix: str, message: str) -> None:
    spec = {"callbackUrlPrefixes": ["https://fine.example/", prefix]}
    with pytest.raises(PolicyError, match=r"jobs\.callbackUrlPrefixes\[1\].*" + message):
        policy(jobs=spec)


@pytest.mark.parametrize("prefix", ACCEPTED_PREFIXES)
def test_good_callback_prefixes_are_kept_as_written(prefix: str) -> None:
    assert check_prefix(prefix) == prefix
    assert policy(jobs={"callbackUrlPrefixes": [prefix]}).jobs.callback_url_prefixes == (prefix,)


def test_a_policy_file_with_an_unknown_jobs_field_names_it() -> None:
    with pytest.raises(PolicyError, match=r"unknown field\(s\) spec\.jobs\.callbackUrls"):
        check_fields({**BASE, "jobs": {"callbackUrls": []}})


# --- the CRD: the same rules ----------------------------------------------------------------


def _jobs_schema() -> dict[str, Any]:
    schema: dict[str, Any] = spec_schema()["properties"]["jobs"]
    return schema


def test_the_crd_declares_the_parsers_bounds_and_defaults() -> None:
    declared = _jobs_schema()["properties"]
    assert declared["enabled"]["default"] is True
    assert (declared["maxCharacters"]["minimum"], declared["maxCharacters"]["maximum"]) == (
        1,
        MAX_JOB_CHARACTERS,
    )
    assert declared["maxCharacters"]["default"] == MAX_JOB_CHARACTERS
    prefixes = declared["callbackUrlPrefixes"]
    assert prefixes["maxItems"] == jobs.MAX_CALLBACK_PREFIXES == 16
    assert prefixes["items"]["maxLength"] == jobs.MAX_CALLBACK_PREFIX == 512
    assert prefixes["items"]["pattern"] == r"^https?://[^/@?#\s]+(/[^?#\s]*)?$"
    assert set(declared) == set(jobs.FIELDS)


def _cel_pattern(rule: str) -> tuple[bool, str]:
    """``(negated, pattern)`` of a rule ``[!]self.matches('<pattern>')``, the pattern read
    back from its CEL string literal."""
    found = re.fullmatch(r"(!?)self\.matches\('(.*)'\)", rule)
    assert found is not None, rule
    return found.group(1) == "!", re.sub(r"\\(.)", r"\1", found.group(2))


def re2_search(pattern: str, text: str) -> bool:
    """RE2's search as the API server runs it, for these patterns: like ``re.search``, but
    ``$`` is the end of the text only (Python's also matches before a final newline)."""
    return re.search(pattern.replace("$", r"\Z"), text) is not None


def crd_accepts(prefix: str) -> bool:
    """What the API server decides: maxLength, the pattern and each CEL rule (``matches``
    finds a match anywhere)."""
    items = _jobs_schema()["properties"]["callbackUrlPrefixes"]["items"]
    if len(prefix) > items["maxLength"] or not re2_search(items["pattern"], prefix):
        return False
    for rule in items["x-kubernetes-validations"]:
        negated, pattern = _cel_pattern(rule["rule"])
        if re2_search(pattern, prefix) == negated:
            return False
    return True


def test_the_crds_rules_are_the_parsers_patterns() -> None:
    items = _jobs_schema()["properties"]["callbackUrlPrefixes"]["items"]
    assert [_cel_pattern(rule["rule"]) for rule in items["x-kubernetes-validations"]] == [
        (False, jobs.TEXT_PATTERN),
        (False, jobs.AUTHORITY_PATTERN),
        (True, jobs.REFUSED_PATH_PATTERN),
    ]


@pytest.mark.parametrize(
    ("prefix", "accepted"),
    [*((p, False) for p, _ in REFUSED_PREFIXES), *((p, True) for p in ACCEPTED_PREFIXES)],
)
def test_the_crd_and_the_parser_refuse_the_same_prefixes(prefix: str, accepted: bool) -> None:
    assert crd_accepts(prefix) is accepted
    try:
        check_prefix(prefix)
    except PolicyError:
        assert not accepted
    else:
        assert accepted


# --- callback_allowed ------------------------------------------------------------------------

PREFIXES = (
    "https://ok.example/hooks/",
    "https://ok.example/cb",
    "http://notifier.team-a.svc:8080",
    "https://[fd00::7]:8443/v1/",
)


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://ok.example/hooks/x", True),
        ("https://ok.example/hooks/", True),
        ("https://ok.example/hooks/x?job=1&t=%2F", True),  # a query is the caller's
        # Host and scheme in any case, the default port written out.
        ("https://OK.example:443/hooks/x", True),
        ("HTTPS://Ok.Example/hooks/x", True),
        # A text prefix match, another host.
        ("https://ok.example@evil.example/hooks/x", False),
        ("https://ok.example.evil.example/hooks/x", False),
        ("https://ok.example:443@evil.example/hooks/x", False),
        ("https://user:pw@ok.example/hooks/x", False),  # userinfo, even for the right host
        ("https://evil.example/hooks/x", False),
        ("https://ok.example:8443/hooks/x", False),
        ("http://ok.example/hooks/x", False),
        ("ftp://ok.example/hooks/x", False),
        # A path prefix ending in '/': the url's path must hold it.
        ("https://ok.example/hooks", False),
        ("https://ok.example/HOOKS/x", False),
        # Not ending in '/': a whole segment.
        ("https://ok.example/cb", True),
        ("https://ok.example/cb/done", True),
        ("https://ok.example/cb?job=1", True),
        ("https://ok.example/cbevil", False),
        ("https://ok.example/cb.evil", False),
        # Leaving the prefix's path, spelt any way.
        ("https://ok.example/hooks/../admin", False),
        ("https://ok.example/hooks/%2e%2E/admin", False),
        ("https://ok.example/hooks/..%2Fadmin", False),
        ("https://ok.example/hooks/x/.", False),
        # Dot segments with parameters, which Tomcat and Jetty resolve as dot segments.
        ("https://ok.example/hooks/..;/admin", False),
        ("https://ok.example/hooks/..;jsessionid=1/admin", False),
        ("https://ok.example/hooks/.;x/y", False),
        ("https://ok.example/hooks/%2e%2e;/admin", False),
        ("https://ok.example/hooks/x/..;", False),
        ("https://ok.example/hooks/a;b/..c;d", True),  # parameters, but no dot segment
        ("https://ok.example/hooks\\..\\admin", False),
        ("https://ok.example/hooks/%zz", False),
        # What parsers read differently: never allowed.
        ("https://ok.example/hooks/x#frag", False),
        ("https://ok.example/hooks/x#", False),
        (" https://ok.example/hooks/x", False),
        ("https://ok.example/hooks/x\n", False),
        ("https://ok.exa\tmple/hooks/x", False),
        ("https://ok.example\\@evil.example/hooks/x", False),
        ("https://ök.example/hooks/x", False),
        ("https://ok.example:99999/hooks/x", False),
        ("https://ok.example:0/hooks/x", False),
        ("https://ok.example:+443/hooks/x", False),
        ("https://ok.example:/hooks/x", False),
        ("https:///hooks/x", False),
        ("/hooks/x", False),
        ("", False),
        # A prefix without a path: any path on that host and port.
        ("http://notifier.team-a.svc:8080", True),
        ("http://notifier.team-a.svc:8080/anything/at/all", True),
        ("http://NOTIFIER.team-a.svc:8080/x", True),
        ("http://notifier.team-a.svc/x", False),  # port 80, not 8080
        ("https://notifier.team-a.svc:8080/x", False),
        ("https://[fd00::7]:8443/v1/done", True),
        ("https://[FD00::7]:8443/v1/done", True),
        ("https://[fd00::8]:8443/v1/done", False),
    ],
)
def test_callback_allowed(url: str, allowed: bool) -> None:
    assert callback_allowed(PREFIXES, url) is allowed
    assert JobsSpec(callback_url_prefixes=PREFIXES).allows_callback(url) is allowed


@pytest.mark.parametrize(
    ("prefix", "url", "allowed"),
    [
        ("https://ok.example/hooks", "https://ok.example/hooksevil", False),
        ("https://ok.example/hooks", "https://ok.example/hooks", True),
        ("https://ok.example/hooks", "https://ok.example/hooks/x", True),
        ("https://ok.example", "https://ok.example", True),
        ("https://ok.example", "https://ok.example/x", True),
        ("https://ok.example/", "https://ok.example", True),  # both ask for /
        ("http://ok.example:80/", "http://ok.example/x", True),
        ("https://ok.example:443", "https://ok.example/x", True),
        ("http://ok.example:443/", "http://ok.example/x", False),
        # A prefix the parser refuses admits nothing.
        ("https://ok.example@evil.example/", "https://evil.example/", False),
        ("https://ok.example/a/../", "https://ok.example/a/../b", False),
    ],
)
def test_callback_allowed_by_one_prefix(prefix: str, url: str, allowed: bool) -> None:
    assert callback_allowed([prefix], url) is allowed


def test_no_prefixes_no_callbacks() -> None:
    assert not callback_allowed((), "https://ok.example/hooks/x")
    assert not JobsSpec().allows_callback("https://ok.example/hooks/x")
    assert not parse_jobs({"callbackUrlPrefixes": []}).allows_callback("https://ok.example/")
