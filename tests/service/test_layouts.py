"""The table layouts (spec.dynamodb.keySchema) end to end on moto: the seed's DateAudioId and
AudioId, which keys items by audio_id alone and spreads a day's writes over partitions.
Reads by /tts/{date}/{audio_id} answer the same under both."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from tempaudio_service.core.settings import ServiceSettings
from tests.conftest import scan_items
from tests.service.conftest import replicas


@pytest.mark.parametrize(
    ("key_schema", "keys"),
    [
        ("DateAudioId", [("date", "HASH"), ("audio_id", "RANGE")]),
        ("AudioId", [("audio_id", "HASH")]),
    ],
)
def test_both_layouts_store_and_read_the_same_way(
    tmp_path: Path,
    settings: ServiceSettings,
    dynamodb: Any,
    key_schema: str,
    keys: list[tuple[str, str]],
) -> None:
    table = f"layout-{uuid.uuid4().hex[:10]}"
    # The table is made with the policy's layout, as the embedded mode makes it.
    stack, (test,), _ = replicas(
        tmp_path, settings, count=1, name=table, dynamodb={"table": table, "keySchema": key_schema}
    )
    with stack:
        made = test.post("/tts/sync", json={"text": "Hello there."}).json()
        again = test.get(f"/tts/{made['date']}/{made['audio_id']}")
        elsewhere = test.get(f"/tts/2026-06-14/{made['audio_id']}")  # another day's folder
    schema = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
    assert [(k["AttributeName"], k["KeyType"]) for k in schema] == keys
    assert again.status_code == 200, again.text
    assert again.json()["audio_id"] == made["audio_id"]
    assert elsewhere.status_code == 404
    (item,) = scan_items(dynamodb, table)
    assert item["date"] == {"S": made["date"]}  # an ordinary attribute under AudioId
