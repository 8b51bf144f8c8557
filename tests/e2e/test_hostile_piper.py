"""The real voice under hostile text: bounded decoding, bounded audio, nothing empty stored."""

from __future__ import annotations

import signal
import socket
import threading
from dataclasses import replace
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from piper import PiperVoice
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.errors import AudioTooLong, InvalidRequest
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.speech.chunking import MAX_PHONEMIZE_CHARS
from tempaudio_service.speech.encoders import wav_bytes
from tempaudio_service.speech.synth import PiperSynthesizer, SynthesisOptions
from tempaudio_service.storage.store import AudioStore
from tests.conftest import (
    documents_file,
    lexicon_document,
    list_keys,
    policy_document,
    scan_items,
    wait_until_ready,
)
from tests.e2e.test_piper_service import check_wav, start_program

pytestmark = pytest.mark.piper
VOICE = "en_US-joe-medium"


@pytest.fixture(scope="module")
def capped() -> PiperSynthesizer:
    """One narrow session, at most 5 s of audio a request."""
    return PiperSynthesizer(idle_threads=1, max_audio_seconds=5)


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Phoneme ids of every decoder call, in order."""
    calls: list[int] = []
    original = PiperVoice.phoneme_ids_to_audio

    def spy(self: PiperVoice, ids: list[int], *args: Any, **kwargs: Any) -> Any:
        calls.append(len(ids))
        return original(self, ids, *args, **kwargs)

    monkeypatch.setattr(PiperVoice, "phoneme_ids_to_audio", spy)
    return calls


def ids_for(phonemes: int) -> int:
    """Piper interleaves a pad after each phoneme, between a start and an end id."""
    return 2 * phonemes + 3


@pytest.mark.parametrize(
    ("text", "length_scale", "limit"),
    [
        # One "word" to espeak: decoded in one pass of ~1,000-4,800 phonemes before (5.5 GB).
        ("hello-" * 60, None, 150),
        ("qzxj" * 12, None, 150),
        # Slower speech renders more audio per phoneme: shorter pieces.
        ("The quick brown fox jumps over the lazy dog. " * 3, 5.0, 30),
    ],
)
def test_no_decoder_call_is_over_the_piece_limit(
    piper: Any, decoded: list[int], text: str, length_scale: float | None, limit: int
) -> None:
    result = piper.synthesize(text, VOICE, SynthesisOptions(length_scale=length_scale))
    check_wav(wav_bytes(result.pcm, result.sample_rate), result.duration_seconds)
    assert len(decoded) >= 2
    assert max(decoded) <= ids_for(limit)


def test_an_amplifying_request_is_refused_before_any_decoding(
    capped: PiperSynthesizer, decoded: list[int]
) -> None:
    # 5 KB that made 2.5 hours of silence-padded audio (a 398 MB WAV) before.
    with pytest.raises(AudioTooLong, match=r"at least \d+ s of audio"):
        capped.synthesize("A. " * 1666, VOICE, SynthesisOptions(sentence_silence=5.0))
    assert decoded == []


def test_audio_over_the_cap_is_stopped_while_decoding(
    capped: PiperSynthesizer, decoded: list[int]
) -> None:
    text = "The drivers finished every route this week, and the team packed the boxes. " * 2
    # About 180 phonemes: the low estimate (under 4 s) lets it start, and the decoded
    # audio (about 8 s) stops it after the first sentence.
    with pytest.raises(AudioTooLong, match="the limit is 5 s"):
        capped.synthesize(text, VOICE, SynthesisOptions())
    assert len(decoded) == 2


@pytest.fixture
def phonemized(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text of every phonemizer (espeak) call, in order."""
    calls: list[str] = []
    original = PiperVoice.phonemize

    def spy(self: PiperVoice, text: str) -> Any:
        calls.append(text)
        return original(self, text)

    monkeypatch.setattr(PiperVoice, "phonemize", spy)
    return calls


@pytest.mark.parametrize(
    "text",
    [
        "word " * 1000,  # one run-on sentence, no mark at all
        "The team packed the boxes. " * 185,
        "x" * 5000,  # one "word"
    ],
)
def test_no_phonemizer_call_reads_more_than_a_piece_of_text(
    capped: PiperSynthesizer, phonemized: list[str], decoded: list[int], text: str
) -> None:
    # Each was one espeak call on all 5,000 characters, holding the GIL throughout.
    with pytest.raises(AudioTooLong):
        capped.synthesize(text, VOICE, SynthesisOptions())
    assert len(phonemized) >= 5
    assert max(len(piece) for piece in phonemized) <= MAX_PHONEMIZE_CHARS
    assert decoded == []


def test_aliases_over_the_text_limit_are_refused_before_anything_is_phonemized(
    tmp_path: Any,
    settings: ServiceSettings,
    store: AudioStore,
    piper: Any,
    phonemized: list[str],
) -> None:
    # 5,000 characters said as 833,000: one espeak call that stalled /healthz for 2 s.
    path = documents_file(
        tmp_path / "policies.yaml",
        lexicon_document("zz", [{"grapheme": "zz", "alias": "a " * 249 + "a"}]),
        policy_document("lex", settings.bucket, settings.table, lexicons=["zz"]),
    )
    file_settings = replace(settings, policy_source="file", policy_file=path)
    with TestClient(create_app(file_settings, synth=piper, store=store)) as client:
        response = client.post("/tts/sync", json={"text": "zz " * 1666, "policy": "lex"})
    assert (response.status_code, response.json()["error"]) == (422, "text_too_long")
    assert phonemized == []


@pytest.mark.parametrize("text", ["a\x00b", "\ud800 surrogate"])
def test_text_espeak_cannot_take_is_the_callers_error(piper: Any, text: str) -> None:
    with pytest.raises(InvalidRequest, match="cannot be spoken"):
        piper.synthesize(text, VOICE, SynthesisOptions())


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # Each returned 200 with a 44-byte WAV of no frames, stored in S3 and DynamoDB.
        ({"text": "."}, "no_speech"),
        ({"text": "\u200b\u200b\u200b"}, "no_speech"),
        ({"text": "... -- ..."}, "no_speech"),
        ({"text": "[[ \u2603\u2603 ]]"}, "no_speech"),  # raw phonemes the voice does not know
        ({"text": "A. " * 1666, "sentence_silence": 5}, "audio_too_long"),
    ],
)
def test_nothing_is_stored_for_text_without_speech_or_over_the_cap(
    client: TestClient, settings: ServiceSettings, s3: Any, dynamodb: Any, body: Any, code: str
) -> None:
    response = client.post("/tts/sync", json=body)
    assert (response.status_code, response.json()["error"]) == (422, code), response.text
    assert list_keys(s3, settings.bucket) == set()
    assert scan_items(dynamodb, settings.table) == []


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(min_size=1, max_size=24))
def test_no_unicode_text_yields_a_5xx(client: TestClient, text: str) -> None:
    response = client.post("/tts/sync", json={"text": text})
    assert response.status_code in {200, 422}, response.text


def test_sigterm_drains_admitted_work_and_refuses_new_work(tmp_path: Any) -> None:
    """The real program: readiness false and 503 for new work at once, queued work done."""
    process, base = start_program(
        TEMPAUDIO_SYNTH_WORKERS="1",
        TEMPAUDIO_ONNX_IDLE_THREADS="1",
        TEMPAUDIO_SYNTH_QUEUE="4",
        TEMPAUDIO_DRAIN_SECONDS="120",
    )
    text = "The quick brown fox jumps over the lazy dog. It was not amused at all. " * 2
    answers: list[httpx.Response] = []
    try:
        wait_until_ready(process, base)
        senders = [
            threading.Thread(
                target=lambda: answers.append(
                    # Four syntheses that queue: the same text would be one (single flight).
                    httpx.post(f"{base}/tts/sync", json={"text": text, "cache": False}, timeout=120)
                )
            )
            for _ in range(4)
        ]
        for sender in senders:
            sender.start()
        while "tempaudio_synthesis_queue_depth 3.0" not in httpx.get(f"{base}/metrics").text:
            assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        # The process keeps listening while it drains: probes and new work learn at once.
        ready = httpx.get(f"{base}/readyz")
        assert (ready.status_code, ready.json()) == (503, {"status": "draining"})
        refused = httpx.post(f"{base}/tts/sync", json={"text": "one more"})
        assert (refused.status_code, refused.json()["error"]) == (503, "shutting_down")
        for sender in senders:
            sender.join(120)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert [answer.status_code for answer in answers] == [200] * 4
    output = process.stdout.read() if process.stdout else ""
    assert "draining: 4 request(s) admitted" in output
    assert "Traceback" not in output


def test_drain_seconds_zero_refuses_the_queue_with_json(
    settings: ServiceSettings, store: AudioStore, capped: PiperSynthesizer
) -> None:
    """At the end of the drain time, what is left answers 503 JSON, never a plain 500."""
    app = create_app(replace(settings, drain_seconds=0), synth=capped, store=store)
    with TestClient(app) as client:
        client.portal.call(app.state.services.drain)  # type: ignore[union-attr]
        response = client.post("/tts/sync", json={"text": "after the drain"})
    assert response.status_code == 503
    assert response.json()["error"] == "shutting_down"


def test_trickling_clients_are_capped_and_timed_out() -> None:
    """The program's uvicorn wiring: at most TEMPAUDIO_MAX_CONNECTIONS at once, and a body
    that does not arrive within TEMPAUDIO_BODY_TIMEOUT is answered 408 (they stayed
    connected indefinitely before)."""
    process, base = start_program(TEMPAUDIO_MAX_CONNECTIONS="3", TEMPAUDIO_BODY_TIMEOUT="5")
    port = int(base.rsplit(":", 1)[1])
    trickling: list[socket.socket] = []
    try:
        wait_until_ready(process, base)
        # uvicorn answers 503 once the connections open reach the cap (this one included).
        for _ in range(2):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(
                b"POST /tts/sync HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b'Content-Length: 100\r\n\r\n{"te'
            )
            trickling.append(sock)
        refused = httpx.post(f"{base}/tts/sync", json={"text": "a third"}, timeout=10)
        assert refused.status_code == 503
        for sock in trickling:
            sock.settimeout(30)
            # The head and the body may arrive in separate segments.
            answer = b""
            while b"}" not in answer and (chunk := sock.recv(4096)):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
            assert b'"body_timeout"' in answer
    finally:
        for sock in trickling:
            sock.close()
        process.terminate()
        process.wait(30)


@pytest.mark.parametrize("path", ["/tts/sync", "/tts/stream"])
@pytest.mark.parametrize("kind", ["digits", "telephone"])
def test_digits_said_one_by_one_over_the_cap_are_refused_before_any_decoding(
    client: TestClient, decoded: list[int], s3: Any, settings: ServiceSettings, kind: str, path: str
) -> None:
    """4,900 digits said one by one: about 1,400 s of audio. The phoneme estimate (about
    490 s) let them decode up to the 600 s cap, 35-63 s of CPU and then a 422 (a stream sent
    594 s and was cut); each digit's name counted, they are refused before the first piece."""
    digits = "4815162342" * 490
    ssml = f'<speak><say-as interpret-as="{kind}">{digits}</say-as></speak>'
    response = client.post(path, json={"text": ssml, "text_type": "ssml"})
    assert (response.status_code, response.json()["error"]) == (422, "audio_too_long")
    assert "at least" in response.json()["message"]
    assert decoded == []
    assert list_keys(s3, settings.bucket) == set()


@pytest.mark.parametrize(
    ("text", "text_type"),
    [(":::", "text"), ("!?", "text"), ("¿ — …", "text"), ("<speak>:::</speak>", "ssml")],
)
def test_punctuation_alone_is_no_speech_not_its_name(
    client: TestClient, decoded: list[int], text: str, text_type: str
) -> None:
    # espeak names the marks: ":::" was said "colon colon colon" and stored.
    response = client.post("/tts/sync", json={"text": text, "text_type": text_type})
    assert (response.status_code, response.json()["error"]) == (422, "no_speech")
    assert decoded == []
