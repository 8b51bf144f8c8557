"""Quotas counted in the policy's table (quotas.py, dynamodb_items.py's counters) on moto's
server: one count for every replica, under both table layouts, that a restart keeps, and
a store that cannot answer admits nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tempaudio_api.access import Quotas
from tempaudio_service.access.quotas import admit, charge
from tempaudio_service.core.errors import QuotaExceeded, StorageUnavailable
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.storage.store import AudioStore, make_dynamodb_client

KEY = ("ns/p", "team-a/notifier")


def retry_after(store: AudioStore, quotas: Quotas, now: float, key: Any = KEY) -> int | None:
    try:
        admit(store.counters, key, quotas, now)
    except QuotaExceeded as error:
        return error.retry_after_seconds
    return None


@pytest.fixture(params=["DateAudioId", "AudioId"])
def layout(
    request: pytest.FixtureRequest, settings: ServiceSettings, s3: Any, dynamodb: Any
) -> AudioStore:
    store = AudioStore(
        s3, dynamodb, bucket=settings.bucket, table=settings.table, key_schema=request.param
    )
    store.ensure_resources()
    return store


def test_requests_per_minute_in_fixed_windows(layout: AudioStore) -> None:
    quotas = Quotas(requests_per_minute=2)
    assert retry_after(layout, quotas, 0) is None
    assert retry_after(layout, quotas, 10) is None
    assert retry_after(layout, quotas, 20) == 40  # until the minute ends
    assert retry_after(layout, quotas, 59.5) == 1  # rounded up, at least 1
    assert retry_after(layout, quotas, 60) is None  # a new window
    assert retry_after(layout, quotas, 61, key=("ns/p", "team-b/x")) is None  # per caller
    assert retry_after(layout, quotas, 62, key=("ns/q", KEY[1])) is None  # per policy


def test_replicas_share_one_count_and_a_refused_request_takes_no_slot(
    settings: ServiceSettings, s3: Any, dynamodb: Any, moto_endpoint: str
) -> None:
    quotas = Quotas(requests_per_minute=3)

    def replica() -> AudioStore:  # its own clients, as another pod has
        client = make_dynamodb_client(
            region="us-east-1", endpoint_url=moto_endpoint, timeout_seconds=5, local=True
        )
        return AudioStore(s3, client, bucket=settings.bucket, table=settings.table)

    replicas = [replica() for _ in range(3)]
    replicas[0].ensure_resources()
    admitted = [retry_after(replicas[i % 3], quotas, 5 + i) is None for i in range(9)]
    assert admitted == [True] * 3 + [False] * 6  # exactly the limit, across replicas
    # A "restart": new clients, the same table, the same count.
    again = AudioStore(s3, dynamodb, bucket=settings.bucket, table=settings.table)
    assert retry_after(again, quotas, 30) == 30


def test_audio_seconds_per_hour_admits_while_under_and_serves_the_crossing_request(
    layout: AudioStore,
) -> None:
    quotas = Quotas(audio_seconds_per_hour=10)
    assert retry_after(layout, quotas, 0) is None
    charge(layout.counters, KEY, quotas, 0, 9)
    assert retry_after(layout, quotas, 1) is None  # 9 < 10: admitted
    charge(layout.counters, KEY, quotas, 1, 30)
    assert retry_after(layout, quotas, 2) == 3598
    assert retry_after(layout, quotas, 3600) is None  # the next hour


def test_counters_expire_with_the_table_and_never_read_as_audio(
    settings: ServiceSettings, dynamodb: Any, s3: Any
) -> None:
    store = AudioStore(s3, dynamodb, bucket=settings.bucket, table=settings.table,
                       ttl_attribute="expires")  # fmt: skip
    store.ensure_resources("expires")
    admit(store.counters, KEY, Quotas(requests_per_minute=5), 30)
    (item,) = dynamodb.scan(TableName=settings.table)["Items"]
    assert item["ttl"] == item["expires"] == {"N": str(3600 + 3600)}  # an hour past its hour
    assert item["m0"] == {"N": "1"}
    assert item["date"]["S"].startswith("counter#")
    assert store.get_item(item["date"]["S"], item["audio_id"]["S"]) is not None  # raw reads
    # ... but no audio id is a counter's: /tts/{date}/{id} accepts uuid4 ids only.


def test_a_store_that_cannot_answer_admits_nothing(settings: ServiceSettings, s3: Any) -> None:
    down = make_dynamodb_client(region="us-east-1", endpoint_url="http://127.0.0.1:9",
                                timeout_seconds=1, local=True)  # fmt: skip
    store = AudioStore(s3, down, bucket=settings.bucket, table=settings.table)
    with pytest.raises(StorageUnavailable):
        admit(store.counters, KEY, Quotas(requests_per_minute=5), 0)
