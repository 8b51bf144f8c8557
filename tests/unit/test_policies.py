"""Which policy a request gets, and with which retention (tempaudio_service.policy.policies)."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tempaudio_api.errors import PolicyError
from tempaudio_service.core.errors import PolicyNotReady, PolicyStale, UnknownPolicy
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.policy.policies import (
    PolicyBook,
    Refusal,
    ServedPolicy,
    Storage,
    admitted,
    declared,
)
from tempaudio_service.policy.policy_sources import builtin_document, shorthand_document

REPO = Path(__file__).resolve().parents[2]


def document(
    name: str = "audio",
    *,
    generation: int = 1,
    retention: str = "24h",
    status: dict[str, Any] | None = None,
    **meta: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "tempaudio.dev/v1alpha1",
        "kind": "TempAudioPolicy",
        "metadata": {"name": name, "namespace": "team", "generation": generation, **meta},
        "spec": {
            "retention": retention,
            "storage": {"bucket": "team-audio", "prefix": "vm/", "region": "eu-west-1"},
            "metadata": {"table": "team-audio", "ttlAttribute": "expires"},
        },
        **({"status": status} if status is not None else {}),
    }


def accepted(generation: int, recorded: str, **extra: Any) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "acceptedGeneration": generation,
        "retentionHistory": [{"retention": recorded, "since": "2026-06-15T12:00:00Z"}],
        **extra,
    }


def test_a_declared_policy_is_taken_as_written() -> None:
    served = declared(document())
    assert isinstance(served, ServedPolicy)
    assert served.key == "team/audio"
    assert served.retention == timedelta(hours=24)
    assert served.storage == Storage("team-audio", "vm/", "eu-west-1", "team-audio")
    assert served.ttl_attribute == "expires"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"kind": "ConfigMap"}, "is not TempAudioPolicy"),
        ({"metadata": {}}, "no metadata.name"),
        ({"spec": {"retention": "24h", "storage": {"bucket": "x"}, "metadata": {"table": "tbl"}}},
         "not a valid S3 bucket name"),
        ({"spec": {"retention": "forever", "storage": {"bucket": "abc"},
                   "metadata": {"table": "tbl"}}}, "is not a duration"),
    ],
)  # fmt: skip
def test_a_declaration_the_operator_would_refuse_is_refused_alike(
    change: dict[str, Any], says: str
) -> None:
    with pytest.raises(PolicyError, match=says):
        declared({**document(), **change})


def test_the_operator_gates_kubernetes_policies() -> None:
    # Served at the accepted generation, with the retention the operator recorded.
    served = admitted(document(status=accepted(1, "1d")))
    assert isinstance(served, ServedPolicy)
    assert served.retention == timedelta(days=1)
    assert served.generation == 1

    # Not yet looked at by the operator, and never served: refused as pending.
    pending = admitted(document())
    assert isinstance(pending, Refusal)
    assert pending.reason == "Pending"


def test_an_edit_waiting_for_the_operator_keeps_the_accepted_generation() -> None:
    before = admitted(document(status=accepted(1, "24h")))
    # The spec now says 1h (generation 2); the operator has not recorded it yet.
    edited = document(generation=2, retention="1h", status=accepted(1, "24h"))
    assert admitted(edited, before) == before
    # Once recorded, the new retention is served.
    recorded = document(generation=2, retention="1h", status=accepted(2, "1h"))
    now = admitted(recorded, before)
    assert isinstance(now, ServedPolicy)
    assert now.retention == timedelta(hours=1)


def test_the_service_never_runs_ahead_of_the_operators_record() -> None:
    # The spec grew to 7d, but the operator recorded 24h last: the cleanup enforces
    # 24h, so the service promises no more than that.
    status = accepted(2, "24h")
    served = admitted(document(generation=2, retention="7d", status=status))
    assert isinstance(served, ServedPolicy)
    assert served.retention == timedelta(hours=24)


@pytest.mark.parametrize("reason", ["InvalidSpec", "NotAllowed", "NameConflict"])
def test_a_generation_the_operator_refused_is_not_served(reason: str) -> None:
    before = admitted(document(status=accepted(1, "24h")))
    status = {
        **accepted(1, "24h"),
        "observedGeneration": 2,
        "conditions": [{"type": "Ready", "status": "False", "reason": reason, "message": "no"}],
    }
    refused = admitted(document(generation=2, status=status), before)
    assert refused == Refusal("team", "audio", reason, "no")


def test_a_deleted_policy_is_refused_at_once() -> None:
    deleting = document(status=accepted(1, "24h"), deletionTimestamp="2026-06-15T12:00:00Z")
    refused = admitted(deleting, admitted(document(status=accepted(1, "24h"))))
    assert isinstance(refused, Refusal)
    assert refused.reason == "Deleting"


def test_an_unusable_history_is_not_a_retention() -> None:
    for history in ([], [{"retention": "soon"}], [{"retention": "1h", "ended": "x"}], "1h"):
        status = {**accepted(1, "1h"), "retentionHistory": history}
        assert isinstance(admitted(document(status=status)), Refusal)


def book(*entries: ServedPolicy | Refusal, **fields: Any) -> PolicyBook:
    return PolicyBook.of(entries, **fields)


def served(name: str, namespace: str = "team") -> ServedPolicy:
    return ServedPolicy(namespace, name, timedelta(hours=1), Storage("b-" + name, "p/", "r", "t"))


def test_requests_find_their_policy_by_name_or_namespace_and_name() -> None:
    policies = book(served("audio"), served("voicemail"), served("audio", "other"),
                    default="team/audio")  # fmt: skip
    assert policies.resolve(None, 0).key == "team/audio"
    assert policies.resolve("voicemail", 0).key == "team/voicemail"
    assert policies.resolve("other/audio", 0).key == "other/audio"
    with pytest.raises(UnknownPolicy, match="ambiguous"):
        policies.resolve("audio", 0)
    with pytest.raises(UnknownPolicy, match="unknown policy 'nope'"):
        policies.resolve("nope", 0)
    with pytest.raises(UnknownPolicy, match="no default policy"):
        book(served("audio")).resolve(None, 0)


def test_a_refused_policy_answers_503_with_its_reason() -> None:
    policies = book(Refusal("team", "audio", "NotAllowed", "bucket not allowed"), default="audio")
    with pytest.raises(PolicyNotReady, match=r"NotAllowed\): bucket not allowed"):
        policies.resolve(None, 0)


def test_a_stale_view_vouches_for_no_policy() -> None:
    policies = book(served("audio"), default="audio", synced_at=100.0, max_staleness_seconds=300)
    assert policies.resolve(None, 400.0).name == "audio"
    with pytest.raises(PolicyStale, match="over 300 s"):
        policies.resolve(None, 400.5)
    never = book(served("audio"), default="audio", synced_at=-math.inf)
    with pytest.raises(PolicyStale, match="not listed its policies yet"):
        never.resolve(None, 0)
    # A static declaration never goes stale.
    assert book(served("audio"), default="audio").resolve(None, 1e12).name == "audio"


def test_the_listing_says_what_is_served_and_why_not() -> None:
    policies = book(served("audio"), Refusal("team", "vm", "Pending", "wait"), default="audio")
    listing = policies.listing(0)
    assert listing["default"] == "team/audio"
    rows = {row["name"]: row for row in listing["policies"]}
    assert rows["audio"]["ready"] is True
    assert rows["audio"]["retention"] == "1h"
    assert rows["audio"]["default"] is True
    assert (rows["audio"]["repeat_cache_scope"], rows["audio"]["key_schema"]) == (
        "Caller",
        "DateAudioId",
    )
    assert rows["vm"] == {"name": "vm", "namespace": "team", "ready": False, "reason": "Pending",
                          "message": "wait", "default": False}  # fmt: skip


def test_the_builtin_policy_is_the_settings_defaults() -> None:
    """default-policy.yaml and ServiceSettings' shorthand defaults are one declaration."""
    builtin = declared(builtin_document())
    assert isinstance(builtin, ServedPolicy)
    assert declared(shorthand_document(ServiceSettings())) == builtin


def test_the_example_policy_is_one_the_service_serves() -> None:
    example = yaml.safe_load((REPO / "examples" / "policy.yaml").read_text())
    assert isinstance(declared(example), ServedPolicy)
