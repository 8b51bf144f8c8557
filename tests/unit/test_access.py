"""Who may use a policy: spec parsing, the authorization rule, quota arithmetic, the
identity cache (table-driven, pure)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tempaudio_api.access import Access, Caller, Quotas, parse_access
from tempaudio_api.errors import PolicyError
from tempaudio_api.policy import Policy
from tempaudio_service.access.identity import ExpiringCache, bearer_token, token_expiry
from tempaudio_service.access.quotas import counter_name, minute_of, window

NOTIFIER = Caller("team-a", "notifier")
OTHER_SA = Caller("team-a", "batch")
OTHER_NS = Caller("team-b", "notifier")
LABELLED = {"tempaudio.dev/client": "true", "tier": "gold"}


@pytest.mark.parametrize(
    ("clients", "caller", "labels", "allowed"),
    [
        (None, NOTIFIER, None, True),  # no clients: any caller
        (None, None, None, True),  # no clients, no authentication
        ([], NOTIFIER, None, False),  # empty: nobody
        ([{"namespace": "team-a"}], NOTIFIER, None, True),
        ([{"namespace": "team-a"}], OTHER_SA, None, True),
        ([{"namespace": "team-a"}], OTHER_NS, None, False),
        ([{"namespace": "team-a", "serviceAccount": "notifier"}], NOTIFIER, None, True),
        ([{"namespace": "team-a", "serviceAccount": "notifier"}], OTHER_SA, None, False),
        ([{"namespace": "team-a"}], None, None, False),  # names clients, no authentication
        (
            [{"namespaceSelector": {"matchLabels": {"tempaudio.dev/client": "true"}}}],
            OTHER_NS,
            LABELLED,
            True,
        ),
        (
            [{"namespaceSelector": {"matchLabels": {"tempaudio.dev/client": "true"}}}],
            OTHER_NS,
            {},
            False,
        ),
        (
            [
                {
                    "namespaceSelector": {
                        "matchExpressions": [
                            {"key": "tier", "operator": "In", "values": ["gold", "silver"]}
                        ]
                    },
                    "serviceAccount": "notifier",
                }
            ],
            OTHER_NS,
            LABELLED,
            True,
        ),
        (
            [
                {
                    "namespaceSelector": {
                        "matchExpressions": [
                            {"key": "tier", "operator": "NotIn", "values": ["gold"]}
                        ]
                    }
                }
            ],
            OTHER_NS,
            LABELLED,
            False,
        ),
        (
            [{"namespaceSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}}],
            OTHER_NS,
            LABELLED,
            True,
        ),
        (
            [
                {
                    "namespaceSelector": {
                        "matchExpressions": [{"key": "frozen", "operator": "DoesNotExist"}]
                    }
                }
            ],
            OTHER_NS,
            LABELLED,
            True,
        ),
        # A selector needs the labels: without them (not read) it admits nobody.
        (
            [{"namespaceSelector": {"matchExpressions": [{"key": "tier", "operator": "Exists"}]}}],
            OTHER_NS,
            None,
            False,
        ),
        ([{"namespace": "team-b"}, {"namespace": "team-a"}], NOTIFIER, None, True),
    ],
)
def test_clients_rule(
    clients: list[dict[str, Any]] | None,
    caller: Caller | None,
    labels: dict[str, str] | None,
    allowed: bool,
) -> None:
    spec = {} if clients is None else {"clients": clients}
    assert parse_access(spec).admits_client(caller, labels) is allowed


@pytest.mark.parametrize(
    ("readers", "caller", "owner", "allowed"),
    [
        ([], NOTIFIER, "team-a/notifier", True),  # its own audio
        ([], OTHER_SA, "team-a/notifier", False),
        ([{"namespace": "team-a"}], OTHER_SA, "team-a/notifier", True),
        ([{"namespace": "team-a"}], OTHER_NS, "team-a/notifier", False),
        ([], NOTIFIER, None, False),  # made without authentication: readers only
        ([{"namespace": "team-a"}], NOTIFIER, None, True),
        ([], None, None, True),  # no authentication, unrecorded maker
        ([], None, "team-a/notifier", False),  # authentication turned off since
    ],
)
def test_readers_rule(
    readers: list[dict[str, Any]], caller: Caller | None, owner: str | None, allowed: bool
) -> None:
    assert parse_access({"readers": readers}).admits_reader(caller, owner, None) is allowed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"clients": "team-a"}, "must be a list"),
        ({"clients": [{}]}, "exactly one of namespace and namespaceSelector"),
        (
            {"clients": [{"namespace": "a", "namespaceSelector": {"matchLabels": {"a": "b"}}}]},
            "exactly one",
        ),
        ({"clients": [{"namespace": "Team_A"}]}, "not a namespace name"),
        ({"clients": [{"namespace": "a", "serviceAccount": "No!"}]}, "not a ServiceAccount"),
        ({"clients": [{"namespace": "a", "team": "x"}]}, "unknown fields"),
        ({"clients": [{"namespaceSelector": {}}]}, "is empty"),
        ({"readers": [{"namespaceSelector": {"matchLabels": {"bad key!": "x"}}}]}, "label key"),
        ({"readers": [{"namespaceSelector": {"matchLabels": {"a": "bad value!"}}}]}, "label value"),
        (
            {
                "clients": [
                    {"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Is"}]}}
                ]
            },
            "must be one of",
        ),
        (
            {
                "clients": [
                    {"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}
                ]
            },
            "needs at least one value",
        ),
        (
            {
                "clients": [
                    {
                        "namespaceSelector": {
                            "matchExpressions": [
                                {"key": "a", "operator": "Exists", "values": ["x"]}
                            ]
                        }
                    }
                ]
            },
            "takes no values",
        ),
        ({"quotas": {"requestsPerMinute": 0}}, "at least 1"),
        ({"quotas": {"audioSecondsPerHour": "lots"}}, "whole number"),
        ({"quotas": {"requestsPerMinute": True}}, "whole number"),
        ({"clients": [{"namespace": "a"}] * 65}, "at most 64"),
    ],
)
def test_invalid_access_is_a_policy_error(spec: dict[str, Any], message: str) -> None:
    full = {"storage": {"bucket": "my-audio"}, "dynamodb": {"table": "audio"}, **spec}
    with pytest.raises(PolicyError, match=message):
        Policy.from_spec(full, name="p", namespace="ns")


def test_policy_carries_its_access() -> None:
    spec = {
        "storage": {"bucket": "my-audio"},
        "dynamodb": {"table": "audio"},
        "clients": [{"namespace": "team-a", "serviceAccount": "notifier"}],
        "quotas": {"requestsPerMinute": 30, "audioSecondsPerHour": 600},
    }
    access = Policy.from_spec(spec, name="p", namespace="ns").access
    assert access.quotas == Quotas(requests_per_minute=30, audio_seconds_per_hour=600)
    assert access.admits_client(NOTIFIER, None)
    assert not access.needs_labels
    assert Policy.from_spec({**spec, "clients": None}, name="p", namespace="ns").access == Access(
        quotas=Quotas(30, 600)
    )


@pytest.mark.parametrize(
    ("username", "caller"),
    [
        ("system:serviceaccount:team-a:notifier", NOTIFIER),
        ("system:serviceaccount:team-a:", None),
        ("system:node:worker-1", None),
        ("alice", None),
        ("system:serviceaccount:a:b:c", None),
    ],
)
def test_caller_from_username(username: str, caller: Caller | None) -> None:
    assert Caller.from_username(username) == caller


# --- quotas: fixed windows (the counting itself is tests/service/test_quotas.py's) -----


@pytest.mark.parametrize(
    ("now", "length", "expected"),
    [(0, 60, (0, 60)), (59.9, 60, (0, 60)), (60, 60, (1, 120)), (3599, 3600, (0, 3600)),
     (1_781_524_800.5, 60, (29_692_080, 1_781_524_860))],
)  # fmt: skip
def test_a_window_is_aligned_to_its_length(
    now: float, length: int, expected: tuple[int, int]
) -> None:
    assert window(now, length) == expected


def test_a_counter_item_is_per_policy_caller_and_hour_with_a_number_a_minute() -> None:
    assert counter_name(("ns/p", "team-a/notifier"), 7) == "ns/p#team-a/notifier#7"
    assert [minute_of(t) for t in (0, 59.9, 60, 3599, 3600)] == ["m0", "m0", "m1", "m59", "m0"]


# --- identity -------------------------------------------------------------------------
def jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize(
    ("token", "expiry"),
    [
        (jwt({"exp": 1700000000}), 1700000000.0),
        (jwt({"sub": "x"}), None),
        (jwt({"exp": "soon"}), None),
        (jwt({"exp": True}), None),
        ("not-a-jwt", None),
        ("a.!!!.c", None),
    ],
)
def test_token_expiry(token: str, expiry: float | None) -> None:
    assert token_expiry(token) == expiry


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        (None, None),
    ],
)
def test_bearer_token(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_expiring_cache_ends_and_is_bounded() -> None:
    cache: ExpiringCache[str] = ExpiringCache(entries=2)
    cache.put("a", "A", until=10)
    assert cache.get("a", 9.9) is not None
    assert cache.get("a", 10) is None
    cache.put("a", "A", 10)
    cache.put("b", "B", 10)
    cache.put("c", "C", 10)
    assert cache.get("a", 0) is None  # the least recently used went
    assert cache.get("c", 0) is not None
