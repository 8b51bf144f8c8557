"""The HTTP API against moto's server over HTTP, with a fast tone synthesizer."""

from __future__ import annotations

import io
import socket
import threading
import wave
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import jsonschema
import pytest
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.errors import StorageUnavailable
from tempaudio_service.core.formats import FORMATS
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.speech.synth import SynthesisOptions
from tempaudio_service.storage.store import AudioStore, make_dynamodb_client, make_s3_client
from tests.conftest import ToneSynthesizer, list_keys, live_items, scan_items
from tests.service.conftest import NOW


def dead_endpoint() -> str:
    """An address where nothing listens: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_sync_stores_object_and_item_and_returns_a_working_url(
    client: TestClient, settings: ServiceSettings, s3: Any, dynamodb: Any
) -> None:
    response = client.post("/tts/sync", json={"text": "Hello there", "voice": "en_US-joe-medium"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "audio_id",
        "s3_url",
        "duration",
        "text",
        "voice_id",
        "expires_at",
        "audio_expires_at",
        "date",
        "policy",
        "format",
        "content_type",
        "sample_rate",
        "cached",
        "speech_marks_url",
        "captions_url",
    }
    # The seed's request still gets the seed's WAV.
    assert (body["format"], body["content_type"], body["sample_rate"]) == ("wav", "audio/wav", None)
    assert body["policy"] == "default"
    assert body["text"] == "Hello there"
    assert body["voice_id"] == "en_US-joe-medium"
    key = f"temp-audio/{body['date']}/{body['audio_id']}.wav"
    assert list_keys(s3, settings.bucket) == {key}

    items = scan_items(dynamodb, settings.table)
    assert len(items) == 1
    item = items[0]
    # The seed's seven attributes, and the policy it was made under (read only under it).
    assert set(item) == {
        "date",
        "audio_id",
        "s3_url",
        "text",
        "voice_id",
        "duration",
        "ttl",
        "policy",
    }
    # Each in the seed's DynamoDB type, as the typed item writes its record.
    assert {name: list(value) for name, value in item.items()} == {
        "date": ["S"],
        "audio_id": ["S"],
        "s3_url": ["S"],
        "text": ["S"],
        "voice_id": ["S"],
        "duration": ["N"],
        "ttl": ["N"],
        "policy": ["S"],
    }
    assert (item["date"], item["audio_id"]) == ({"S": body["date"]}, {"S": body["audio_id"]})
    assert item["policy"] == {"S": "default/default"}
    assert item["s3_url"] == {"S": f"s3://{settings.bucket}/{key}"}
    assert Decimal(item["duration"]["N"]) == Decimal(str(body["duration"]))
    assert body["date"] == "2026-06-15"
    assert datetime.fromisoformat(body["expires_at"]) == NOW + settings.retention
    assert datetime.fromisoformat(body["audio_expires_at"]) == NOW + settings.retention
    assert int(item["ttl"]["N"]) == int((NOW + settings.retention).timestamp())

    download = httpx.get(body["s3_url"])
    assert download.status_code == 200
    with wave.open(io.BytesIO(download.content)) as wav:
        assert wav.getframerate() == 22050
        assert wav.getnframes() / 22050 == pytest.approx(body["duration"], abs=0.001)
    assert "X-Amz-Signature" in body["s3_url"]
    assert "X-Amz-Expires=86400" in body["s3_url"]


def test_lookup_signs_a_fresh_url_and_hides_expired_audio(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    now = [NOW]
    app = create_app(replace(settings, retention=timedelta(minutes=10)), synth=tone, store=store)
    with TestClient(app) as client:
        app.state.services = replace(app.state.services, clock=lambda: now[0])
        created = client.post("/tts/sync", json={"text": "short lived"}).json()
        path = f"/tts/{created['date']}/{created['audio_id']}"

        now[0] += timedelta(minutes=4)
        found = client.get(path)
        assert found.status_code == 200
        assert found.json()["audio_id"] == created["audio_id"]
        assert "X-Amz-Expires=360" in found.json()["s3_url"]  # what is left, not retention

        # moto never deletes TTL-expired items (and DynamoDB only lazily): filtered on read.
        now[0] += timedelta(minutes=6)
        gone = client.get(path)
        assert gone.status_code == 404
        assert gone.json()["error"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/tts/2026-01-01/0f8fad5b-d9cb-469f-a165-70867728950e",
        "/tts/not-a-date/0f8fad5b-d9cb-469f-a165-70867728950e",
        "/tts/2026-01-01/..%2F..%2Fsecret",
    ],
)
def test_lookup_of_unknown_audio_is_404(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"content": b"{not json"}, 400, "malformed_json"),
        ({"content": b"\xff\xfe"}, 400, "malformed_json"),
        ({"json": {"text": ""}}, 422, "invalid_request"),
        ({"json": {"text": "  "}}, 422, "invalid_request"),
        ({"json": {"text": "x" * 5001}}, 422, "text_too_long"),
        ({"json": {"text": "hi", "voice": "klingon"}}, 422, "unknown_voice"),
        ({"json": {"text": "hi", "length_scale": 99}}, 422, "invalid_request"),
        ({"json": ["text"]}, 422, "invalid_request"),
        ({"content": b'{"text": "' + b"x" * 70000 + b'"}'}, 413, "body_too_large"),
    ],
)
def test_bad_input_gets_json_4xx_and_stores_nothing(
    client: TestClient,
    settings: ServiceSettings,
    s3: Any,
    dynamodb: Any,
    kwargs: dict[str, Any],
    status: int,
    code: str,
) -> None:
    # Raw bodies say they are JSON, as a client's would (without it: 415, test_connections).
    response = client.post("/tts/sync", headers={"content-type": "application/json"}, **kwargs)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"] == code
    assert response.json()["message"]
    assert list_keys(s3, settings.bucket) == set()
    assert scan_items(dynamodb, settings.table) == []


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    assert client.get("/nope").json()["error"] == "not_found"
    response = client.get("/tts/sync")
    assert response.status_code == 405
    assert response.json()["error"] == "method_not_allowed"


def test_s3_down_answers_503_and_writes_no_item(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer, dynamodb: Any
) -> None:
    broken = AudioStore(
        make_s3_client(
            region="us-east-1", endpoint_url=dead_endpoint(), timeout_seconds=1, local=True
        ),
        dynamodb,
        bucket=settings.bucket,
        table=settings.table,
    )
    with TestClient(create_app(settings, synth=tone, store=broken)) as client:
        response = client.post("/tts/sync", json={"text": "lost?"})
        assert response.status_code == 503
        assert response.json()["error"] == "storage_unavailable"
        assert response.headers["retry-after"] == "5"
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "s3" in ready.json()["problems"]
    # The item was written beside the object (at once) and is revoked: a tombstone only.
    assert live_items(dynamodb, settings.table) == []
    assert all(item["revoked"] == {"BOOL": True} for item in scan_items(dynamodb, settings.table))


def test_dynamodb_down_answers_503_and_removes_the_object(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer, s3: Any
) -> None:
    broken = AudioStore(
        s3,
        make_dynamodb_client(
            region="us-east-1", endpoint_url=dead_endpoint(), timeout_seconds=1, local=True
        ),
        bucket=settings.bucket,
        table=settings.table,
    )
    with TestClient(create_app(settings, synth=tone, store=broken)) as client:
        response = client.post("/tts/sync", json={"text": "orphan?"})
        assert response.status_code == 503
        assert response.json()["error"] == "storage_unavailable"
        metrics = client.get("/metrics").text
        assert 'tempaudio_storage_failures_total{operation="put_item"} 1.0' in metrics
    assert list_keys(s3, settings.bucket) == set()


class WriteThenTimeOut(AudioStore):
    """DynamoDB took the write, but the answer never came back (a read timeout)."""

    def put_item(self, item: dict[str, Any]) -> None:
        super().put_item(item)
        raise StorageUnavailable("could not write metadata to DynamoDB: Read timeout")


def test_item_write_that_landed_before_timing_out_is_taken_back(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer, s3: Any, dynamodb: Any
) -> None:
    flaky = WriteThenTimeOut(s3, dynamodb, bucket=settings.bucket, table=settings.table)
    with TestClient(create_app(settings, synth=tone, store=flaky)) as client:
        answer = client.post("/tts/sync", json={"text": "half written"})
        assert answer.status_code == 503
    assert list_keys(s3, settings.bucket) == set()
    assert live_items(dynamodb, settings.table) == []
    (tombstone,) = scan_items(dynamodb, settings.table)
    assert tombstone["revoked"] == {"BOOL": True}


class BlockingSynthesizer(ToneSynthesizer):
    def __init__(self) -> None:
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()

    def sentences(self, text: str, voice: str, options: SynthesisOptions) -> Iterator[bytes]:
        self.started.set()
        assert self.release.wait(30)
        yield from super().sentences(text, voice, options)


def test_full_queue_sheds_load_with_retry_after(
    settings: ServiceSettings, store: AudioStore
) -> None:
    synth = BlockingSynthesizer()
    app = create_app(replace(settings, synth_workers=1, synth_queue=0), synth=synth, store=store)
    with TestClient(app) as client:
        first: dict[str, int] = {}
        worker = threading.Thread(
            target=lambda: first.update(
                status=client.post("/tts/sync", json={"text": "a"}).status_code
            )
        )
        worker.start()
        assert synth.started.wait(10)
        try:
            shed = client.post("/tts/sync", json={"text": "b"})
            assert shed.status_code == 503
            assert shed.json()["error"] == "overloaded"
            assert int(shed.headers["retry-after"]) >= 1
            metrics = client.get("/metrics").text
            assert "tempaudio_overload_rejections_total 1.0" in metrics
            assert "tempaudio_synthesis_in_flight 1.0" in metrics
        finally:
            synth.release.set()
            worker.join(30)
        assert first["status"] == 200
        assert synth.calls == 1


def test_voices_health_and_metrics(client: TestClient) -> None:
    voices = client.get("/voices").json()
    assert voices["default"] == "en_US-joe-medium"
    assert {v["name"] for v in voices["voices"]} == {"en_US-joe-medium", "xx-multi"}
    multi = next(v for v in voices["voices"] if v["name"] == "xx-multi")
    assert multi["speakers"] == {"alice": 0, "bob": 1}
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    client.post("/tts/sync", json={"text": "count me"})
    metrics = client.get("/metrics").text
    assert 'tempaudio_requests_total{method="POST",route="/tts/sync",status="200"} 1.0' in metrics
    assert "tempaudio_synthesis_seconds_count" in metrics
    assert 'tempaudio_audio_seconds_total{voice="en_US-joe-medium"}' in metrics


def test_openapi_documents_every_route_and_error(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    app_routes = {route.path for route in client.app.routes}  # type: ignore[attr-defined]
    assert set(document["paths"]) == app_routes
    responses = document["paths"]["/tts/sync"]["post"]["responses"]
    assert {"200", "400", "413", "422", "503"} <= set(responses)
    schema = document["components"]["schemas"]["TtsRequestBody"]
    assert schema["properties"]["text"]["maxLength"] == 5000
    assert schema["properties"]["response_format"]["enum"] == list(FORMATS)
    assert document["paths"]["/v1/audio/speech"]["post"]["responses"]["400"]["content"][
        "application/json"
    ]["schema"] == {"$ref": "#/components/schemas/OpenAIError"}
    validate(document)  # a valid OpenAPI 3.1 document


def test_the_documented_schema_is_the_one_that_validates(client: TestClient) -> None:
    """Validation and the document come from the same declaration: what the schema refuses,
    the endpoint refuses, and what it accepts gets past validation."""
    document = client.get("/openapi.json").json()
    schema = {**document["components"]["schemas"]["TtsRequestBody"]}
    schema["$defs"] = document["components"]["schemas"]
    checker = jsonschema.Draft202012Validator(schema)
    for body in (
        {"text": "hi", "response_format": "flac", "sample_rate": 16000},
        {"text": "hi", "length_scale": 9},
        {"text": "hi", "response_format": "ogg"},
        {"text": "hi", "unknown": 1},
        {"text": "hi", "sample_rate": 100},
        {"text": "hi", "speaker": 1.5},
    ):
        answer = client.post("/tts/sync", json=body)
        assert checker.is_valid(body) == (answer.status_code == 200), (body, answer.text)
