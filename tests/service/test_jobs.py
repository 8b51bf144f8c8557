"""Jobs (``/tts/jobs``) on moto's SQS, S3 and DynamoDB in server mode, with the tone
synthesizer: submission rules, progress, idempotency, cancel, listing, ownership, the parts
joined into one object and item, and the queue's message rules."""

from __future__ import annotations

import base64
import http.server
import io
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
import soundfile
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.jobs import assembly
from tempaudio_service.jobs.callbacks import Destination, destination
from tempaudio_service.policy.policy_sources import static_source
from tempaudio_service.storage.aws_clients import make_sqs_client
from tempaudio_service.storage.job_queue import ensure_queue
from tempaudio_service.storage.store import AudioStore, Stores
from tests.conftest import MovableClock, ToneSynthesizer, scan_items
from tests.service.conftest import NOW, policy_file

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def queue_url(endpoint: str) -> str:
    sqs = make_sqs_client(region="us-east-1", endpoint_url=endpoint, timeout_seconds=5, local=True)
    return ensure_queue(sqs, f"jobs-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def job_settings(settings: ServiceSettings) -> ServiceSettings:
    assert settings.s3_endpoint_url is not None
    return replace(
        settings,
        jobs_queue_url=queue_url(settings.s3_endpoint_url),
        jobs_part_chars=200,
        jobs_visibility_seconds=5,
    )


@pytest.fixture
def jobs(
    job_settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> Iterator[TestClient]:
    app = create_app(job_settings, synth=tone, store=store, clock=lambda: NOW)
    with TestClient(app) as test:
        yield test


def wait_for(client: TestClient, location: str, *statuses: str) -> dict[str, Any]:
    """Poll the job until it reaches one of ``statuses`` (a bound, not a timing)."""
    for _ in range(600):
        answer = client.get(location)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        if body["status"] in statuses:
            return body
        time.sleep(0.05)
    raise AssertionError(f"the job stayed {body['status']}: {body}")


def test_a_job_completes_with_one_object_and_item(
    jobs: TestClient, store: AudioStore, tone: ToneSynthesizer
) -> None:
    text = " ".join([SENTENCE] * 30)  # about 1,900 characters: ten parts of 200
    answer = jobs.post("/tts/jobs", json={"text": text, "speech_marks": ["word"]})
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "queued"
    assert body["progress"] == {
        "characters_done": 0,
        "characters_total": len(text),
        "parts_done": 0,
        "parts_total": body["progress"]["parts_total"],
    }
    assert body["progress"]["parts_total"] >= 9
    location = answer.headers["location"]
    assert location.startswith(f"/tts/jobs/{body['job_id']}")
    done = wait_for(jobs, location, "completed", "failed")
    assert done["status"] == "completed", done
    assert done["progress"]["characters_done"] == len(text)
    assert done["progress"]["parts_done"] == done["progress"]["parts_total"]
    item = store.get_item(done["date"], done["audio_id"])
    assert item is not None
    assert item["text"] == text
    # The tone says 10 ms per character of each sentence: the parts join to the whole.
    expected = sum(len(s) for s in [SENTENCE] * 30) * 0.01
    assert float(item["duration"]) == pytest.approx(expected, rel=0.01)
    key = item["s3_url"].split("/", 3)[3]
    audio = store.read_object(key, 64 * 1024 * 1024)
    assert audio is not None
    data, rate = soundfile.read(io.BytesIO(audio))
    assert len(data) / rate == pytest.approx(done["duration"], abs=0.01)
    # The parts and the request are gone; only the audio and its marks remain.
    folder = f"audio/{done['date']}/{done['job_id']}/"
    assert store.list_keys(folder) == []


def test_the_same_idempotency_key_gives_the_same_job(jobs: TestClient) -> None:
    headers = {"Idempotency-Key": "order-1234"}
    first = jobs.post("/tts/jobs", json={"text": SENTENCE}, headers=headers)
    again = jobs.post("/tts/jobs", json={"text": SENTENCE}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["job_id"] == again.json()["job_id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = jobs.post("/tts/jobs", json={"text": SENTENCE + " Other."}, headers=headers)
    assert other.status_code == 409
    assert other.json()["error"] == "idempotency_conflict"
    fresh = jobs.post("/tts/jobs", json={"text": SENTENCE}, headers={"Idempotency-Key": "x-2"})
    assert fresh.json()["job_id"] != first.json()["job_id"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        ({"text": "a " * 100_001}, {}, 422, "text_too_long"),
        ({"text": "..."}, {}, 422, "no_speech"),
        ({"text": "hi", "callback_url": "https://hooks.example/x"}, {}, 422,
         "callback_not_allowed"),
        ({"text": "hi", "callback_url": 5}, {}, 422, "invalid_request"),
        ({"text": "hi", "unknown": 1}, {}, 422, "invalid_request"),
        ({"text": "hi"}, {"Idempotency-Key": "x" * 256}, 422, "invalid_request"),
    ],
)  # fmt: skip
def test_submission_refusals(
    jobs: TestClient, body: dict[str, Any], headers: dict[str, str], status: int, code: str
) -> None:
    answer = jobs.post("/tts/jobs", json=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == code


def test_without_a_queue_jobs_are_unavailable(client: TestClient) -> None:
    answer = client.post("/tts/jobs", json={"text": "hi"})
    assert answer.status_code == 503
    assert answer.json()["error"] == "jobs_unavailable"


def test_unknown_and_malformed_jobs_are_404(jobs: TestClient) -> None:
    assert jobs.get(f"/tts/jobs/{uuid.uuid4()}").status_code == 404
    assert jobs.get("/tts/jobs/not-a-job").status_code == 404
    assert jobs.delete(f"/tts/jobs/{uuid.uuid4()}").status_code == 404


def test_listing_shows_the_callers_jobs(jobs: TestClient) -> None:
    ids = {jobs.post("/tts/jobs", json={"text": SENTENCE}).json()["job_id"] for _ in range(3)}
    listed = jobs.get("/tts/jobs").json()
    assert {job["job_id"] for job in listed["jobs"]} >= ids


def test_a_finished_job_cannot_be_cancelled(jobs: TestClient) -> None:
    answer = jobs.post("/tts/jobs", json={"text": SENTENCE})
    wait_for(jobs, answer.headers["location"], "completed")
    refused = jobs.delete(answer.headers["location"])
    assert refused.status_code == 409
    assert refused.json()["error"] == "job_conflict"


def test_cancel_removes_the_parts_and_keeps_no_audio(
    job_settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    """No worker runs on this replica: the job waits in the queue, is cancelled, and the
    parts a worker finds afterwards are dropped."""
    quiet = replace(job_settings, jobs_workers=0)
    with TestClient(create_app(quiet, synth=tone, store=store, clock=lambda: NOW)) as idle:
        answer = idle.post("/tts/jobs", json={"text": " ".join([SENTENCE] * 10)})
        location = answer.headers["location"]
        cancelled = idle.delete(location)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        folder = f"audio/{NOW:%Y-%m-%d}/{answer.json()['job_id']}/"
        assert store.list_keys(folder) == []
    with TestClient(create_app(job_settings, synth=tone, store=store, clock=lambda: NOW)) as work:
        for _ in range(100):  # the workers drop every part of the cancelled job
            time.sleep(0.05)
        assert work.get(location).json()["status"] == "cancelled"
    assert store.list_keys(folder) == []
    audio = [i for i in scan_items(store._dynamodb, store.table) if "s3_url" in i]
    assert audio == []


# --- callbacks: a real receiver on loopback, verifying as users' receivers do ------------

SECRET = "whsec_" + base64.b64encode(b"tempaudio-test-key-0123456789abcdef").decode()


class Receiver:
    """An HTTP receiver on loopback: answers the statuses given, in turn, and keeps what
    it was sent."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = receiver.statuses.pop(0) if receiver.statuses else 204
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    listening = Receiver([500, 204])
    yield listening
    listening.close()


def callback_app(
    tmp_path: Path, job_settings: ServiceSettings, tone: ToneSynthesizer, prefix: str, **more: Any
) -> TestClient:
    name = f"jobs-{uuid.uuid4().hex[:10]}"
    settings = replace(
        job_settings,
        policy_source="file",
        policy_file=policy_file(tmp_path, name, jobs={"callbackUrlPrefixes": [prefix]}),
        webhook_secret=SECRET,
        callback_backoff_seconds=1,
        **more,
    )
    source = static_source(settings)
    Stores(timeout_seconds=5, local_endpoint=settings.s3_endpoint_url).get(
        source.current().resolve(None, 0.0).storage
    ).ensure_resources()
    # The signature's time is the receiver's now: the library checks it against its clock.
    return TestClient(create_app(settings, synth=tone, policies=source))


def called_back(app: TestClient, callback_url: str) -> tuple[Any, dict[str, Any]]:
    """A job with ``callback_url``, completed and waited on until its callback was
    delivered (or 10 s): the submission's answer, and the job as it ends."""
    answer = app.post("/tts/jobs", json={"text": SENTENCE, "callback_url": callback_url})
    assert answer.status_code == 202, answer.text
    location = answer.headers["location"]
    wait_for(app, location, "completed")
    for _ in range(200):  # the second attempt comes a second after the first
        job: dict[str, Any] = app.get(location).json()
        if job["callback"]["delivered_at"]:
            break
        time.sleep(0.05)
    return answer, job


def test_the_callback_is_signed_retried_and_recorded(
    tmp_path: Path, job_settings: ServiceSettings, tone: ToneSynthesizer, receiver: Receiver
) -> None:
    prefix = f"http://127.0.0.1:{receiver.port}/hooks/"
    with callback_app(tmp_path, job_settings, tone, prefix) as app:
        answer, job = called_back(app, prefix + "a")
    assert job["callback"]["attempts"] == 2
    assert job["callback"]["last_status"] == 204
    assert len(receiver.received) == 2
    (first_headers, _), (headers, body) = receiver.received
    assert first_headers["webhook-id"] == headers["webhook-id"]  # one message, twice
    sent = Webhook(SECRET).verify(body, headers)
    assert sent["type"] == "job.completed"
    assert sent["data"]["job_id"] == answer.json()["job_id"]
    assert sent["data"]["status"] == "completed"
    assert sent["data"]["s3_url"]
    tampered = body.replace(b"completed", b"cancelled", 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"another key").decode()).verify(body, headers)


def test_a_callback_outside_the_prefixes_is_refused_at_submission(
    tmp_path: Path, job_settings: ServiceSettings, tone: ToneSynthesizer, receiver: Receiver
) -> None:
    prefix = f"http://127.0.0.1:{receiver.port}/hooks/"
    with callback_app(tmp_path, job_settings, tone, prefix) as app:
        for url in (
            f"http://127.0.0.1:{receiver.port}/hooksevil",
            f"http://127.0.0.1:{receiver.port}/other/",
            f"http://127.0.0.1:{receiver.port}@evil.example/hooks/",
            f"https://127.0.0.1:{receiver.port}/hooks/",
            "http://169.254.169.254/hooks/",
        ):
            answer = app.post("/tts/jobs", json={"text": SENTENCE, "callback_url": url})
            assert answer.status_code == 422, url
            assert answer.json()["error"] == "callback_not_allowed"
    assert receiver.received == []


def test_the_callback_goes_to_the_address_checked_never_to_the_name_resolved_again(
    tmp_path: Path,
    job_settings: ServiceSettings,
    tone: ToneSynthesizer,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """DNS rebinding: the name answers a harmless address when checked and the metadata
    service's afterwards. The request connects to the address checked, with the name as
    its Host; nothing resolves the name again (``hooks.invalid`` resolves nowhere else)."""
    from tempaudio_service.jobs import callbacks

    answers = iter([["127.0.0.1"], ["127.0.0.1"]])
    asked: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        asked.append(host)
        return next(answers, ["169.254.169.254"])

    monkeypatch.setattr(callbacks, "resolve_host", rebinding)
    prefix = f"http://hooks.invalid:{receiver.port}/hooks/"
    with callback_app(tmp_path, job_settings, tone, prefix) as app:
        _, job = called_back(app, prefix + "a")
    assert job["callback"]["attempts"] == 2
    assert job["callback"]["last_status"] == 204
    assert asked == ["hooks.invalid", "hooks.invalid"]  # once an attempt, by the check
    assert [headers["host"] for headers, _ in receiver.received] == [
        f"hooks.invalid:{receiver.port}"
    ] * 2
    Webhook(SECRET).verify(receiver.received[1][1], receiver.received[1][0])


def test_an_attempt_connects_to_the_checked_address_with_the_name_for_tls() -> None:
    prefixes = ["https://hooks.example:8443/", "https://[fd00::7]/v1/"]
    two = lambda host, port: ["10.0.0.7", "10.0.0.8"]
    first = destination("https://hooks.example:8443/x?a=1", prefixes, two, attempt=1)
    second = destination("https://hooks.example:8443/x?a=1", prefixes, two, attempt=2)
    assert first == Destination(
        "https://10.0.0.7:8443/x?a=1", "hooks.example:8443", "hooks.example"
    )
    assert second == Destination(
        "https://10.0.0.8:8443/x?a=1", "hooks.example:8443", "hooks.example"
    )
    literal = destination("https://[fd00::7]/v1/x", prefixes, two)
    assert literal == Destination("https://[fd00::7]/v1/x", "[fd00::7]", None)
    assert destination("https://hooks.example:8443/x", prefixes, lambda h, p: []) is None


def test_a_host_that_resolves_to_a_link_local_address_is_not_called() -> None:
    """The prefix names a host; where it points now decides (DNS can change)."""
    prefixes = ["https://hooks.example/"]
    metadata = lambda host, port: ["169.254.169.254"]

    def refused(url: str, prefixes: list[str], resolve: Any) -> bool:
        return isinstance(destination(url, prefixes, resolve), str)

    assert refused("https://hooks.example/x", prefixes, metadata)
    assert refused("https://hooks.example/x", prefixes, lambda h, p: ["fe80::1"])
    assert not refused("https://hooks.example/x", prefixes, lambda h, p: ["10.0.0.7"])
    named = ["http://169.254.170.2/v1/"]
    assert not refused("http://169.254.170.2/v1/x", named, lambda h, p: ["169.254.170.2"])


def test_a_finisher_that_goes_away_is_replaced_once_its_hold_lapses(
    job_settings: ServiceSettings,
    store: AudioStore,
    tone: ToneSynthesizer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The replica that claimed the job stops while joining it: its message comes back to
    another, which finds the hold live, looks again once it lapses, and finishes."""
    clock = MovableClock(NOW)
    joining: list[str] = []
    make = assembly._make

    async def stuck_once(engine: Any, *args: Any) -> Any:
        joining.append(engine.name)
        if len(joining) == 1:
            await anyio.sleep(3600)  # hangs until its replica stops
        return await make(engine, *args)

    monkeypatch.setattr(assembly, "_make", stuck_once)
    with TestClient(create_app(job_settings, synth=tone, store=store, clock=clock)) as first:
        answer = first.post("/tts/jobs", json={"text": SENTENCE})
        location = answer.headers["location"]
        for _ in range(200):
            if joining:
                break
            time.sleep(0.05)
        assert joining, "the first replica never started joining"
    with TestClient(create_app(job_settings, synth=tone, store=store, clock=clock)) as second:
        for _ in range(100):  # the second replica takes the message back at once
            if second.get(location).json()["status"] == "completed" or len(joining) > 1:
                break
            time.sleep(0.05)
        assert second.get(location).json()["status"] == "running"  # the first's hold is live
        clock.now += timedelta(seconds=job_settings.jobs_visibility_seconds + 1)
        done = wait_for(second, location, "completed", "failed")
    assert done["status"] == "completed"
    assert len(set(joining)) == 2


class CrashingSynthesizer(ToneSynthesizer):
    """Fails every synthesis as a bug would (not a refusal of the text)."""

    def speak(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the synthesizer crashed")


def test_a_part_taken_too_often_fails_its_job(
    job_settings: ServiceSettings, store: AudioStore
) -> None:
    settings = replace(job_settings, jobs_visibility_seconds=3, jobs_max_receives=1)
    app = create_app(settings, synth=CrashingSynthesizer(), store=store, clock=lambda: NOW)
    with TestClient(app) as crashing:
        answer = crashing.post("/tts/jobs", json={"text": SENTENCE})
        failed = wait_for(crashing, answer.headers["location"], "failed", "completed")
        for _ in range(100):  # the record says failed before the replica counts it
            metrics = crashing.get("/metrics").text
            if 'status="failed"} 1.0' in metrics:
                break
            time.sleep(0.05)
    assert failed["status"] == "failed"
    assert failed["error"]["code"] == "part_failed"
    assert "part 1 of 1" in failed["error"]["message"]
    assert 'tempaudio_jobs_parts_total{outcome="given_back"} 1.0' in metrics
    assert 'tempaudio_jobs_finished_total{policy="default/default",status="failed"} 1.0' in metrics


def test_metrics_count_the_jobs(jobs: TestClient) -> None:
    answer = jobs.post("/tts/jobs", json={"text": " ".join([SENTENCE] * 5)})
    done = wait_for(jobs, answer.headers["location"], "completed")
    for _ in range(100):  # the record says completed before the replica counts it
        metrics = jobs.get("/metrics").text
        if 'status="completed"} 1.0' in metrics:
            break
        time.sleep(0.05)
    parts = done["progress"]["parts_total"]
    assert 'tempaudio_jobs_submitted_total{policy="default/default"} 1.0' in metrics
    assert f'tempaudio_jobs_parts_total{{outcome="done"}} {parts}.0' in metrics
    assert (
        'tempaudio_jobs_finished_total{policy="default/default",status="completed"} 1.0' in metrics
    )
    assert "tempaudio_jobs_assembly_seconds_count 1.0" in metrics
    assert 'tempaudio_jobs_queue_messages{state="waiting"}' in metrics


# --- callers: a job is its caller's; the policy's clients and quotas apply ---------------


def test_a_job_is_its_callers_and_its_audio_is_charged_once(
    tmp_path: Path, job_settings: ServiceSettings
) -> None:
    from tests.service.test_callers import auth, serve

    text = " ".join([SENTENCE] * 10)  # 6.4 s of tone
    spec = {
        "clients": [
            {"namespace": "team-a", "serviceAccount": "notifier"},
            {"namespace": "team-b", "serviceAccount": "notifier"},
        ],
        "quotas": {"audioSecondsPerHour": 10},
    }
    test, _, _ = serve(
        tmp_path,
        job_settings,
        spec,
        jobs_queue_url=job_settings.jobs_queue_url,
        jobs_part_chars=200,
    )
    with test:
        assert test.post("/tts/jobs", json={"text": text}).status_code == 401
        refused = test.post("/tts/jobs", json={"text": text}, headers=auth("t-support"))
        assert refused.status_code == 403
        answer = test.post("/tts/jobs", json={"text": text}, headers=auth("t-notifier"))
        assert answer.status_code == 202, answer.text
        location = answer.headers["location"]
        for _ in range(400):
            job = test.get(location, headers=auth("t-notifier")).json()
            if job["status"] == "completed":
                break
            time.sleep(0.05)
        assert job["status"] == "completed"
        # Another caller learns nothing of it.
        assert test.get(location, headers=auth("t-stranger")).status_code == 404
        assert test.delete(location, headers=auth("t-stranger")).status_code == 404
        assert test.get("/tts/jobs", headers=auth("t-stranger")).json()["jobs"] == []
        mine = test.get("/tts/jobs", headers=auth("t-notifier")).json()["jobs"]
        assert [j["job_id"] for j in mine] == [job["job_id"]]
        # 6.4 s charged once: under the 10 s an hour, a second job is still admitted;
        # charged twice, it would not be.
        again = test.post("/tts/jobs", json={"text": "Hello."}, headers=auth("t-notifier"))
        assert again.status_code == 202, again.text
        for _ in range(400):
            if (
                test.get(again.headers["location"], headers=auth("t-notifier")).json()["status"]
                == "completed"
            ):
                break
            time.sleep(0.05)
        more = test.post("/tts/jobs", json={"text": text}, headers=auth("t-notifier"))
        assert more.status_code == 202  # 6.4 + 0.06 s: still under
        for _ in range(400):
            if (
                test.get(more.headers["location"], headers=auth("t-notifier")).json()["status"]
                == "completed"
            ):
                break
            time.sleep(0.05)
        over = test.post("/tts/jobs", json={"text": "Hi."}, headers=auth("t-notifier"))
        assert over.status_code == 429, over.text  # 12.9 s: over the hour's 10


# --- what a hostile probe found (each failed before its fix) -----------------------------


def test_concurrent_submissions_with_one_key_and_other_bodies_make_the_winners_audio(
    jobs: TestClient, store: AudioStore
) -> None:
    bodies = [{"text": f"Body number {i} says this. " * (i + 1)} for i in range(12)]

    def submit(body: dict[str, Any]) -> Any:
        return jobs.post("/tts/jobs", json=body, headers={"Idempotency-Key": "race"})

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(submit, bodies))
    won = [(body, a) for body, a in zip(bodies, answers, strict=True) if a.status_code == 202]
    assert len(won) == 1
    assert sorted(a.status_code for a in answers) == [202] + [409] * 11
    body, answer = won[0]
    done = wait_for(jobs, answer.headers["location"], "completed", "failed")
    item = store.get_item(done["date"], done["audio_id"])
    assert item is not None
    assert item["text"] == body["text"]  # the winner's, not a refused body's


def test_a_join_over_the_jobs_audio_cap_fails_as_such(
    job_settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    settings = replace(job_settings, jobs_max_audio_seconds=60)
    with TestClient(create_app(settings, synth=tone, store=store, clock=lambda: NOW)) as app:
        answer = app.post("/tts/jobs", json={"text": " ".join([SENTENCE] * 110)})  # 70 s
        failed = wait_for(app, answer.headers["location"], "failed", "completed")
    assert failed["error"]["code"] == "audio_too_long", failed


def test_messages_that_are_not_the_services_are_dropped_not_retried(
    jobs: TestClient, job_settings: ServiceSettings
) -> None:
    import json as _json

    assert job_settings.s3_endpoint_url is not None
    assert job_settings.jobs_queue_url is not None
    sqs = make_sqs_client(
        region="us-east-1", endpoint_url=job_settings.s3_endpoint_url, timeout_seconds=5, local=True
    )
    job = jobs.post("/tts/jobs", json={"text": SENTENCE}).json()
    wait_for(jobs, f"/tts/jobs/{job['job_id']}", "completed")
    poison = [
        "not json",
        {"kind": "part", "job": job["job_id"], "policy": "default/default", "part": "zero"},
        {"kind": "part", "job": job["job_id"], "policy": "default/default", "part": None},
        {"kind": "callback", "job": job["job_id"], "policy": "default/default", "attempt": -3},
        {"kind": "callback", "job": job["job_id"], "policy": "default/default", "attempt": "x"},
        {"kind": "part", "job": job["job_id"], "policy": "default/default", "part": 10**30},
    ]
    for body in poison:
        text = body if isinstance(body, str) else _json.dumps(body)
        sqs.send_message(QueueUrl=job_settings.jobs_queue_url, MessageBody=text)
    for _ in range(200):
        attributes = sqs.get_queue_attributes(
            QueueUrl=job_settings.jobs_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        if sum(int(v) for v in attributes.values()) == 0:
            break
        time.sleep(0.05)
    assert sum(int(v) for v in attributes.values()) == 0, attributes


def test_a_receiver_that_never_ends_its_answer_does_not_hold_the_worker(
    tmp_path: Path, job_settings: ServiceSettings, tone: ToneSynthesizer
) -> None:
    """Its status is what counts; its body is never read (a trickle, or 400 MB)."""

    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", "0")))
            self.send_response(200)
            self.send_header("content-length", "1000000000")
            self.end_headers()
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(30)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    prefix = f"http://127.0.0.1:{server.server_address[1]}/hooks/"
    try:
        app = callback_app(tmp_path, job_settings, tone, prefix, callback_timeout_seconds=2)
        with app:
            answer = app.post("/tts/jobs", json={"text": SENTENCE, "callback_url": prefix})
            location = answer.headers["location"]
            wait_for(app, location, "completed")
            for _ in range(200):
                job = app.get(location).json()
                if job["callback"]["delivered_at"]:
                    break
                time.sleep(0.05)
            assert job["callback"]["last_status"] == 200
            assert job["callback"]["attempts"] == 1
            second = app.post("/tts/jobs", json={"text": SENTENCE})  # the worker is free
            wait_for(app, second.headers["location"], "completed")
    finally:
        server.shutdown()
        server.server_close()
