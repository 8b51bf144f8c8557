"""TempAudioLexicons on the real control plane: the operator validates them and gates the
readiness of the policies naming them; the service's Kubernetes source follows them.

The operator runs in-process (kopf); the service's policy source lists and watches through
the API server as it does in a pod.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml
from kubernetes import client

from tempaudio_api.lexicon import lexicon_from_spec
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.policy.policies import Refusal, ServedPolicy
from tempaudio_service.policy.policy_sources import KubernetesPolicies
from tests.controlplane import REPO
from tests.kube_fixtures import GROUP, VERSION, wait_for
from tests.operator.test_correctness import create, get, settled
from tests.operator.test_operator import at_condition, condition, spec_for

pytestmark = [pytest.mark.k8s, pytest.mark.usefixtures("operator", "aws_env")]
LEXICONS = "tempaudiolexicons"
# How soon a lexicon's change reaches the policy's readiness and the service.
EDIT_BOUND_SECONDS = 10
FINANCE = [{"grapheme": "EBITDA", "alias": "earnings before interest"}]


def create_lexicon(custom: client.CustomObjectsApi, namespace: str, name: str, **spec: Any) -> None:
    manifest = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TempAudioLexicon",
        "metadata": {"name": name},
        "spec": spec,
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, LEXICONS, manifest)


def get_lexicon(custom: client.CustomObjectsApi, namespace: str, name: str) -> Any:
    return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, LEXICONS, name)


def validated(custom: client.CustomObjectsApi, namespace: str, name: str, status: str) -> Any:
    """The lexicon once its Valid condition has this status for its current generation."""
    return at_condition(custom, LEXICONS, namespace, name, "Valid", status, EDIT_BOUND_SECONDS)


def ready_reason(custom: client.CustomObjectsApi, namespace: str, reason: str) -> Any:
    def check() -> Any:
        policy = get(custom, namespace, "audio")
        return policy if condition(policy, "Ready").get("reason") == reason else None

    return wait_for(check, timeout=EDIT_BOUND_SECONDS, what=f"policy Ready reason {reason}")


@contextmanager
def service_source(namespace: str) -> Iterator[KubernetesPolicies]:
    settings = ServiceSettings(policy_source="kubernetes", policy_namespaces=(namespace,))
    source = KubernetesPolicies(settings)
    source.start()
    try:
        yield source
    finally:
        source.stop()


def entry(source: KubernetesPolicies, namespace: str) -> ServedPolicy | Refusal | None:
    """The service's entry for the namespace's policy "audio" (None: not listed yet)."""
    return source.current().entries.get(f"{namespace}/audio")


def served(source: KubernetesPolicies, namespace: str) -> ServedPolicy | None:
    found = entry(source, namespace)
    return found if isinstance(found, ServedPolicy) else None


def test_a_policy_naming_a_missing_lexicon_is_not_ready_until_it_exists(
    custom: client.CustomObjectsApi, namespace: str, aws: dict[str, Any]
) -> None:
    create(custom, namespace, "audio", spec_for(aws, lexicons=["finance"]))
    policy = settled(custom, namespace, "audio", "False")
    ready = condition(policy, "Ready")
    assert ready["reason"] == "LexiconMissing"
    assert "lexicon finance does not exist" in ready["message"]
    assert condition(policy, "LexiconsReady")["status"] == "False"
    # Its cleanup still runs: audio made before still expires.
    assert condition(policy, "CronJobReady")["status"] == "True"

    create_lexicon(custom, namespace, "finance", entries=FINANCE)
    lexicon = validated(custom, namespace, "finance", "True")
    status = lexicon["status"]
    assert status["entries"] == 1
    assert status["acceptedGeneration"] == lexicon["metadata"]["generation"]
    assert condition(lexicon, "Ready")["reason"] == "Accepted"
    policy = ready_reason(custom, namespace, "Reconciled")
    assert condition(policy, "LexiconsReady")["reason"] == "Resolved"


def test_the_service_says_requests_with_the_lexicon_and_follows_its_edits(
    custom: client.CustomObjectsApi, namespace: str, aws: dict[str, Any]
) -> None:
    create_lexicon(custom, namespace, "finance", entries=FINANCE)
    create(custom, namespace, "audio", spec_for(aws, lexicons=["finance"]))
    first = validated(custom, namespace, "finance", "True")["status"]["version"]
    with service_source(namespace) as source:
        found = wait_for(
            lambda: (s := served(source, namespace)) is not None and s.lexicons and s,
            what="the policy served with its lexicon",
        )  # fmt: skip
        assert [(lx.name, lx.version) for lx in found.lexicons] == [("finance", first)]

        edit = [{"grapheme": "EBITDA", "alias": "ebb it dah"}]
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, LEXICONS, "finance", {"spec": {"entries": edit}}
        )
        changed = wait_for(
            lambda: (s := served(source, namespace)) is not None and s.lexicons
            and s.lexicons[0].version != first and s,
            timeout=EDIT_BOUND_SECONDS, what="the edit reaching the service",
        )  # fmt: skip
        assert changed.lexicons[0].entries[0].alias == "ebb it dah"
        assert get_lexicon(custom, namespace, "finance")["status"]["version"] == (
            changed.lexicons[0].version
        )

        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, LEXICONS, "finance")
        refused = wait_for(
            lambda: isinstance(e := entry(source, namespace), Refusal) and e,
            timeout=EDIT_BOUND_SECONDS, what="the deletion reaching the service",
        )  # fmt: skip
        assert refused.reason == "LexiconMissing"
    ready_reason(custom, namespace, "LexiconMissing")


def test_an_invalid_lexicon_is_reported_and_its_policies_are_not_ready(
    custom: client.CustomObjectsApi, namespace: str, aws: dict[str, Any]
) -> None:
    # The API server refuses what the schema can tell (its CEL rules) ...
    with pytest.raises(client.ApiException) as refused:
        create_lexicon(custom, namespace, "both", entries=[
            {"grapheme": "x", "alias": "a", "phoneme": "b"}])  # fmt: skip
    assert refused.value.status == 422
    assert "exactly one of alias and phoneme" in str(refused.value.body)
    # ... the operator the rest: here a PLS document with a DTD (an entity bomb's way in).
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE lexicon [<!ENTITY a "aaaa">]>'
        '<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon">'
        "<lexeme><grapheme>&a;</grapheme><alias>boom</alias></lexeme></lexicon>"
    )
    create_lexicon(custom, namespace, "finance", pls=bomb)
    lexicon = validated(custom, namespace, "finance", "False")
    valid = condition(lexicon, "Valid")
    assert valid["reason"] == "InvalidSpec"
    assert "no DTD or entities" in valid["message"]
    assert "acceptedGeneration" not in lexicon["status"]

    create(custom, namespace, "audio", spec_for(aws, lexicons=["finance"]))
    policy = ready_reason(custom, namespace, "LexiconInvalid")
    assert "lexicon finance is invalid" in condition(policy, "Ready")["message"]
    with service_source(namespace) as source:
        refusal = wait_for(
            lambda: isinstance(e := entry(source, namespace), Refusal) and e,
            what="the policy refused by the service",
        )  # fmt: skip
        assert refusal.reason == "LexiconInvalid"
        assert "no DTD or entities" in refusal.message

    # Fixed, the lexicon is accepted and the policy follows.
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, LEXICONS, "finance",
        {"spec": {"pls": None, "entries": FINANCE}},
    )  # fmt: skip
    validated(custom, namespace, "finance", "True")
    ready_reason(custom, namespace, "Reconciled")


def test_text_espeak_cannot_say_is_refused_by_the_api_server_or_the_operator(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    # The CRD's pattern, made from the parser's rule: no NUL, no control character.
    for bad in ({"grapheme": "W3C", "alias": "a\0b"}, {"grapheme": "W3\tC", "alias": "x"}):
        with pytest.raises(client.ApiException) as refused:
            create_lexicon(custom, namespace, "bad", entries=[bad])
        assert refused.value.status == 422
        assert "should match" in str(refused.value.body)
    # A PLS document can still hold one (a character reference): the operator refuses it.
    pls = (
        '<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon">'
        "<lexeme><grapheme>W3C</grapheme><alias>a&#x85;b</alias></lexeme></lexicon>"
    )
    create_lexicon(custom, namespace, "finance", pls=pls)
    lexicon = validated(custom, namespace, "finance", "False")
    valid = condition(lexicon, "Valid")
    assert valid["reason"] == "InvalidSpec"
    assert "alias holds a control character, U+0085" in valid["message"]
    assert "acceptedGeneration" not in lexicon["status"]


def test_the_example_lexicon_is_accepted_and_valid(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    example = yaml.safe_load((REPO / "examples" / "lexicon.yaml").read_text())
    assert len(lexicon_from_spec("finance", example["spec"]).entries) == 4
    example["metadata"]["namespace"] = namespace
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, LEXICONS, example, dry_run="All"
    )
