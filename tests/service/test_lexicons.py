"""Lexicons in the service: beside the policies of a file, as the operator admits them on
Kubernetes (the watch's sink, fed directly), and in the repeat cache's key."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from tempaudio_api.lexicon import Lexicon, LexiconEntry
from tempaudio_service.__main__ import main
from tempaudio_service.app import create_app
from tempaudio_service.audio.repeat_cache import cache_key
from tempaudio_service.core.config import ConfigError
from tempaudio_service.core.errors import PolicyNotReady
from tempaudio_service.core.locations import Storage
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.policy.lexicons import Unavailable, admitted_lexicon
from tempaudio_service.policy.policies import Refusal, ServedPolicy
from tempaudio_service.policy.policy_sources import (
    KubernetesPolicies,
    StaticPolicies,
    static_source,
)
from tempaudio_service.policy.watches import follow
from tempaudio_service.speech.voices import SynthesisOptions
from tempaudio_service.storage.store import AudioStore
from tempaudio_service.wire.tts_request import TtsRequest
from tests.conftest import ToneSynthesizer, documents_file, lexicon_document, policy_document
from tests.service.conftest import NOW

FINANCE = [{"grapheme": "EBITDA", "alias": "earnings before interest"}]


def policy(name: str = "audio", namespace: str = "team", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tempaudio.dev/v1alpha1",
        "kind": "TempAudioPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"storage": {"bucket": "audio-b"}, "dynamodb": {"table": "audio"}, **spec},
    }


def lexicon(name: str = "finance", namespace: str = "team", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tempaudio.dev/v1alpha1",
        "kind": "TempAudioLexicon",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec or {"entries": FINANCE},
    }


def served_from(tmp_path: Path, *documents: dict[str, Any]) -> Any:
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    settings = ServiceSettings(policy_source="file", policy_file=path)
    return static_source(settings).current()


# --- a file --------------------------------------------------------------------------------


def test_a_lexicon_beside_the_policy_in_a_file_is_served_with_it(tmp_path: Path) -> None:
    names = lexicon("names", entries=[{"grapheme": "Nguyen", "phoneme": "w\u026an"}])
    book = served_from(
        tmp_path, lexicon(), policy(lexicons=["names", "finance"]), names, policy("plain")
    )
    served = book.find("audio")
    assert isinstance(served, ServedPolicy)
    assert [(lx.name, lx.entries[0].grapheme) for lx in served.lexicons] == [
        ("names", "Nguyen"),
        ("finance", "EBITDA"),
    ]
    assert served.lexicons[1] == Lexicon(
        "finance", (LexiconEntry("EBITDA", alias="earnings before interest"),)
    )
    assert book.find("plain").lexicons == ()
    # GET /policies tells which lexicons, at which version, each policy is said with.
    rows = {row["name"]: row for row in book.listing(0.0)["policies"]}
    assert rows["audio"]["lexicons"] == [
        {"name": "names", "version": served.lexicons[0].version},
        {"name": "finance", "version": served.lexicons[1].version},
    ]
    assert rows["plain"]["lexicons"] == []


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ([policy(lexicons=["finance"])], "team/audio names lexicon finance"),
        # A policy reads the lexicons of its own namespace only.
        ([lexicon(namespace="other"), policy(lexicons=["finance"])], "names lexicon finance"),
        ([lexicon(entries=[{"grapheme": "x"}]), policy()], "document 1 .*alias and phoneme"),
        ([lexicon(entries=FINANCE, typo=1), policy()], r"unknown field.*spec\.typo"),
        ([lexicon(), lexicon(), policy()], "lexicon team/finance declared twice"),
        ([lexicon()], "no TempAudioPolicy documents"),
        ([policy(lexicons=["Finance"])], "DNS-1123"),
    ],
)
def test_a_file_with_a_bad_or_missing_lexicon_does_not_start(
    tmp_path: Path, documents: list[dict[str, Any]], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        served_from(tmp_path, *documents)


@pytest.mark.parametrize(
    ("alias", "says"),
    [
        ('"a\\0b"', "alias holds a control character, U+0000"),
        ('"a\\ud800b"', "alias holds a surrogate, U+D800"),
        ('"a\\x07b"', "alias holds a control character, U+0007"),
    ],
)
def test_a_policy_file_with_text_espeak_cannot_say_is_a_usage_error(
    tmp_path: Path, alias: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Such a file used to start: then GET /policies and every request of the policy were
    # 500s (a surrogate), or each request saying the word a 422 that blamed the client (NUL).
    path = tmp_path / "p.yaml"
    documents = [lexicon(), policy(lexicons=["finance"])]
    text = yaml.safe_dump_all(documents).replace("earnings before interest", f"{alias}")
    assert alias in text
    path.write_text(text)
    assert main(["--policy", str(path)]) == 2
    assert says in capsys.readouterr().err


# --- what is said ----------------------------------------------------------------------------

ZZ = "a " * 249 + "a"  # 499 characters said for a word of two


def lexicon_client(
    tmp_path: Path, settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> TestClient:
    path = documents_file(
        tmp_path / "policies.yaml",
        lexicon_document("zz", [{"grapheme": "zz", "alias": ZZ}]),
        policy_document("lex", settings.bucket, settings.table, lexicons=["zz"]),
    )
    file_settings = replace(settings, policy_source="file", policy_file=path)
    return TestClient(create_app(file_settings, synth=tone, store=store, clock=lambda: NOW))


def test_aliases_count_against_the_text_limit_before_anything_is_said(
    tmp_path: Path, settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    # 5,000 characters of "zz zz ...": 833,000 said, in one espeak call that held the GIL
    # (and both ports' /healthz) for seconds before the audio cap refused it.
    text = " ".join(["zz"] * 1666)
    assert len(text) <= settings.max_text_chars
    with lexicon_client(tmp_path, settings, store, tone) as client:
        for route in ("/tts/sync", "/tts/stream"):
            refused = client.post(route, json={"text": text, "policy": "lex"})
            assert refused.status_code == 422, refused.text
            assert refused.json()["error"] == "text_too_long"
            assert "with the policy's lexicons has more than 5000" in refused.json()["message"]
        shorter = " ".join(["zz"] * 1000)  # within OpenAI's 4,096 characters
        openai = client.post(
            "/v1/audio/speech",
            json={"model": "tts-1", "voice": "alloy", "input": shorter, "policy": "lex"},
        )
        assert openai.status_code == 400
        error = openai.json()["error"]
        assert (error["code"], error["param"]) == ("text_too_long", "input")
        assert "more than 4096" in error["message"]  # OpenAI's limit on input
        assert tone.calls == 0  # refused before the synthesizer was given anything
        # Within the limit, the aliases are said.
        said = " ".join(["zz"] * 10)
        assert client.post("/tts/sync", json={"text": said, "policy": "lex"}).status_code == 200
        assert tone.calls == 1


def test_a_served_lexicon_the_parser_refuses_now_breaks_no_listing_and_no_other_request(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    # Accepted by an older parser: an alias with a lone surrogate, which no UTF-8 holds.
    book = static_source(settings).current()
    (served,) = book.entries.values()
    bad = Lexicon("finance", (LexiconEntry("EBITDA", alias="a\ud800b"),))
    assert isinstance(served, ServedPolicy)
    entries = MappingProxyType({served.key: replace(served, lexicons=(bad,))})
    source = StaticPolicies(replace(book, entries=entries))
    app = create_app(settings, synth=tone, store=store, clock=lambda: NOW, policies=source)
    with TestClient(app) as client:
        listing = client.get("/policies")
        assert listing.status_code == 200, listing.text
        (row,) = listing.json()["policies"]
        assert row["lexicons"] == [{"name": "finance", "version": bad.version}]
        assert client.post("/tts/sync", json={"text": "Revenue rose."}).status_code == 200


# --- Kubernetes: what the operator accepted --------------------------------------------------


def accepted(document: dict[str, Any], generation: int, accepted: int | None) -> dict[str, Any]:
    document["metadata"]["generation"] = generation
    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": [
            {"type": "Valid", "status": "False", "reason": "InvalidSpec", "message": "no good"}
        ],
    }
    if accepted is not None:
        status = {"observedGeneration": generation, "acceptedGeneration": accepted}
    document["status"] = status
    return document


def test_a_lexicon_is_said_only_at_a_generation_the_operator_accepted() -> None:
    first = admitted_lexicon(accepted(lexicon(), 1, 1))
    assert isinstance(first, Lexicon)
    edit = lexicon(entries=[{"grapheme": "EBITDA", "alias": "ebb it dah"}])
    edit["metadata"]["generation"] = 2
    edit["status"] = {"observedGeneration": 1, "acceptedGeneration": 1}
    assert admitted_lexicon(edit, first) == first  # the edit waits for the operator
    assert admitted_lexicon(edit) == Unavailable(
        "LexiconPending", "the operator has not accepted generation 2"
    )
    assert admitted_lexicon(accepted(edit, 2, None), first) == Unavailable(
        "LexiconInvalid", "no good"
    )


def test_a_lexicon_an_older_operator_accepted_is_read_again_and_refused() -> None:
    said_nul = lexicon(entries=[{"grapheme": "EBITDA", "alias": "a\0b"}])
    assert admitted_lexicon(accepted(said_nul, 1, 1)) == Unavailable(
        "LexiconInvalid",
        "entries[0] ('EBITDA'): alias holds a control character, U+0000, at position 2;"
        " graphemes, aliases and phonemes are text of one line",
    )


def policy_object(**spec: Any) -> dict[str, Any]:
    document = policy(**spec)
    document["metadata"]["generation"] = 1
    document["status"] = {
        "observedGeneration": 1,
        "acceptedGeneration": 1,
        "retentionHistory": [{"retention": "24h", "since": "2026-06-15T12:00:00Z"}],
    }
    return document


def test_the_watch_serves_each_policy_with_its_lexicons_and_follows_their_edits() -> None:
    source = KubernetesPolicies(ServiceSettings(policy_source="kubernetes",
                                                policy_namespaces=("team",)))  # fmt: skip
    source.relisted("team", "tempaudiopolicies", [policy_object(lexicons=["finance"])])
    source.relisted("team", "tempaudiolexicons", [])
    source.relisted("team", "tempaudiovoices", [])
    refused = source.current().find("audio")
    assert isinstance(refused, Refusal)
    assert refused.reason == "LexiconMissing"
    with pytest.raises(PolicyNotReady, match=r"LexiconMissing.*lexicon finance does not exist"):
        source.current().resolve("audio", 0.0)

    source.changed("team", "tempaudiolexicons", "ADDED", accepted(lexicon(), 1, 1))
    first = source.current().resolve("audio", 0.0).lexicons
    assert [lx.name for lx in first] == ["finance"]

    edit = lexicon(entries=[{"grapheme": "EBITDA", "alias": "ebb it dah"}])
    source.changed("team", "tempaudiolexicons", "MODIFIED", accepted(edit, 2, 2))
    second = source.current().resolve("audio", 0.0).lexicons
    assert second[0].version != first[0].version

    source.changed("team", "tempaudiolexicons", "MODIFIED", accepted(lexicon(), 3, None))
    gone = source.current().find("audio")
    assert isinstance(gone, Refusal)
    assert (gone.reason, gone.message) == ("LexiconInvalid", "lexicon finance: no good")
    source.changed("team", "tempaudiolexicons", "DELETED", lexicon())
    assert source.current().find("audio").reason == "LexiconMissing"  # type: ignore[union-attr]


# --- the repeat cache ----------------------------------------------------------------------


def test_the_repeat_cache_key_follows_the_lexicons_versions() -> None:
    tts = TtsRequest(text="EBITDA rose", voice="en_US-joe-medium", options=SynthesisOptions())
    base = ServedPolicy("team", "audio", timedelta(hours=1), Storage("b", "p/", "r", "t"))
    one = Lexicon("finance", (LexiconEntry("EBITDA", alias="earnings before interest"),))
    edited = Lexicon("finance", (LexiconEntry("EBITDA", alias="ebb it dah"),))
    plain = cache_key(tts, base, None)
    with_one = cache_key(tts, replace(base, lexicons=(one,)), None)
    with_edit = cache_key(tts, replace(base, lexicons=(edited,)), None)
    assert len({plain, with_one, with_edit}) == 3
    assert cache_key(tts, replace(base, lexicons=(one,)), None) == with_one


# --- a cluster without the lexicon CRD -----------------------------------------------------


class _Sink:
    def __init__(self, stopping: threading.Event) -> None:
        self.listed: list[tuple[str, str, list[Any]]] = []
        self._stopping = stopping

    def relisted(self, namespace: str, plural: str, items: list[Any]) -> None:
        self.listed.append((namespace, plural, items))
        self._stopping.set()

    def changed(self, namespace: str, plural: str, kind: str, document: Any) -> None:
        raise AssertionError("nothing to watch")

    def touched(self, namespace: str, plural: str) -> None:
        raise AssertionError("nothing to watch")


@pytest.mark.parametrize("status", [403, 404])
def test_lexicons_the_api_server_lacks_read_as_none_and_keep_policies_served(
    monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    """After a helm upgrade that did not apply the new CRD (or with an old Role), the
    lexicon watch finds nothing to list: that reads as no lexicons, so the book stays fresh
    and only a policy that names one is refused."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    class Absent:
        def __init__(self, _: Any) -> None:
            pass

        def list_namespaced_custom_object(self, *args: Any, **kwargs: Any) -> Any:
            raise ApiException(status=status, reason="absent")

    monkeypatch.setattr(client, "CustomObjectsApi", Absent)
    stopping = threading.Event()
    sink = _Sink(stopping)
    follow(None, "team", "tempaudiolexicons", sink, stopping, optional=True)
    assert sink.listed == [("team", "tempaudiolexicons", [])]
    # A required resource that is absent is never read as empty.
    required = _Sink(stopping := threading.Event())
    thread = threading.Thread(
        target=follow, args=(None, "team", "tempaudiopolicies", required, stopping), daemon=True
    )
    thread.start()
    thread.join(0.5)
    stopping.set()
    thread.join(5)
    assert required.listed == []
