"""OpenAI's API under /v1 through the app, with the tone synthesizer: the error status, type
and param, the input limit, the model lookup and server-sent events."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.errors import NoSpeech
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.speech.synth import SynthesisOptions
from tempaudio_service.storage.store import AudioStore
from tempaudio_service.wire.openai_schemas import openai_status
from tests.conftest import ToneSynthesizer, list_keys
from tests.service.conftest import NOW

TEXT = "Hello there. How are you today?"
SPEECH = {"model": "tts-1", "voice": "alloy", "input": TEXT}
HUGE = "v" * 60_000
JSON = {"Content-Type": "application/json"}


def speech(client: TestClient, **body: Any) -> httpx.Response:
    return client.post("/v1/audio/speech", json=SPEECH | body)


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    error: dict[str, Any] = body["error"]
    return error


@pytest.mark.parametrize(
    ("status", "answered", "kind"),
    [
        (400, 400, "invalid_request_error"),
        (413, 400, "invalid_request_error"),
        (415, 400, "invalid_request_error"),
        (422, 400, "invalid_request_error"),
        (401, 401, "authentication_error"),
        (403, 403, "permission_error"),
        (404, 404, "not_found_error"),
        (405, 405, "invalid_request_error"),
        (408, 408, "timeout_error"),
        (409, 409, "conflict_error"),
        (429, 429, "rate_limit_error"),
        (500, 500, "server_error"),
        (503, 503, "server_error"),
    ],
)
def test_statuses_become_openai_s_status_and_type(status: int, answered: int, kind: str) -> None:
    assert openai_status(status) == (answered, kind)


@pytest.mark.parametrize(
    ("request_kwargs", "status", "kind", "code"),
    [
        ({"method": "GET", "url": "/v1/audio/speech"}, 405, "invalid_request_error",
         "method_not_allowed"),
        ({"method": "GET", "url": "/v1/nope"}, 404, "not_found_error", "not_found"),
        ({"method": "POST", "url": "/v1/audio/speech", "content": b"{", "headers": JSON}, 400,
         "invalid_request_error", "malformed_json"),
        ({"method": "POST", "url": "/v1/audio/speech", "headers": JSON,
          "content": b'"' + b"x" * 70_000 + b'"'}, 400, "invalid_request_error", "body_too_large"),
        ({"method": "POST", "url": "/v1/audio/speech", "content": b"{}"}, 400,
         "invalid_request_error", "unsupported_media_type"),
    ],
)  # fmt: skip
def test_http_errors_have_openai_s_type(
    client: TestClient, request_kwargs: dict[str, Any], status: int, kind: str, code: str
) -> None:
    response = client.request(**request_kwargs)
    assert response.status_code == status
    error = error_of(response)
    assert (error["type"], error["code"], error["param"]) == (kind, code, None)


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        ({"input": "x" * 4097}, 400, "text_too_long", "input"),
        ({"input": "   "}, 400, "invalid_request", "input"),
        ({"voice": "no-such-voice"}, 400, "unknown_voice", "voice"),
        ({"voice": {"id": "no-such-voice"}}, 400, "unknown_voice", "voice"),
        ({"voice": {"name": "alloy"}}, 400, "invalid_request", "voice"),
        ({"voice": 7}, 400, "invalid_request", "voice"),
        ({"speed": 9.0}, 400, "invalid_request", "speed"),
        ({"response_format": "ogg"}, 400, "invalid_request", "response_format"),
        ({"stream_format": "json"}, 400, "invalid_request", "stream_format"),
        ({"sample_rate": 22051}, 400, "invalid_request", "sample_rate"),
        ({"sample_rate": 100}, 400, "invalid_request", "sample_rate"),
        ({"policy": "nope"}, 400, "unknown_policy", "policy"),
        ({"policy": " "}, 400, "invalid_request", "policy"),
        ({"model": "gpt-5"}, 404, "model_not_found", "model"),
        ({"model": 5}, 400, "invalid_request", "model"),
    ],
)
def test_errors_name_the_field_at_fault(
    client: TestClient, body: dict[str, Any], status: int, code: str, param: str
) -> None:
    response = speech(client, **body)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert (error["code"], error["param"]) == (code, param)
    assert error["type"] == ("not_found_error" if status == 404 else "invalid_request_error")


def test_input_is_held_to_openai_s_limit_below_the_service_s(client: TestClient) -> None:
    error = error_of(speech(client, input="x" * 4097))
    assert error["message"] == "'input' has 4097 characters; the limit is 4096"
    # /tts keeps the service's own limit (TEMPAUDIO_MAX_TEXT_CHARS, 5000 by default).
    assert client.post("/tts/sync", json={"text": "x" * 4097}).status_code != 422


def test_integer_ranges_are_said_as_integers(client: TestClient) -> None:
    error = error_of(speech(client, response_format="wav", sample_rate=100))
    assert error["message"] == "'sample_rate' must be between 8000 and 48000, got 100"
    error = error_of(speech(client, speed=0.1))
    assert error["message"] == "'speed' must be between 0.25 and 4.0, got 0.1"


class Silent(ToneSynthesizer):
    def sentences(self, text: str, voice: str, options: SynthesisOptions) -> Iterator[bytes]:
        raise NoSpeech("the text holds nothing to say")
        yield b""


def test_errors_of_the_text_name_openai_s_input(
    settings: ServiceSettings, store: AudioStore
) -> None:
    with TestClient(create_app(settings, synth=Silent(), store=store)) as test:
        error = error_of(speech(test, input="..."))
    assert (error["code"], error["param"]) == ("no_speech", "input")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/audio/speech", SPEECH | {"model": HUGE}),
        ("/v1/audio/speech", SPEECH | {"voice": HUGE}),
        ("/v1/audio/speech", SPEECH | {"voice": {"id": HUGE}}),
        (f"/v1/models/{HUGE[:5000]}", None),
        ("/tts/sync", {"text": "hi", "voice": HUGE}),
        ("/tts/sync", {"text": "hi", "voice": "xx-multi", "speaker": HUGE}),
        ("/tts/sync", {"text": "hi", HUGE: 1}),
    ],
)
def test_long_values_are_not_echoed_whole(
    client: TestClient, path: str, body: dict[str, Any] | None
) -> None:
    response = client.get(path) if body is None else client.post(path, json=body)
    assert 400 <= response.status_code < 500
    answer = response.json()
    message = answer["error"]["message"] if path.startswith("/v1/") else answer["message"]
    assert "v" * 40 not in message
    assert "…" in message
    if path.startswith("/tts/"):  # /tts keeps its own shape
        assert set(answer) == {"error", "message"}


def test_models_are_retrieved_one_by_one(client: TestClient) -> None:
    for model in client.get("/v1/models").json()["data"]:
        assert client.get(f"/v1/models/{model['id']}").json() == model
    assert client.get("/v1/models/tts-1").json() == {
        "id": "tts-1", "object": "model", "created": 0, "owned_by": "tempaudio",
    }  # fmt: skip
    missing = client.get("/v1/models/gpt-5")
    assert missing.status_code == 404
    error = error_of(missing)
    assert (error["type"], error["code"], error["param"]) == (
        "not_found_error", "model_not_found", "model",
    )  # fmt: skip


def events_of(response: httpx.Response) -> list[dict[str, Any]]:
    """The server-sent events: each one ``data:`` line of JSON and a blank line."""
    assert response.headers["content-type"].startswith("text/event-stream")
    blocks = response.text.split("\n\n")
    assert blocks[-1] == ""
    events = []
    for block in blocks[:-1]:
        assert block.startswith("data: ")
        assert "\n" not in block
        events.append(json.loads(block.removeprefix("data: ")))
    return events


def audio_of(events: list[dict[str, Any]]) -> bytes:
    *deltas, done = events
    assert {event["type"] for event in deltas} == {"speech.audio.delta"}
    assert set(deltas[0]) == {"type", "audio"}
    assert done["type"] == "speech.audio.done"
    return b"".join(base64.b64decode(event["audio"]) for event in deltas)


def test_sse_carries_the_same_audio_as_events_then_the_usage(client: TestClient) -> None:
    plain = speech(client, response_format="pcm")
    events = events_of(speech(client, response_format="pcm", stream_format="sse"))
    assert len(events) >= 3  # a delta per sentence at least, then done
    assert audio_of(events) == plain.content
    milliseconds = round(len(plain.content) / 2 / 24000 * 1000)
    assert events[-1] == {
        "type": "speech.audio.done",
        "usage": {
            "input_tokens": len(TEXT),
            "output_tokens": milliseconds,
            "total_tokens": len(TEXT) + milliseconds,
        },
    }


def test_sse_with_a_policy_keeps_the_audio_itself(
    client: TestClient, settings: ServiceSettings, s3: Any
) -> None:
    response = speech(client, response_format="mp3", stream_format="sse", policy="default")
    audio = audio_of(events_of(response))
    kept = httpx.get(response.headers["x-tempaudio-url"])
    assert kept.content == audio
    assert kept.headers["content-type"] == "audio/mpeg"
    (key,) = list_keys(s3, settings.bucket)
    assert key == f"temp-audio/{NOW.date()}/{response.headers['x-tempaudio-audio-id']}.mp3"


def test_the_document_has_the_model_route_events_voice_object_and_input_limit(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    retrieve = document["paths"]["/v1/models/{model}"]["get"]
    assert retrieve["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Model"
    }
    assert "404" in retrieve["responses"]
    operation = document["paths"]["/v1/audio/speech"]["post"]
    assert "text/event-stream" in operation["responses"]["200"]["content"]
    assert "413" not in operation["responses"]  # OpenAI answers it as a 400
    schemas = document["components"]["schemas"]
    body = schemas["SpeechRequestBody"]
    assert body["properties"]["input"]["maxLength"] == 4096
    assert body["properties"]["stream_format"]["enum"] == ["audio", "sse"]
    checker = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/SpeechRequestBody", "components": {"schemas": schemas}}
    )
    for voice, valid in (("alloy", True), ({"id": "alloy"}, True), ({"name": "alloy"}, False)):
        request = SPEECH | {"voice": voice, "response_format": "pcm"}
        assert checker.is_valid(request) == valid
        answer = client.post("/v1/audio/speech", json=request)
        assert (answer.status_code == 200) == valid, answer.text
