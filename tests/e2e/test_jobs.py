"""Jobs with the real voice on moto's SQS, S3 and DynamoDB: a long job's audio decodes at
its reported length and its word marks index the whole text; the parts joined say what one
synthesis of the whole says."""

from __future__ import annotations

import io
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.speech.script import plain
from tempaudio_service.speech.voices import SynthesisOptions
from tempaudio_service.storage.aws_clients import make_sqs_client
from tempaudio_service.storage.job_queue import ensure_queue
from tempaudio_service.storage.store import AudioStore
from tests.e2e.speech import STEADY, marks_of

pytestmark = pytest.mark.piper

_WORDS = [
    "river",
    "mountain",
    "quietly",
    "library",
    "seven",
    "morning",
    "garden",
    "window",
    "history",
    "careful",
    "station",
    "twenty",
    "yellow",
    "between",
    "market",
    "winter",
    "picture",
    "simple",
    "journey",
    "across",
]


def article(characters: int, seed: int = 7) -> str:
    """Sentences of plain words, a paragraph every five, about ``characters`` long."""
    pick = random.Random(seed)
    sentences: list[str] = []
    length = 0
    while length < characters:
        words = [pick.choice(_WORDS) for _ in range(pick.randint(6, 14))]
        sentence = " ".join(words).capitalize() + pick.choice([".", ".", "?", "!"])
        sentences.append(sentence)
        length += len(sentence) + 1
    paragraphs = [" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5)]
    return "\n\n".join(paragraphs)[:characters].rsplit(" ", 1)[0] + "."


@pytest.fixture
def jobs(settings: ServiceSettings, store: AudioStore, piper: Any) -> Iterator[TestClient]:
    assert settings.s3_endpoint_url is not None
    sqs = make_sqs_client(
        region="us-east-1", endpoint_url=settings.s3_endpoint_url, timeout_seconds=5, local=True
    )
    queued = replace(
        settings,
        jobs_queue_url=ensure_queue(sqs, f"jobs-{uuid.uuid4().hex[:12]}"),
        jobs_part_chars=600,
        io_timeout_seconds=10,
    )
    with TestClient(create_app(queued, synth=piper, store=store)) as client:
        yield client


def completed(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/tts/jobs", json=body)
    assert answer.status_code == 202, answer.text
    for _ in range(2400):  # a bound on the polls, not a timing
        job: dict[str, Any] = client.get(answer.headers["location"]).json()
        if job["status"] in ("completed", "failed", "cancelled"):
            assert job["status"] == "completed", job
            return job
        time.sleep(0.25)
    raise AssertionError(f"the job did not end: {job}")


def samples(url: str) -> tuple[np.ndarray, int]:
    download = httpx.get(url)
    assert download.status_code == 200
    data, rate = soundfile.read(io.BytesIO(download.content), dtype="int16")
    return data, rate


def test_the_parts_joined_say_what_one_synthesis_of_the_whole_says(
    jobs: TestClient, piper: Any
) -> None:
    text = article(3_000)
    job = completed(jobs, {"text": text, **STEADY})
    assert job["progress"]["parts_total"] >= 5
    joined, _ = samples(job["s3_url"])
    steady = SynthesisOptions(noise_scale=0.0, noise_w=0.0)
    whole = np.frombuffer(b"".join(piper.speak(plain(text), "en_US-joe-medium", steady)), "<i2")
    assert joined.size == pytest.approx(whole.size, rel=0.01)
    # Cut at sentence ends, each sentence is made as it is in one synthesis: no seam at all.
    assert np.array_equal(joined, whole)


def test_a_long_job_decodes_at_its_length_and_its_marks_index_the_whole_text(
    jobs: TestClient,
) -> None:
    text = article(20_000, seed=11)
    job = completed(jobs, {"text": text, "speech_marks": ["word", "sentence"]})
    assert job["progress"]["characters_done"] == len(text)
    audio, rate = samples(job["s3_url"])
    assert audio.size / rate == pytest.approx(job["duration"], abs=0.01)
    marks = marks_of(job)
    for mark in marks:
        assert text[mark["start"] : mark["end"]] == mark["value"]
    words = [m for m in marks if m["type"] == "word"]
    assert len(words) == len(text.split())  # every written word, once
    times = [m["time"] for m in words]
    assert times == sorted(times)
    assert times[-1] < job["duration"] * 1000
    starts = [m["start"] for m in words]
    assert starts == sorted(starts)
    assert words[-1]["end"] == len(text) - 1  # the last word, before its full stop


class Recording:
    """An onnxruntime session that notes that it ran."""

    def __init__(self, session: Any, name: str, runs: list[str]) -> None:
        self._session, self._name, self._runs = session, name, runs

    def run(self, *args: Any, **kwargs: Any) -> Any:
        self._runs.append(self._name)
        return self._session.run(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def test_a_part_takes_one_thread_and_leaves_a_request_the_quiet_service_s_session() -> None:
    from tempaudio_service.speech.synth import PiperSynthesizer

    synth = PiperSynthesizer(idle_threads=2)
    joe = synth._static["en_US-joe-medium"]
    runs: list[str] = []
    joe.narrow.session = Recording(joe.narrow.session, "narrow", runs)
    joe.wide.session = Recording(joe.wide.session, "wide", runs)
    part = synth.speak(
        plain("The first sentence of a part. The second one. And a third."),
        "en_US-joe-medium",
        SynthesisOptions(),
        background=True,
    )
    assert next(part)  # the part is being made: its first sentence is out
    request = b"".join(
        synth.sentences("A request meanwhile.", "en_US-joe-medium", SynthesisOptions())
    )
    rest = b"".join(part)
    assert request
    assert rest
    # The part's sentences on the narrow session, the request's on the wide one, as on a
    # service with nothing else to do; before, the request took the narrow one.
    assert runs == ["narrow", "wide", "narrow", "narrow"]
