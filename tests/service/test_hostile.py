"""The service under hostile input, hung storage and shutdown (moto server, tone synthesizer)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.audio.services import read_json
from tempaudio_service.core.errors import BodyTimeout, StorageUnavailable
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.speech.synth import SynthesisOptions
from tempaudio_service.storage.store import AudioStore
from tests.conftest import ToneSynthesizer, list_keys, live_items, scan_items
from tests.service.conftest import NOW
from tests.service.test_api import BlockingSynthesizer

HUGE_INT = "9" * 400


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        # Each of these was a 500 internal_error, logged as a traceback twice.
        (b'{"text": "a\\u0000b"}', 422, "invalid_request"),
        (b'{"text": "\\ud800"}', 422, "invalid_request"),
        (b'{"text": "hi", "length_scale": ' + HUGE_INT.encode() + b"}", 422, "invalid_request"),
        (b'{"text": "hi", "noise_w": -' + HUGE_INT.encode() + b"}", 422, "invalid_request"),
        (b'{"text": "hi", "speaker": ' + HUGE_INT.encode() + b"}", 422, "invalid_request"),
        (b'{"text": "hi", "x": ' + b"1" * 5000 + b"}", 400, "malformed_json"),
        (b"[" * 30000 + b"]" * 30000, 400, "malformed_json"),
        (b'{"text": "hi", "sentence_silence": 1e400}', 422, "invalid_request"),
        (b'{"text": "hi", "length_scale": NaN}', 422, "invalid_request"),
    ],
)
def test_hostile_bodies_get_a_json_4xx_logged_without_traceback(
    client: TestClient,
    settings: ServiceSettings,
    s3: Any,
    dynamodb: Any,
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    status: int,
    code: str,
) -> None:
    with caplog.at_level(logging.WARNING):
        response = client.post(
            "/tts/sync", content=body, headers={"content-type": "application/json"}
        )
    assert (response.status_code, response.json()["error"]) == (status, code), response.text
    assert len(response.content) < 1000
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert list_keys(s3, settings.bucket) == set()
    assert scan_items(dynamodb, settings.table) == []


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    ["text", "voice", "speaker", "length_scale", "noise_scale", "noise_w", "sentence_silence"]
)


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=json_values | st.dictionaries(field_names, json_values, max_size=5),
)
def test_no_json_value_yields_a_5xx(client: TestClient, body: Any) -> None:
    response = client.post("/tts/sync", content=json.dumps(body).encode())
    assert response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/json"


def test_expiry_is_honest_about_the_seven_day_url_cap(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    app = create_app(
        replace(settings, retention=timedelta(days=30)), synth=tone, store=store, clock=lambda: NOW
    )
    with TestClient(app) as client:
        body = client.post("/tts/sync", json={"text": "kept a month"}).json()
    # Before, expires_at said 30 days while the URL died at 7.
    assert datetime.fromisoformat(body["expires_at"]) == NOW + timedelta(days=7)
    assert datetime.fromisoformat(body["audio_expires_at"]) == NOW + timedelta(days=30)
    assert "X-Amz-Expires=604800" in body["s3_url"]


class HungStore(AudioStore):
    """S3 that never answers until the test lets it; its write lands late."""

    def __init__(self, base: AudioStore, *, hang_check: bool = False) -> None:
        super().__init__(base._s3, base._dynamodb, bucket=base.bucket, table=base.table)
        self.release = threading.Event()
        self.hang_check = hang_check

    def put_audio(self, key: str, audio: bytes, content_type: str = "audio/wav") -> None:
        assert self.release.wait(30)
        super().put_audio(key, audio, content_type)

    def check_s3(self) -> None:
        if self.hang_check:
            assert self.release.wait(30)
        super().check_s3()


def test_hung_storage_fails_within_one_budget_and_the_late_write_is_undone(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer, s3: Any, dynamodb: Any
) -> None:
    hung = HungStore(store)
    app = create_app(replace(settings, io_timeout_seconds=1), synth=tone, store=hung)
    with TestClient(app) as client:
        # The write is still hanging (released only below), yet the answer is here.
        response = client.post("/tts/sync", json={"text": "into the void"})
        assert response.status_code == 503
        assert response.json() == {
            "error": "storage_unavailable",
            "message": "S3 did not answer within 1 s; retry later",
        }
        hung.release.set()
    # The client exits after the undoing: the PUT landed late and was taken back out; the
    # item, written at once beside it, is a tombstone.
    assert list_keys(s3, settings.bucket) == set()
    assert live_items(dynamodb, settings.table) == []
    assert [item["revoked"] for item in scan_items(dynamodb, settings.table)] == [{"BOOL": True}]


def test_storage_errors_name_the_dependency_not_the_endpoint(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    from tempaudio_service.storage.store import make_dynamodb_client
    from tests.service.test_api import dead_endpoint

    endpoint = dead_endpoint()
    broken = AudioStore(
        store._s3,
        make_dynamodb_client(
            region="us-east-1", endpoint_url=endpoint, timeout_seconds=1, local=True
        ),
        bucket=settings.bucket,
        table=settings.table,
    )
    with TestClient(create_app(settings, synth=tone, store=broken)) as client:
        failed = client.post("/tts/sync", json={"text": "where?"})
        ready = client.get("/readyz")
    for response in (failed, ready):
        assert response.status_code == 503
        assert "DynamoDB" in response.text
        for secret in (endpoint, settings.bucket, settings.table, "temp-audio/"):
            assert secret not in response.text


def test_readiness_checks_run_in_parallel_and_are_cached(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # However slow the machine, the second probe falls inside the cache window.
    monkeypatch.setattr("tempaudio_service.audio.services.READY_CACHE_SECONDS", 3600.0)
    dynamodb_started = threading.Event()
    calls = {"s3": 0, "dynamodb": 0}

    class Probe(AudioStore):
        def check_s3(self) -> None:
            calls["s3"] += 1
            # Sequential checks would spend the whole budget here.
            assert dynamodb_started.wait(5)

        def check_dynamodb(self) -> None:
            calls["dynamodb"] += 1
            dynamodb_started.set()

    probe = Probe(store._s3, store._dynamodb, bucket=store.bucket, table=store.table)
    app = create_app(replace(settings, io_timeout_seconds=2), synth=tone, store=probe)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/readyz").status_code == 200
    assert calls == {"s3": 1, "dynamodb": 1}


def test_readiness_answers_within_the_budget_when_storage_hangs(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    hung = HungStore(store, hang_check=True)
    app = create_app(replace(settings, io_timeout_seconds=1), synth=tone, store=hung)
    with TestClient(app) as client:
        ready = client.get("/readyz")
        hung.release.set()
    assert ready.status_code == 503
    assert ready.json()["problems"] == {"s3": "S3 did not answer within 1 s; retry later"}


def test_a_body_that_trickles_in_times_out() -> None:
    async def scenario() -> None:
        chunks = iter([b'{"text": ', b""])

        async def receive() -> dict[str, Any]:
            chunk = next(chunks)
            if not chunk:
                await anyio.sleep_forever()
            return {"type": "http.request", "body": chunk, "more_body": True}

        headers = [(b"content-type", b"application/json")]
        request = Request({"type": "http", "method": "POST", "headers": headers}, receive)
        with pytest.raises(BodyTimeout, match=r"within 0\.05 s"):
            await read_json(request, 1000, 0.05)

    anyio.run(scenario)


class CountingBlocker(BlockingSynthesizer):
    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Semaphore(0)

    def sentences(self, text: str, voice: str, options: SynthesisOptions) -> Iterator[bytes]:
        self.entered.release()
        yield from super().sentences(text, voice, options)


def _post_in_thread(client: TestClient, results: list[Any], text: str) -> threading.Thread:
    def post() -> None:
        response = client.post("/tts/sync", json={"text": text})
        results.append((response.status_code, response.json(), response.headers))

    thread = threading.Thread(target=post)
    thread.start()
    return thread


def _one_running_one_queued(
    client: TestClient, synth: CountingBlocker
) -> tuple[list[Any], tuple[threading.Thread, threading.Thread]]:
    """Two requests: one synthesizing (held by ``synth``), one waiting in the queue."""
    results: list[Any] = []
    running = _post_in_thread(client, results, "running")
    assert synth.entered.acquire(timeout=10)
    queued = _post_in_thread(client, results, "queued")
    while client.app.state.services.pool.admitted < 2:  # type: ignore[attr-defined]
        threading.Event().wait(0.01)
    return results, (running, queued)


def test_drain_refuses_new_work_and_finishes_admitted_work(
    settings: ServiceSettings, store: AudioStore, s3: Any
) -> None:
    synth = CountingBlocker()
    app = create_app(
        replace(settings, synth_workers=1, synth_queue=1, drain_seconds=30),
        synth=synth,
        store=store,
    )
    with TestClient(app) as client:
        results, (running, queued) = _one_running_one_queued(client, synth)
        services = app.state.services
        drained = threading.Thread(target=lambda: client.portal.call(services.drain))  # type: ignore[union-attr]
        drained.start()
        while not services.draining.started:
            threading.Event().wait(0.01)

        assert client.get("/readyz").json() == {"status": "draining"}
        refused = client.post("/tts/sync", json={"text": "too late"})
        assert refused.status_code == 503
        assert refused.json()["error"] == "shutting_down"
        assert refused.headers["retry-after"] == "1"

        synth.release.set()
        for thread in (running, queued, drained):
            thread.join(30)
    assert sorted(status for status, _, _ in results) == [200, 200]
    assert len(list_keys(s3, settings.bucket)) == 2


def test_drain_time_up_answers_what_is_left_with_json_503(
    settings: ServiceSettings, store: AudioStore, s3: Any, dynamodb: Any
) -> None:
    synth = CountingBlocker()
    app = create_app(
        replace(settings, synth_workers=1, synth_queue=1, drain_seconds=0), synth=synth, store=store
    )
    with TestClient(app) as client:
        results, (running, queued) = _one_running_one_queued(client, synth)
        services = app.state.services
        client.portal.call(services.drain)  # type: ignore[union-attr]
        for thread in (running, queued):
            thread.join(30)
        synth.release.set()
    # Before, uvicorn cut such requests off with a plain-text 500.
    assert [(status, body["error"]) for status, body, _ in results] == [
        (503, "shutting_down"),
        (503, "shutting_down"),
    ]
    assert list_keys(s3, settings.bucket) == set()
    assert scan_items(dynamodb, settings.table) == []


def test_now_is_injected_not_read(client: TestClient) -> None:
    body = client.post("/tts/sync", json={"text": "when?"}).json()
    assert body["date"] == NOW.astimezone(UTC).date().isoformat()
    assert datetime.fromisoformat(body["expires_at"]) == NOW + timedelta(hours=24)


class BrokenSynthesizer(ToneSynthesizer):
    def sentences(self, text: str, voice: str, options: SynthesisOptions) -> Iterator[bytes]:
        raise RuntimeError("a bug, not the caller's fault")
        yield b""  # a generator, as a synthesizer's sentences are


def test_a_real_bug_is_one_json_500_logged_once(
    settings: ServiceSettings, store: AudioStore, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, synth=BrokenSynthesizer(), store=store)
    with TestClient(app, raise_server_exceptions=False) as client, caplog.at_level(logging.INFO):
        response = client.post("/tts/sync", json={"text": "boom"})
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "message": "internal error"}
    # Starlette's own last-resort handler logged it a second time and re-raised it before.
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert "unhandled error on POST /tts/sync" in tracebacks[0].getMessage()


class HeldPutItem(AudioStore):
    """DynamoDB holds the PutItem past botocore's last attempt, then applies it late."""

    def __init__(self, base: AudioStore) -> None:
        super().__init__(base._s3, base._dynamodb, bucket=base.bucket, table=base.table)
        self.release = threading.Event()
        self.late: list[str] = []

    def put_item(self, item: dict[str, Any]) -> None:
        def land_late() -> None:
            assert self.release.wait(30)
            try:
                AudioStore.put_item(self, item)
                self.late.append("landed")
            except StorageUnavailable:
                self.late.append("refused")

        threading.Thread(target=land_late).start()
        raise StorageUnavailable("DynamoDB is unavailable (PutItem failed); retry later")


def test_a_put_item_landing_after_the_undo_leaves_no_item_without_its_object(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer, s3: Any, dynamodb: Any
) -> None:
    held = HeldPutItem(store)
    with TestClient(create_app(settings, synth=tone, store=held)) as client:
        assert client.post("/tts/sync", json={"text": "held"}).status_code == 503
    # The undo is done (the client waits for it on exit); now the held attempt arrives.
    held.release.set()
    while not held.late:
        threading.Event().wait(0.01)
    # A delete-based undo let it land: an item whose URL points at a deleted object.
    assert held.late == ["refused"]
    assert list_keys(s3, settings.bucket) == set()
    assert live_items(dynamodb, settings.table) == []
    (tombstone,) = scan_items(dynamodb, settings.table)
    lookup = f"/tts/{tombstone['date']['S']}/{tombstone['audio_id']['S']}"
    with TestClient(create_app(settings, synth=tone, store=store)) as client:
        assert client.get(lookup).status_code == 404
