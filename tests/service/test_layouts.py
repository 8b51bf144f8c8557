"""The table layouts (spec.dynamodb.keySchema) end to end on moto: the seed's DateAudioId and
AudioId, which keys items by audio_id alone and spreads a day's writes over partitions.
Reads by /tts/{date}/{audio_id} answer the same under both."""

from __future__ import annotations

import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.policy_sources import static_source
from tempaudio_service.settings import ServiceSettings
from tempaudio_service.store import Stores
from tests.conftest import ToneSynthesizer, scan_items
from tests.service.conftest import NOW


def serve(tmp_path: Path, settings: ServiceSettings, key_schema: str) -> tuple[TestClient, str]:
    name = f"layout-{uuid.uuid4().hex[:10]}"
    document = {
        "apiVersion": "tempaudio.dev/v1alpha1",
        "kind": "TempAudioPolicy",
        "metadata": {"name": "audio"},
        "spec": {
            "retention": "1h",
            "storage": {"bucket": name},
            "dynamodb": {"table": name, "keySchema": key_schema},
        },
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    file_settings = replace(settings, policy_source="file", policy_file=path)
    source = static_source(file_settings)
    stores = Stores(timeout_seconds=5, local_endpoint=file_settings.s3_endpoint_url)
    # As the embedded mode does: the table is made with the policy's layout.
    stores.get(source.current().resolve(None, 0.0).storage).ensure_resources()
    app = create_app(file_settings, synth=ToneSynthesizer(), clock=lambda: NOW, policies=source)
    return TestClient(app), name


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
    test, table = serve(tmp_path, settings, key_schema)
    with test:
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
