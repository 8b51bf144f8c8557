"""Two replicas of the service on one storage (two apps, each with its own clients, caches
and pools, as two pods have): one quota across both, a repeat made on one is a hit on the
other, and a quota store that cannot answer admits nothing."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.policy.policy_sources import static_source
from tempaudio_service.storage.store import AudioStore, make_dynamodb_client
from tests.conftest import ToneSynthesizer, list_keys, scan_items
from tests.service.conftest import NOW, policy_file, replicas


@pytest.fixture(params=["DateAudioId", "AudioId"])
def key_schema(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_a_prompt_spoken_through_one_replica_is_a_hit_through_another(
    tmp_path: Path, settings: ServiceSettings, s3: Any, dynamodb: Any
) -> None:
    stack, (a, b), name = replicas(tmp_path, settings)
    with stack:
        made = a.post("/tts/sync", json={"text": "Your table is ready."}).json()
        copied = b.post("/tts/sync", json={"text": "Your table is ready."}).json()
        read_back = a.get(f"/tts/{copied['date']}/{copied['audio_id']}")
    assert (made["cached"], copied["cached"]) == (False, True)
    assert read_back.status_code == 200
    assert len(list_keys(s3, name)) == len(scan_items(dynamodb, name)) == 2  # pairs only


def test_both_layouts_serve_across_replicas(
    tmp_path: Path, settings: ServiceSettings, dynamodb: Any, key_schema: str
) -> None:
    name = f"layout-{uuid.uuid4().hex[:10]}"
    stack, (a, b), _ = replicas(
        tmp_path, settings, name=name, dynamodb={"table": name, "keySchema": key_schema}
    )
    with stack:
        made = a.post("/tts/sync", json={"text": "Hello.", "cache": False}).json()
        again = b.post("/tts/sync", json={"text": "Hello."}).json()  # a hit through B
        read = b.get(f"/tts/{made['date']}/{made['audio_id']}")
    assert read.status_code == 200
    assert again["cached"] is False  # "cache": false made nothing to reuse
    keys = dynamodb.describe_table(TableName=name)["Table"]["KeySchema"]
    assert [k["AttributeName"] for k in keys] == (
        ["audio_id"] if key_schema == "AudioId" else ["date", "audio_id"]
    )


def test_one_quota_across_replicas_and_restarts(tmp_path: Path, settings: ServiceSettings) -> None:
    quotas = {"quotas": {"requestsPerMinute": 4}}
    stack, clients, name = replicas(tmp_path, settings, count=3, **quotas)
    with stack:
        statuses = [
            clients[i % 3].post("/tts/sync", json={"text": f"Hello {i}."}).status_code
            for i in range(6)
        ]
    assert statuses == [200] * 4 + [429] * 2  # the declared quota, exactly, across replicas
    # The replicas are gone; new ones (a restart, pods that replaced killed ones) on the
    # same storage keep the count: the minute is still used up.
    restarted, (fresh,), _ = replicas(tmp_path, settings, count=1, name=name, **quotas)
    with restarted:
        assert fresh.post("/tts/sync", json={"text": "Hello again."}).status_code == 429


def test_a_quota_store_that_cannot_answer_admits_nothing(
    tmp_path: Path, settings: ServiceSettings, s3: Any
) -> None:
    name = f"down-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    file_settings = replace(
        settings,
        policy_source="file",
        policy_file=policy_file(tmp_path, name, quotas={"requestsPerMinute": 5}),
        io_timeout_seconds=2,
    )
    dead = make_dynamodb_client(region="us-east-1", endpoint_url="http://127.0.0.1:9",
                                timeout_seconds=1, local=True)  # fmt: skip
    unreachable = AudioStore(s3, dead, bucket=name, table=name)
    app = create_app(file_settings, synth=ToneSynthesizer(), store=unreachable,
                     clock=lambda: NOW, policies=static_source(file_settings))  # fmt: skip
    with TestClient(app) as test:
        answer = test.post("/tts/sync", json={"text": "Hello."})
    assert answer.status_code == 503
    assert answer.json()["error"] == "storage_unavailable"
    assert "retry-after" in answer.headers
    assert list_keys(s3, name) == set()  # nothing made, nothing unmetered
