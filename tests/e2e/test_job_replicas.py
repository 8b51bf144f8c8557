"""Two replicas of the real program on one moto (SQS, S3, DynamoDB): a job submitted to
one, that one killed with SIGKILL while it works the job, and the other completes it; each
part is in the audio once, in its place (the audio equals one synthesis of the whole)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

from tempaudio_service.app import shorthand_store
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.jobs.parts import split
from tempaudio_service.speech.script import Script, plain
from tempaudio_service.speech.voices import SynthesisOptions
from tempaudio_service.storage.aws_clients import make_sqs_client
from tempaudio_service.storage.job_queue import ensure_queue
from tests.e2e.speech import STEADY
from tests.e2e.test_jobs import article

pytestmark = pytest.mark.piper
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def replica(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "tempaudio-service")],
        env={**os.environ, **env, "TEMPAUDIO_PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # the voice loads in a few seconds
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            assert process.poll() is None, "the replica exited at start"
            time.sleep(0.1)
        yield process, base
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_a_job_survives_the_replica_that_took_it(
    aws_env: dict[str, str], moto_endpoint: str, piper: object
) -> None:
    suffix = uuid.uuid4().hex[:10]
    sqs = make_sqs_client(
        region="us-east-1", endpoint_url=moto_endpoint, timeout_seconds=5, local=True
    )
    env = {
        **aws_env,
        "TEMPAUDIO_BUCKET": f"jobs-{suffix}",
        "TEMPAUDIO_TABLE": f"jobs-{suffix}",
        "TEMPAUDIO_LOCAL_AWS": "false",
        "TEMPAUDIO_JOBS_QUEUE_URL": ensure_queue(sqs, f"jobs-{suffix}"),
        "TEMPAUDIO_JOBS_PART_CHARS": "300",
        "TEMPAUDIO_JOBS_VISIBILITY_SECONDS": "4",
        "TEMPAUDIO_SYNTH_WORKERS": "1",
    }
    storage = replace(ServiceSettings(), bucket=f"jobs-{suffix}", table=f"jobs-{suffix}")
    shorthand_store(storage.with_endpoint(moto_endpoint)).ensure_resources()
    text = article(4_000, seed=3)
    with replica(env) as (first, first_url), replica(env) as (_, second_url):
        answer = httpx.post(f"{first_url}/tts/jobs", json={"text": text, **STEADY}, timeout=30)
        assert answer.status_code == 202, answer.text
        location = answer.headers["location"]
        for _ in range(600):
            job = httpx.get(f"{second_url}{location}", timeout=10).json()
            if job["progress"]["parts_done"] >= 2:
                break
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # mid-part: its message comes back to the other
        first.wait()
        for _ in range(2400):
            job = httpx.get(f"{second_url}{location}", timeout=10).json()
            if job["status"] != "running" and job["status"] != "queued":
                break
            time.sleep(0.25)
        assert job["status"] == "completed", job
        download = httpx.get(job["s3_url"], timeout=30)
    joined, _ = soundfile.read(io.BytesIO(download.content), dtype="int16")
    # Each part once, in its place: the parts said one after the other, sample for sample,
    # and within 1% of the whole said at once (espeak reads a paragraph's end a little
    # differently where the whole's phonemizer cuts its text).
    parts = split(plain(text), 300, len(text), 0.0)
    assert np.array_equal(joined, np.concatenate([said(piper, p.script) for p in parts]))
    assert joined.size == pytest.approx(said(piper, plain(text)).size, rel=0.01)


def said(piper: object, script: Script) -> np.ndarray:
    steady = SynthesisOptions(noise_scale=0.0, noise_w=0.0)
    pieces = piper.speak(script, "en_US-joe-medium", steady)  # type: ignore[attr-defined]
    return np.frombuffer(b"".join(pieces), "<i2")
