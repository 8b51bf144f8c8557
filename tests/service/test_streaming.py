"""POST /tts/stream under a real uvicorn: sentences leave as they are made, a client that goes
away frees its worker and leaves nothing stored, and a stream is admitted like any request.

No timing: a gate holds the synthesizer after its first sentence, so a first chunk that
arrives while the gate is shut can only have been streamed.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import openai
import pytest

from tempaudio_service.app import create_app
from tempaudio_service.core.errors import AudioTooLong, NoSpeech, StorageUnavailable
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.speech.encoders import UNKNOWN_SIZE
from tempaudio_service.speech.synth import SynthesisOptions
from tempaudio_service.storage.store import AudioStore
from tests.conftest import (
    ToneSynthesizer,
    decoded_seconds,
    list_keys,
    live_items,
    scan_items,
    serving,
)
from tests.service.conftest import NOW

TEXT = "The first sentence. The second one is here. And the third one ends it."
WAIT = 30  # seconds an event may take before the test fails


class GatedSynthesizer(ToneSynthesizer):
    """Yields the first sentence, then waits for ``gate`` before the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.first_made = threading.Event()
        self.sentences_made = 0
        self.closed = threading.Event()

    def sentences(self, text: str, voice: str, options: SynthesisOptions) -> Iterator[bytes]:
        try:
            for index, pcm in enumerate(super().sentences(text, voice, options)):
                if index == 1:
                    assert self.gate.wait(WAIT)
                self.sentences_made += 1
                yield pcm
                self.first_made.set()
        finally:
            self.closed.set()


@pytest.fixture
def gated() -> GatedSynthesizer:
    return GatedSynthesizer()


def _app(settings: ServiceSettings, store: AudioStore, synth: Any, **changes: Any) -> Any:
    return create_app(replace(settings, **changes), synth=synth, store=store, clock=lambda: NOW)


def _metric(base: str, name: str) -> float:
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("fmt", ["wav", "mp3", "opus"])
def test_first_sentence_arrives_before_the_rest_is_made_and_the_stream_is_kept(
    settings: ServiceSettings,
    store: AudioStore,
    s3: Any,
    dynamodb: Any,
    gated: GatedSynthesizer,
    fmt: str,
) -> None:
    with (
        serving(_app(settings, store, gated)) as base,
        httpx.stream(
            "POST",
            f"{base}/tts/stream",
            json={"text": TEXT, "response_format": fmt},
            timeout=WAIT,
        ) as response,
    ):
        assert response.status_code == 200
        assert "content-length" not in response.headers
        assert response.headers["transfer-encoding"] == "chunked"
        chunks = response.iter_raw()
        received = next(chunks)
        # The synthesizer is still held after its first sentence: this was streamed.
        assert not gated.gate.is_set()
        assert gated.sentences_made == 1
        gated.gate.set()
        for chunk in chunks:
            received += chunk
        headers = response.headers

    # The object is the stream (a WAV with its real sizes), under the advertised URL.
    stored = httpx.get(headers["x-tempaudio-url"])
    assert stored.status_code == 200
    if fmt == "wav":
        assert received[4:8] == received[40:44] == UNKNOWN_SIZE.to_bytes(4, "little")
        assert stored.content[44:] == received[44:]
    else:
        assert stored.content == received
    key = f"temp-audio/{headers['x-tempaudio-date']}/{headers['x-tempaudio-audio-id']}."
    (stored_key,) = list_keys(s3, settings.bucket)
    assert stored_key.startswith(key)
    seconds, _ = decoded_seconds(stored.content, fmt)
    (item,) = live_items(dynamodb, settings.table)
    assert seconds == pytest.approx(float(item["duration"]["N"]), abs=0.1)  # type: ignore[index]


def test_a_client_that_disconnects_frees_its_worker_and_leaves_nothing(
    settings: ServiceSettings, store: AudioStore, s3: Any, dynamodb: Any, gated: GatedSynthesizer
) -> None:
    app = _app(settings, store, gated, synth_workers=1, synth_queue=0)
    with serving(app) as base:
        with httpx.stream(
            "POST", f"{base}/tts/stream", json={"text": TEXT}, timeout=WAIT
        ) as response:
            assert next(response.iter_raw())
        # The client is gone; the sentence in progress finishes, and no other is made.
        gated.gate.set()
        assert gated.closed.wait(WAIT)
        pool = app.state.services.pool
        for _ in range(WAIT * 20):
            if pool.admitted == 0:
                break
            threading.Event().wait(0.05)
        assert pool.admitted == 0
        assert gated.sentences_made < 3
        assert _metric(base, 'tempaudio_streams_total{outcome="client_gone"}') == 1
        # The one worker serves the next request.
        assert (
            httpx.post(f"{base}/tts/sync", json={"text": "next"}, timeout=WAIT).status_code == 200
        )
    (kept,) = list_keys(s3, settings.bucket)  # the sync request's, nothing of the stream
    assert kept.endswith(".wav")
    assert len(scan_items(dynamodb, settings.table)) == 1


def test_a_stream_counts_against_the_capacity_so_load_shedding_still_holds(
    settings: ServiceSettings, store: AudioStore, gated: GatedSynthesizer
) -> None:
    with (
        serving(_app(settings, store, gated, synth_workers=1, synth_queue=0)) as base,
        httpx.stream("POST", f"{base}/tts/stream", json={"text": TEXT}, timeout=WAIT) as stream,
    ):
        assert next(stream.iter_raw())
        shed = httpx.post(f"{base}/tts/stream", json={"text": "b"}, timeout=WAIT)
        assert shed.status_code == 503
        assert shed.json()["error"] == "overloaded"
        assert int(shed.headers["retry-after"]) >= 1
        gated.gate.set()


class Silent(ToneSynthesizer):
    def sentences(self, text: str, voice: str, options: SynthesisOptions) -> Iterator[bytes]:
        raise NoSpeech("the text holds nothing to say")
        yield b""


def test_refusals_before_the_first_sentence_are_json(
    settings: ServiceSettings, store: AudioStore, s3: Any
) -> None:
    with serving(_app(settings, store, Silent())) as base:
        silent = httpx.post(f"{base}/tts/stream", json={"text": "..."}, timeout=WAIT)
        unknown = httpx.post(f"{base}/tts/stream", json={"text": "a", "voice": "x"}, timeout=WAIT)
        assert _metric(base, 'tempaudio_streams_total{outcome="refused"}') == 1
    assert (silent.status_code, silent.json()["error"]) == (422, "no_speech")
    assert (unknown.status_code, unknown.json()["error"]) == (422, "unknown_voice")
    assert list_keys(s3, settings.bucket) == set()


class FailingPut(AudioStore):
    def put_audio(self, key: str, audio: bytes, content_type: str = "audio/wav") -> None:
        raise StorageUnavailable("could not write audio to S3: Connection refused")


def test_a_stream_that_cannot_be_stored_is_cut_before_its_end(
    settings: ServiceSettings, store: AudioStore, s3: Any, dynamodb: Any, tone: ToneSynthesizer
) -> None:
    failing = FailingPut(s3, dynamodb, bucket=settings.bucket, table=settings.table)
    with serving(_app(settings, failing, tone)) as base:
        with httpx.stream("POST", f"{base}/tts/stream", json={"text": TEXT}, timeout=WAIT) as r:
            assert r.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                b"".join(r.iter_raw())
        assert _metric(base, 'tempaudio_streams_total{outcome="cut"}') == 1
    assert list_keys(s3, settings.bucket) == set()
    assert live_items(dynamodb, settings.table) == []


def _audit_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.audit for r in caplog.records if r.name == "tempaudio.audit"]  # type: ignore[attr-defined]


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def _wait_for_metric(base: str, name: str) -> None:
    for _ in range(WAIT * 20):
        if _metric(base, name) >= 1:
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"{name} never counted")


def test_a_stream_read_to_its_end_is_complete_and_its_audit_line_names_the_audio(
    settings: ServiceSettings,
    store: AudioStore,
    tone: ToneSynthesizer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with serving(_app(settings, store, tone)) as base:
        for _ in range(3):
            response = httpx.post(f"{base}/tts/stream", json={"text": TEXT}, timeout=WAIT)
            assert response.status_code == 200
        assert _metric(base, 'tempaudio_streams_total{outcome="complete"}') == 3
        assert _metric(base, 'tempaudio_streams_total{outcome="client_gone"}') == 0
    lines = [line for line in _audit_lines(caplog) if line["route"] == "/tts/stream"]
    assert len(lines) == 3
    for line in lines:
        assert (line["outcome"], line["status"], line["stream"]) == ("ok", 200, "complete")
        assert len(line["audio_id"]) == 36
    assert not any("went away" in r.getMessage() for r in caplog.records)
    assert _errors(caplog) == []


def test_a_reader_that_stalls_is_cut_as_client_gone_without_error_logs(
    settings: ServiceSettings,
    store: AudioStore,
    s3: Any,
    tone: ToneSynthesizer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    long_text = (
        "A sentence that goes on for quite a while. " * 100
    )  # 215 s of tone, 9.5 MB: more than socket buffers hold
    app = _app(settings, store, tone, body_timeout_seconds=1)
    with serving(app) as base:
        port = int(base.rsplit(":", 1)[1])
        with socket.socket() as stalled:
            stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            stalled.connect(("127.0.0.1", port))
            body = json.dumps({"text": long_text, "length_scale": 5.0}).encode()
            stalled.sendall(
                b"POST /tts/stream HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            # It never reads: the send times out after TEMPAUDIO_BODY_TIMEOUT (1 s here).
            _wait_for_metric(base, 'tempaudio_streams_total{outcome="client_gone"}')
        assert app.state.services.pool.admitted == 0
    (line,) = [line for line in _audit_lines(caplog) if line["route"] == "/tts/stream"]
    assert (line["outcome"], line["status"], line["stream"]) == ("client_gone", 499, "client_gone")
    assert "audio_id" not in line
    assert _errors(caplog) == []
    assert list_keys(s3, settings.bucket) == set()


def test_a_kept_stream_whose_storage_fails_is_audited_as_the_failure(
    settings: ServiceSettings,
    s3: Any,
    dynamodb: Any,
    tone: ToneSynthesizer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    failing = FailingPut(s3, dynamodb, bucket=settings.bucket, table=settings.table)
    with serving(_app(settings, failing, tone)) as base:
        with (
            httpx.stream("POST", f"{base}/tts/stream", json={"text": TEXT}, timeout=WAIT) as r,
            pytest.raises(httpx.HTTPError),
        ):
            b"".join(r.iter_raw())
        _wait_for_metric(base, 'tempaudio_streams_total{outcome="cut"}')
    (line,) = [line for line in _audit_lines(caplog) if line["route"] == "/tts/stream"]
    assert (line["outcome"], line["status"], line["stream"]) == ("storage_unavailable", 503, "cut")
    assert "audio_id" not in line
    assert _errors(caplog) == []


def test_time_to_first_audio_is_observed_once_when_the_first_chunk_leaves(
    settings: ServiceSettings, store: AudioStore, gated: GatedSynthesizer
) -> None:
    count = "tempaudio_stream_first_audio_seconds_count"
    with serving(_app(settings, store, gated)) as base:
        with httpx.stream("POST", f"{base}/tts/stream", json={"text": TEXT}, timeout=WAIT) as r:
            chunks = r.iter_raw()
            next(chunks)
            # Observed with the first chunk, while the rest is still held back.
            _wait_for_metric(base, count)
            assert not gated.gate.is_set()
            gated.gate.set()
            b"".join(chunks)
        _wait_for_metric(base, 'tempaudio_streams_total{outcome="complete"}')
        assert _metric(base, count) == 1
        # A stream refused before its first sentence has no time to first audio.
        refused = httpx.post(f"{base}/tts/stream", json={"text": "a", "voice": "x"}, timeout=WAIT)
        assert refused.status_code == 422
        assert _metric(base, count) == 1


class OverTheCapAfterOne(ToneSynthesizer):
    """Says the first sentence, then finds the audio over the cap (as the decoded count does)."""

    def sentences(self, text: str, voice: str, options: SynthesisOptions) -> Iterator[bytes]:
        for index, pcm in enumerate(super().sentences(text, voice, options)):
            if index == 1:
                raise AudioTooLong("the text would make more audio than allowed")
            yield pcm


SSE = {"model": "tts-1", "input": TEXT, "voice": "alloy", "stream_format": "sse"}


def _events(body: bytes) -> list[dict[str, Any]]:
    blocks = body.decode().split("\n\n")
    assert blocks[-1] == ""  # the body ends where an event does: it is whole, not cut
    return [json.loads(block.removeprefix("data: ")) for block in blocks[:-1]]


@pytest.mark.parametrize(
    ("synth", "failing", "body", "code", "kind"),
    [
        (OverTheCapAfterOne, False, SSE, "audio_too_long", "invalid_request_error"),
        (ToneSynthesizer, True, SSE | {"policy": "default"}, "storage_unavailable", "server_error"),
    ],
)
def test_a_cut_sse_stream_ends_with_an_error_event_in_openai_s_shape(
    settings: ServiceSettings,
    store: AudioStore,
    s3: Any,
    dynamodb: Any,
    synth: type[ToneSynthesizer],
    failing: bool,
    body: dict[str, Any],
    code: str,
    kind: str,
) -> None:
    if failing:
        store = FailingPut(s3, dynamodb, bucket=settings.bucket, table=settings.table)
    with serving(_app(settings, store, synth())) as base:
        with httpx.stream("POST", f"{base}/v1/audio/speech", json=body, timeout=WAIT) as answer:
            assert answer.status_code == 200
            received = answer.read()  # to its end: no reset
        assert _metric(base, 'tempaudio_streams_total{outcome="cut"}') == 1
    *deltas, last = _events(received)
    assert deltas
    assert {event["type"] for event in deltas} == {"speech.audio.delta"}
    assert set(last) == {"type", "error"}
    assert last["type"] == "error"
    assert set(last["error"]) == {"message", "type", "param", "code"}
    assert (last["error"]["code"], last["error"]["type"]) == (code, kind)
    assert list_keys(s3, settings.bucket) == set()


def test_the_openai_client_raises_the_error_event_of_a_cut_stream(
    settings: ServiceSettings, store: AudioStore
) -> None:
    with serving(_app(settings, store, OverTheCapAfterOne())) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="not-checked", max_retries=0)
        with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=TEXT, response_format="pcm", stream_format="sse"
        ) as response:
            # The client's own reader of server-sent events (as for its other streams).
            events = openai.Stream(cast_to=object, response=response.http_response, client=client)
            deltas: list[Any] = []
            with pytest.raises(openai.APIError) as raised:
                deltas.extend(events)
    assert deltas
    assert {event["type"] for event in deltas} == {"speech.audio.delta"}
    assert raised.value.code == "audio_too_long"
    assert raised.value.type == "invalid_request_error"
    assert raised.value.param == "input"
    assert "more audio than allowed" in raised.value.message


class ItemSeesItsObject(AudioStore):
    """Records, at each PutItem, whether the item's audio object is already in the bucket."""

    seen: list[bool]

    def put_item(self, item: dict[str, Any]) -> None:
        key = str(item["s3_url"]).split("/", 3)[3]
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
            self.seen.append(True)
        except Exception:  # noqa: BLE001 - botocore's 404 here means: not there yet
            self.seen.append(False)
        super().put_item(item)


def test_a_kept_stream_writes_its_item_only_once_its_object_exists(
    settings: ServiceSettings, s3: Any, dynamodb: Any, tone: ToneSynthesizer
) -> None:
    # Its id and URL went out in the headers: a lookup must never find the item before
    # the object (a sync answer, whose id nobody knows yet, writes both at once).
    watching = ItemSeesItsObject(s3, dynamodb, bucket=settings.bucket, table=settings.table)
    watching.seen = []
    watching.ensure_resources()
    with (
        serving(_app(settings, watching, tone)) as base,
        httpx.stream("POST", f"{base}/tts/stream", json={"text": TEXT}, timeout=WAIT) as r,
    ):
        assert r.status_code == 200
        b"".join(r.iter_raw())
    assert watching.seen == [True]
