"""The repeat cache through POST /tts/sync: a hit is a copy under its own key and item with
a fresh retention and the same bytes; a near-expiry source, an opt-out or a policy change
means synthesis; faults during CopyObject leave no half pair."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.errors import StorageUnavailable
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.policy.policy_sources import static_source
from tempaudio_service.speech.synth import SynthesisOptions
from tempaudio_service.storage.store import AudioStore, Stores
from tests.conftest import MovableClock, ToneSynthesizer, list_keys, live_items
from tests.service.test_api import BlockingSynthesizer

START = datetime(2026, 6, 15, 12, 0, 0, tzinfo=UTC)
TEXT = "Your code is 4 8 1 5."


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock(START)


@pytest.fixture
def client(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer, clock: MovableClock
) -> Iterator[TestClient]:
    with TestClient(create_app(settings, synth=tone, store=store, clock=clock)) as test:
        yield test


def _metric(client: TestClient, result: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'tempaudio_repeat_cache_total{{result="{result}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_repeat_is_a_copy_with_its_own_key_item_and_fresh_retention(
    client: TestClient, settings: ServiceSettings, s3: Any, dynamodb: Any,
    tone: ToneSynthesizer, clock: MovableClock,
) -> None:  # fmt: skip
    first = client.post("/tts/sync", json={"text": TEXT, "response_format": "mp3"}).json()
    clock.now = START + timedelta(hours=3)
    again = client.post("/tts/sync", json={"text": TEXT, "response_format": "mp3"}).json()

    assert tone.calls == 1  # synthesized once
    assert (first["cached"], again["cached"]) == (False, True)
    assert again["audio_id"] != first["audio_id"]
    assert again["duration"] == first["duration"]
    # The copy's life starts now: 24h from the repeat, not from the first.
    assert datetime.fromisoformat(again["audio_expires_at"]) == clock.now + timedelta(hours=24)
    keys = list_keys(s3, settings.bucket)
    assert keys == {
        f"temp-audio/{first['date']}/{first['audio_id']}.mp3",
        f"temp-audio/{again['date']}/{again['audio_id']}.mp3",
    }
    assert httpx.get(again["s3_url"]).content == httpx.get(first["s3_url"]).content
    copy = s3.head_object(
        Bucket=settings.bucket, Key=f"temp-audio/{again['date']}/{again['audio_id']}.mp3"
    )
    assert copy["ContentType"] == "audio/mpeg"
    assert len(live_items(dynamodb, settings.table)) == 2
    assert (_metric(client, "miss"), _metric(client, "hit")) == (1, 1)


def test_a_source_close_to_its_expiry_is_not_reused(
    client: TestClient, tone: ToneSynthesizer, clock: MovableClock
) -> None:
    client.post("/tts/sync", json={"text": TEXT})
    # 24h retention: the margin is a tenth, 2.4h. With 2h left, synthesize anew.
    clock.now = START + timedelta(hours=22)
    late = client.post("/tts/sync", json={"text": TEXT}).json()
    assert late["cached"] is False
    assert tone.calls == 2
    # The new audio is the source now.
    clock.now = START + timedelta(hours=23)
    assert client.post("/tts/sync", json={"text": TEXT}).json()["cached"] is True
    assert tone.calls == 2


@pytest.mark.parametrize(
    "change",
    [{"cache": False}, {"voice": "xx-multi"}, {"response_format": "flac"},
     {"length_scale": 1.5}, {"sample_rate": 16000}, {"text": TEXT + " Again."}],
)  # fmt: skip
def test_opt_out_and_any_difference_synthesize(
    client: TestClient, tone: ToneSynthesizer, change: dict[str, Any]
) -> None:
    client.post("/tts/sync", json={"text": TEXT})
    answer = client.post("/tts/sync", json={"text": TEXT, **change}).json()
    assert answer["cached"] is False
    assert tone.calls == 2


class CopyThenTimeOut(AudioStore):
    """S3 made the copy, but the answer never came back."""

    def copy_audio(self, source_key: str, key: str, content_type: str) -> None:
        super().copy_audio(source_key, key, content_type)
        raise StorageUnavailable("could not copy audio in S3: Read timeout")


class ItemFailsAfterCopy(AudioStore):
    def put_item(self, item: dict[str, Any]) -> None:
        if self.fail:
            raise StorageUnavailable("could not write metadata to DynamoDB: Read timeout")
        super().put_item(item)

    fail = False


@pytest.mark.parametrize("store_class", [CopyThenTimeOut, ItemFailsAfterCopy])
def test_faults_during_the_copy_leave_no_half_pair(
    settings: ServiceSettings, s3: Any, dynamodb: Any, tone: ToneSynthesizer,
    store_class: type[AudioStore],
) -> None:  # fmt: skip
    faulty = store_class(s3, dynamodb, bucket=settings.bucket, table=settings.table)
    faulty.ensure_resources()
    with TestClient(create_app(settings, synth=tone, store=faulty, clock=lambda: START)) as client:
        first = client.post("/tts/sync", json={"text": TEXT}).json()
        faulty.fail = True  # type: ignore[attr-defined]
        failed = client.post("/tts/sync", json={"text": TEXT})
        assert failed.status_code == 503
        assert failed.json()["error"] == "storage_unavailable"
    # Only the first pair is left: the copy was deleted, its item (if any) revoked.
    assert list_keys(s3, settings.bucket) == {f"temp-audio/{first['date']}/{first['audio_id']}.wav"}
    (item,) = live_items(dynamodb, settings.table)
    assert item["audio_id"] == {"S": first["audio_id"]}


def test_a_source_deleted_behind_the_cache_s_back_is_synthesized_again(
    client: TestClient, settings: ServiceSettings, s3: Any, tone: ToneSynthesizer
) -> None:
    first = client.post("/tts/sync", json={"text": TEXT}).json()
    s3.delete_object(
        Bucket=settings.bucket, Key=f"temp-audio/{first['date']}/{first['audio_id']}.wav"
    )
    again = client.post("/tts/sync", json={"text": TEXT}).json()
    assert again["cached"] is False
    assert tone.calls == 2
    assert httpx.get(again["s3_url"]).status_code == 200


def test_a_policy_can_opt_out(
    tmp_path: Path, settings: ServiceSettings, tone: ToneSynthesizer
) -> None:
    from tests.service.test_policies import policy

    bucket = f"nocache-{uuid.uuid4().hex[:10]}"
    document = policy("nocache", bucket, "temp-audio/", "1h")
    document["spec"]["repeatCache"] = False
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    file_settings = replace(
        settings, policy_source="file", policy_file=path, default_policy="nocache"
    )
    source = static_source(file_settings)
    stores = Stores(timeout_seconds=5, local_endpoint=file_settings.s3_endpoint_url)
    stores.get(source.current().resolve(None, 0.0).storage).ensure_resources()
    app = create_app(file_settings, synth=tone, clock=lambda: START, policies=source)
    with TestClient(app) as client:
        for _ in range(2):
            assert client.post("/tts/sync", json={"text": TEXT}).json()["cached"] is False
    assert tone.calls == 2


class HeldTone(BlockingSynthesizer):
    """Holds every synthesis until ``release`` is set, counting those that began."""

    entered = 0

    def sentences(self, text: str, voice: str, options: SynthesisOptions) -> Iterator[bytes]:
        self.entered += 1
        yield from super().sentences(text, voice, options)


def test_identical_requests_in_flight_are_synthesized_once(
    settings: ServiceSettings, store: AudioStore
) -> None:
    held = HeldTone()
    with TestClient(create_app(settings, synth=held, store=store, clock=lambda: START)) as client:
        answers: list[dict[str, Any]] = []

        def post() -> None:
            answers.append(client.post("/tts/sync", json={"text": TEXT}).json())

        threads = [threading.Thread(target=post) for _ in range(3)]
        for thread in threads:
            thread.start()
        try:
            assert held.started.wait(30)
            making = client.app.state.services.making  # type: ignore[attr-defined]
            for _ in range(3000):  # the first is synthesizing; the others wait on it
                if making.waiting == 2:
                    break
                threading.Event().wait(0.01)
            assert making.waiting == 2
            assert held.entered == 1
        finally:
            held.release.set()
            for thread in threads:
                thread.join(30)
    assert held.calls == 1
    assert sorted(answer["cached"] for answer in answers) == [False, True, True]
    assert len({answer["audio_id"] for answer in answers}) == 3
