"""Declared voices as the service follows them, without the real voice: the watch takes
the operator's verdict of each generation, an edit of sha256 is a new version that is not
spoken until verified, and the resident voices follow the declarations."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tempaudio_service.core.declared_voices import DeclaredVoice, ObjectSource
from tempaudio_service.core.errors import VoiceNotReady
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.policy.policy_sources import KubernetesPolicies
from tempaudio_service.speech.resident_voices import Loaded, ResidentVoices

A, B = "a" * 64, "b" * 64


def voice_object(
    sha256: str, generation: int, verified: str | None, **ready: str
) -> dict[str, Any]:
    status: dict[str, Any] = {"observedGeneration": generation, "conditions": []}
    if verified is not None:
        status = {
            "observedGeneration": generation,
            "sha256": verified,
            "language": "de_DE",
            "sampleRate": 22050,
            "numSpeakers": 1,
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Verified", "message": "", **ready}
            ],
        }
    return {
        "apiVersion": "tempaudio.dev/v1alpha1",
        "kind": "TempAudioVoice",
        "metadata": {"name": "de-thorsten", "namespace": "team", "generation": generation},
        "spec": {"source": {"s3": {"bucket": "voices", "key": "de.onnx"}}, "sha256": sha256},
        "status": status,
    }


def test_the_watch_serves_a_voice_at_the_generation_the_operator_verified() -> None:
    source = KubernetesPolicies(
        ServiceSettings(policy_source="kubernetes", policy_namespaces=("team",))
    )
    source.relisted("team", "tempaudiovoices", [voice_object(A, 1, A)])
    voice = source.current().voices["team/de-thorsten"]
    assert (voice.sha256, voice.ready) == (A, True)
    assert voice.described["language"] == "de_DE"
    # An edit of sha256: a new version, not spoken before the operator verified it.
    source.changed("team", "tempaudiovoices", "MODIFIED", voice_object(B, 2, None))
    pending = source.current().voices["team/de-thorsten"]
    assert (pending.sha256, pending.ready, pending.reason) == (B, False, "Pending")
    source.changed("team", "tempaudiovoices", "MODIFIED", voice_object(B, 2, B))
    assert source.current().voices["team/de-thorsten"].ready is True
    refused = voice_object(B, 3, B, status="False", reason="HashMismatch", message="tampered")
    source.changed("team", "tempaudiovoices", "MODIFIED", refused)
    found = source.current().voices["team/de-thorsten"]
    assert (found.ready, found.reason, found.message) == (False, "HashMismatch", "tampered")
    source.changed("team", "tempaudiovoices", "DELETED", voice_object(B, 3, B))
    assert source.current().voices == {}


class Files:
    """A fetcher that writes a voice's files and counts, optionally failing."""

    def __init__(self) -> None:
        self.fetched: list[str] = []
        self.release = threading.Event()
        self.release.set()

    def fetch(self, voice: DeclaredVoice, model: Path, config: Path) -> None:
        self.release.wait()
        self.fetched.append(voice.sha256)
        if voice.sha256 == "f" * 64:
            raise VoiceNotReady("tampered", "HashMismatch")
        model.write_bytes(b"model")
        config.write_text("{}")


def declared(name: str, sha256: str) -> DeclaredVoice:
    return DeclaredVoice("team", name, sha256, ObjectSource("voices", "k", "k.json"))


def shelf(tmp_path: Path, files: Files, most: int = 2) -> ResidentVoices:
    return ResidentVoices(
        cache=tmp_path,
        fetcher=files,
        volume=None,
        most=most,
        load=lambda key, model, config: Loaded(voice=key, version=None),
    )


def test_a_new_hash_is_a_new_version_fetched_and_loaded_again(tmp_path: Path) -> None:
    files = Files()
    voices = shelf(tmp_path, files)
    assert voices.get(declared("de", A)).version == A
    voices.get(declared("de", A))
    assert files.fetched == [A]
    voices.forget(lambda key, version: version == B)  # the declaration now says B
    assert voices.resident() == set()
    assert voices.get(declared("de", B)).version == B
    assert files.fetched == [A, B]


def test_concurrent_first_uses_load_once_and_a_failure_is_everyones(tmp_path: Path) -> None:
    files = Files()
    files.release.clear()
    voices = shelf(tmp_path, files)
    results: list[object] = []

    def use(voice: DeclaredVoice) -> None:
        try:
            results.append(voices.get(voice).version)
        except VoiceNotReady as error:
            results.append(error.reason)

    threads = [threading.Thread(target=use, args=(declared("x", "f" * 64),)) for _ in range(8)]
    for thread in threads:
        thread.start()
    files.release.set()
    for thread in threads:
        thread.join()
    assert results == ["HashMismatch"] * 8
    assert files.fetched == ["f" * 64]


def test_the_least_recently_used_voice_goes_first(tmp_path: Path) -> None:
    voices = shelf(tmp_path, Files(), most=2)
    one, two, three = declared("one", A), declared("two", A), declared("three", A)
    voices.get(one)
    voices.get(two)
    voices.get(one)  # used again: two is now the least recent
    voices.get(three)
    assert voices.resident() == {"team/one", "team/three"}


@pytest.mark.parametrize("most", [1, 3])
def test_never_more_than_the_bound(tmp_path: Path, most: int) -> None:
    voices = shelf(tmp_path, Files(), most=most)
    for name in "abcdef":
        voices.get(declared(name, A))
        assert len(voices.resident()) <= most


def test_a_failed_voice_is_refused_for_a_while_then_tried_again(tmp_path: Path) -> None:
    files = Files()
    now = [0.0]
    voices = ResidentVoices(
        cache=tmp_path,
        fetcher=files,
        volume=None,
        most=2,
        load=lambda key, model, config: Loaded(voice=key, version=None),
        clock=lambda: now[0],
    )
    tampered = declared("x", "f" * 64)
    for _ in range(3):
        with pytest.raises(VoiceNotReady):
            voices.get(tampered)
    assert files.fetched == ["f" * 64]  # not fetched whole for every request
    now[0] = 31.0
    with pytest.raises(VoiceNotReady):
        voices.get(tampered)
    assert files.fetched == ["f" * 64] * 2


def test_the_cache_keeps_only_the_declared_and_the_loaded_hashes(tmp_path: Path) -> None:
    voices = shelf(tmp_path, Files())
    voices.get(declared("de", A))
    for sha256 in (B, "c" * 64):
        (tmp_path / f"{sha256}.onnx").write_bytes(b"old")
        (tmp_path / f"{sha256}.onnx.json").write_text("{}")
        (voices.models / f"{sha256}-v1").mkdir(parents=True)
    voices.prune({B})  # B is declared; A is loaded; c is neither
    left = sorted(path.name for path in tmp_path.glob("*.onnx*"))
    assert left == sorted([f"{A}.onnx", f"{A}.onnx.json", f"{B}.onnx", f"{B}.onnx.json"])
    assert sorted(path.name for path in voices.models.iterdir()) == [f"{B}-v1"]
