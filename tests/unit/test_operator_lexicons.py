"""The operator's part of lexicons, called directly: a lexicon's status, a policy's
LexiconsReady condition, and the policies a lexicon's change reconciles again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import kopf
import pytest

from tempaudio_api.policy import Policy
from tempaudio_operator import lexicon_handlers
from tempaudio_operator.lexicons import lexicon_status, naming, reconcile_lexicons
from tempaudio_operator.outcome import Conditions

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
BASE: dict[str, Any] = {"storage": {"bucket": "my-audio"}, "dynamodb": {"table": "audio"}}


def lexicon(generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "ns", "name": "finance", "generation": generation},
        "spec": spec or {"entries": [{"grapheme": "EBITDA", "alias": "earnings"}]},
    }


def test_a_valid_lexicon_is_accepted_with_its_count_and_version() -> None:
    status, error = lexicon_status(lexicon(3), NOW)
    assert error is None
    assert (status["observedGeneration"], status["acceptedGeneration"]) == (3, 3)
    assert status["entries"] == 1
    assert len(status["version"]) == 16
    reasons = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert reasons == {"Valid": ("True", "Accepted"), "Ready": ("True", "Accepted")}
    # Again: the same status (the transition time stays).
    again, _ = lexicon_status({**lexicon(3), "status": status}, NOW.replace(hour=13))
    assert again == status


def test_an_invalid_lexicon_says_why_and_is_not_accepted() -> None:
    status, error = lexicon_status(lexicon(2, entries=[{"grapheme": "x"}]), NOW)
    assert error is not None
    assert "acceptedGeneration" not in status
    valid = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert (valid["status"], valid["reason"]) == ("False", "InvalidSpec")
    assert "exactly one of alias and phoneme" in valid["message"]


@pytest.mark.parametrize(
    ("entries", "says"),
    [
        ([{"grapheme": "W3C", "alias": "a\ud800b"}], "alias holds a surrogate, U+D800"),
        ([{"grapheme": "W3C", "alias": "a\0b"}], "alias holds a control character, U+0000"),
        ([{"grapheme": "W3\x07C", "alias": "x"}], "grapheme holds a control character, U+0007"),
    ],
)
def test_a_lexicon_with_text_espeak_cannot_say_is_invalid(
    entries: list[dict[str, str]], says: str
) -> None:
    # What the API server cannot refuse (an older CRD, a PLS document's &#x85;) the
    # operator does: never accepted, so never served.
    status, error = lexicon_status(lexicon(4, entries=entries), NOW)
    assert error is not None
    assert "acceptedGeneration" not in status
    valid = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert (valid["status"], valid["reason"]) == ("False", "InvalidSpec")
    assert says in valid["message"]


class Custom:
    """The few CustomObjectsApi calls lexicons make, on a dict of lexicons."""

    def __init__(self, lexicons: dict[str, dict[str, Any]], policies: list[Any]) -> None:
        self.lexicons, self.policies = lexicons, policies

    def get_namespaced_custom_object(self, *args: str) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        if args[-1] not in self.lexicons:
            raise ApiException(status=404)
        return self.lexicons[args[-1]]

    def list_namespaced_custom_object(self, *_: str) -> dict[str, Any]:
        return {"items": self.policies}


def policy(lexicons: list[str]) -> Policy:
    return Policy.from_spec({**BASE, "lexicons": lexicons}, name="audio", namespace="ns")


@pytest.mark.parametrize(
    ("present", "reason", "says"),
    [
        ({}, "LexiconMissing", "lexicon finance does not exist in namespace ns"),
        ({"finance": lexicon(entries=[{"grapheme": "x"}])}, "LexiconInvalid",
         "lexicon finance is invalid: entries[0]"),
        ({"finance": lexicon()}, "Resolved", "lexicons finance exist and are valid"),
    ],
)  # fmt: skip
def test_lexicons_ready_says_which_lexicon_and_why(
    present: dict[str, Any], reason: str, says: str
) -> None:
    conditions = Conditions([], 1, NOW)
    reconcile_lexicons(policy(["finance"]), Custom(present, []), conditions)  # type: ignore[arg-type]
    (set_,) = conditions.items
    assert (set_["type"], set_["reason"]) == ("LexiconsReady", reason)
    assert says in set_["message"]


def test_a_policy_without_lexicons_gets_no_condition_unless_it_had_one() -> None:
    fresh = Conditions([], 1, NOW)
    reconcile_lexicons(policy([]), Custom({}, []), fresh)  # type: ignore[arg-type]
    assert fresh.items == []
    before = [{"type": "LexiconsReady", "status": "False", "reason": "LexiconMissing"}]
    had = Conditions(before, 2, NOW)
    reconcile_lexicons(policy([]), Custom({}, []), had)  # type: ignore[arg-type]
    assert [(c["status"], c["reason"]) for c in had.items] == [("True", "NoLexicons")]


def test_a_lexicons_change_reconciles_the_policies_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def named(name: str, lexicons: Any) -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": {"lexicons": lexicons}}

    policies = [named("a", ["finance"]), named("b", ["names"]), named("c", ["names", "finance"]),
                named("d", None)]  # fmt: skip
    assert naming(policies, "finance") == ["a", "c"]
    reconciled: list[tuple[str, str]] = []
    monkeypatch.setattr(lexicon_handlers.resync, "reconcile_by_name",
                        lambda memo, ns, name: reconciled.append((ns, name)))  # fmt: skip
    memo = kopf.Memo(clients=kopf.Memo(custom=Custom({}, policies)))
    body: Any = lexicon()
    for kind in ("ADDED", "MODIFIED", "DELETED"):
        lexicon_handlers.lexicon_changed(type=kind, body=body, namespace="ns", memo=memo)
    assert reconciled == [("ns", "a"), ("ns", "c")] * 3
