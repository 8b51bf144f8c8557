"""Shared fixtures: moto's server on loopback, fresh buckets and tables, the real Piper voice."""

from __future__ import annotations

import contextlib
import io
import math
import re
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
import yaml

from tempaudio_service.app import shorthand_store
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.speech.script import Said, Script
from tempaudio_service.speech.synth import SynthesisOptions, Timing, VoiceInfo
from tempaudio_service.storage import layout
from tempaudio_service.storage.embedded import LocalAws
from tempaudio_service.storage.store import AudioStore, make_dynamodb_client, make_s3_client

pytest_plugins = ["tests.kube_fixtures"]


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server on 127.0.0.1, spoken to over HTTP like real AWS."""
    with LocalAws() as local:
        yield local.endpoint_url


@pytest.fixture
def aws_env(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for programs under test that talk to the moto endpoint."""
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "TEMPAUDIO_S3_ENDPOINT_URL": moto_endpoint,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def settings(moto_endpoint: str) -> ServiceSettings:
    """Settings for a fresh bucket and table, so tests never see each other's audio."""
    suffix = uuid.uuid4().hex[:12]
    return replace(
        ServiceSettings(),
        bucket=f"tempaudio-test-{suffix}",
        table=f"tempaudio-test-{suffix}",
        local_aws=True,
        synth_workers=2,
        synth_queue=2,
        io_timeout_seconds=2,
    ).with_endpoint(moto_endpoint)


@pytest.fixture
def store(settings: ServiceSettings) -> AudioStore:
    audio_store = shorthand_store(settings)
    audio_store.ensure_resources()
    return audio_store


@pytest.fixture
def s3(moto_endpoint: str):  # type: ignore[no-untyped-def]
    return make_s3_client(
        region="us-east-1", endpoint_url=moto_endpoint, timeout_seconds=5, local=True
    )


@pytest.fixture
def dynamodb(moto_endpoint: str):  # type: ignore[no-untyped-def]
    return make_dynamodb_client(
        region="us-east-1", endpoint_url=moto_endpoint, timeout_seconds=5, local=True
    )


def put_object_created_at(s3, bucket: str, key: str, created: datetime, body: bytes = b"x") -> None:  # type: ignore[no-untyped-def]
    """PUT over HTTP while moto's S3 clock says ``created`` (moto cannot backdate otherwise)."""
    naive_utc = created.astimezone(UTC).replace(tzinfo=None)
    with mock.patch("moto.s3.models.utcnow", return_value=naive_utc):
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def wait_until_ready(process: subprocess.Popen[str], base: str, timeout: float = 90) -> None:
    """Poll ``base``/readyz until 200; fail with the program's output if it exits first."""
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"{base}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{base} did not become ready"
        time.sleep(0.2)


def list_keys(s3, bucket: str, prefix: str = "") -> set[str]:  # type: ignore[no-untyped-def]
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.update(entry["Key"] for entry in page.get("Contents", []))
    return keys


def scan_items(dynamodb, table: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """The audio items (quota counters and repeat cache entries live beside them)."""
    items: list[dict[str, object]] = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        items.extend(item for item in page["Items"] if layout.is_audio_item(item))
    return items


def policy_document(name: str, bucket: str, table: str, **spec: Any) -> dict[str, Any]:
    """A TempAudioPolicy of the default namespace on ``bucket`` and ``table``, retention 1h
    unless ``spec`` says otherwise (``spec`` on top)."""
    return {
        "apiVersion": "tempaudio.dev/v1alpha1",
        "kind": "TempAudioPolicy",
        "metadata": {"name": name},
        "spec": {"retention": "1h", "storage": {"bucket": bucket},
                 "dynamodb": {"table": table}, **spec},
    }  # fmt: skip


def lexicon_document(name: str, entries: list[dict[str, str]]) -> dict[str, Any]:
    """A TempAudioLexicon of the default namespace."""
    return {
        "apiVersion": "tempaudio.dev/v1alpha1",
        "kind": "TempAudioLexicon",
        "metadata": {"name": name},
        "spec": {"entries": entries},
    }


def documents_file(path: Path, *documents: dict[str, Any]) -> Path:
    """A policy file (``--policy``) holding ``documents``."""
    path.write_text(yaml.safe_dump_all(documents))
    return path


def undescribed(schema: dict[str, Any], path: str = "") -> list[str]:
    """The fields of a CRD's schema without a description (``kubectl explain`` shows none)."""
    missing: list[str] = []
    # The API server allows nothing but a type on the object's own metadata.
    if "type" in schema and not schema.get("description") and path != ".metadata":
        missing.append(path or "(root)")
    for name, child in (schema.get("properties") or {}).items():
        missing += undescribed(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        missing += undescribed(schema["items"], f"{path}[]")
    return missing


def live_items(dynamodb, table: str) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    """Items that promise audio: an undone write leaves a tombstone, which promises none."""
    return [item for item in scan_items(dynamodb, table) if "revoked" not in item]


class MovableClock:
    """An injected clock the test moves by setting ``now``."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class ToneSynthesizer:
    """A fast stand-in for Piper: a sine tone whose length follows the text (for API tests)."""

    sample_rate = 22050

    def __init__(self) -> None:
        self.calls = 0
        self._voices: Mapping[str, VoiceInfo] = {
            "en_US-joe-medium": VoiceInfo(
                name="en_US-joe-medium",
                sample_rate=self.sample_rate,
                language="en_US",
                quality="medium",
                num_speakers=1,
                word_timings=True,
            ),
            "xx-multi": VoiceInfo(
                name="xx-multi",
                sample_rate=self.sample_rate,
                language="xx",
                quality="low",
                num_speakers=2,
                speakers={"alice": 0, "bob": 1},
            ),
        }

    @property
    def voices(self) -> Mapping[str, VoiceInfo]:
        return self._voices

    def declare(self, voices: Mapping[str, object]) -> None:
        """Declared voices are the Piper synthesizer's (tests/e2e/test_voices.py)."""

    def resident(self) -> set[str]:
        return set(self._voices)

    def failed(self) -> dict[str, object]:
        return {}

    def speak(
        self,
        script: Script,
        voice: str,
        options: SynthesisOptions,
        *,
        timings: list[Timing] | None = None,
        early: bool = False,
        background: bool = False,
    ) -> Iterator[bytes]:
        """The text said (``sentences``), pauses aside; each word of a plain script is
        marked where its sentence starts plus 10 ms per character before it."""
        text = " ".join(item.text for item in script if isinstance(item, Said))
        if timings is not None:
            for match in re.finditer(r"\S+", text):
                timings.append(Timing("word", int(self.sample_rate * 0.01 * match.start()),
                                      match.start(), match.end()))  # fmt: skip
        return self.sentences(text, voice, options)

    def sentences(self, text: str, voice: str, options: SynthesisOptions) -> Iterator[bytes]:
        """One tone per sentence, 10 ms per character."""
        self.calls += 1
        for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
            frames = int(self.sample_rate * 0.01 * len(sentence) * (options.length_scale or 1.0))
            yield b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / self.sample_rate)))
                for i in range(frames)
            )


@pytest.fixture
def tone() -> ToneSynthesizer:
    return ToneSynthesizer()


@pytest.fixture(scope="session")
def piper():  # type: ignore[no-untyped-def]
    """The real bundled Piper voice, loaded once per test session."""
    from tempaudio_service.speech.synth import PiperSynthesizer

    return PiperSynthesizer()


@contextlib.contextmanager
def serving(app: Any, **options: Any) -> Iterator[str]:
    """Run ``app`` under a real uvicorn, with the service's connection layer
    (``connections.server_options``, given ``options``), on a free loopback port; yield its
    base URL.

    For what TestClient cannot show: chunks as they are sent, and a client that goes away.
    """
    import threading

    import uvicorn

    from tempaudio_service.http.connections import server_options

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="on", **server_options(**options))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(600):
            if server.started:
                break
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def decoded_seconds(content: bytes, fmt: str, rate: int | None = None) -> tuple[float, int]:
    """Duration and sample rate of audio as a real decoder (FFmpeg, through PyAV) reads it;
    raw pcm has no header, so its ``rate`` is given."""
    if fmt == "pcm":
        assert rate is not None
        return len(content) / 2 / rate, rate
    import av

    with av.open(io.BytesIO(content)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        # Opus decodes at 48 kHz whatever it was encoded at; the header keeps the input rate.
        return samples / stream.rate, stream.rate
