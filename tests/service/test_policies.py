"""One service, several TempAudioPolicies from a file (moto's server over HTTP)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from tempaudio_service.__main__ import main
from tempaudio_service.app import create_app
from tempaudio_service.core.config import ConfigError
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.policy.policies import ServedPolicy
from tempaudio_service.policy.policy_sources import static_source
from tempaudio_service.storage.store import Stores
from tests.conftest import ToneSynthesizer, list_keys
from tests.controlplane import REPO
from tests.service.conftest import NOW


def policy(name: str, bucket: str, prefix: str, retention: str, ttl: str = "ttl") -> dict[str, Any]:
    return {
        "apiVersion": "tempaudio.dev/v1alpha1",
        "kind": "TempAudioPolicy",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {
            "retention": retention,
            "storage": {"bucket": bucket, "prefix": prefix},
            "metadata": {"table": bucket, "ttlAttribute": ttl},
        },
    }


@pytest.fixture
def two_policies(tmp_path: Path, moto_endpoint: str) -> tuple[Path, dict[str, str]]:
    suffix = uuid.uuid4().hex[:10]
    buckets = {"audio": f"audio-{suffix}", "voicemail": f"vm-{suffix}"}
    documents = [
        policy("audio", buckets["audio"], "temp-audio/", "1h"),
        policy("voicemail", buckets["voicemail"], "vm/", "7d", ttl="expires"),
    ]
    path = tmp_path / "policies.yaml"
    path.write_text(yaml.safe_dump_all(documents))
    return path, buckets


@pytest.fixture
def file_settings(
    settings: ServiceSettings, two_policies: tuple[Path, dict[str, str]]
) -> ServiceSettings:
    return replace(
        settings, policy_source="file", policy_file=two_policies[0], default_policy="audio"
    )


@pytest.fixture
def client(file_settings: ServiceSettings, tone: ToneSynthesizer) -> Iterator[TestClient]:
    source = static_source(file_settings)
    stores = Stores(timeout_seconds=5, local_endpoint=file_settings.s3_endpoint_url)
    for entry in source.current().entries.values():
        assert isinstance(entry, ServedPolicy)
        stores.get(entry.storage).ensure_resources(entry.ttl_attribute)
    app = create_app(file_settings, synth=tone, clock=lambda: NOW, policies=source)
    with TestClient(app) as test:
        yield test


def test_each_request_is_stored_under_its_policy(
    client: TestClient, two_policies: tuple[Path, dict[str, str]], s3: Any, dynamodb: Any
) -> None:
    _, buckets = two_policies
    default = client.post("/tts/sync", json={"text": "Hello"}).json()
    voicemail = client.post("/tts/sync", json={"text": "Call me", "policy": "voicemail"}).json()

    assert default["policy"] == "audio"
    assert voicemail["policy"] == "voicemail"
    assert default["audio_expires_at"] == (NOW + timedelta(hours=1)).isoformat()
    assert voicemail["audio_expires_at"] == (NOW + timedelta(days=7)).isoformat()
    assert list_keys(s3, buckets["audio"]) == {f"temp-audio/2026-06-15/{default['audio_id']}.wav"}
    assert list_keys(s3, buckets["voicemail"]) == {f"vm/2026-06-15/{voicemail['audio_id']}.wav"}

    # The voicemail table expires items on "expires": the service writes it, with ttl.
    item = dynamodb.get_item(
        TableName=buckets["voicemail"],
        Key={"date": {"S": "2026-06-15"}, "audio_id": {"S": voicemail["audio_id"]}},
    )["Item"]
    promised = str(int((NOW + timedelta(days=7)).timestamp()))
    assert item["expires"] == {"N": promised}
    assert item["ttl"] == {"N": promised}


def test_lookups_find_audio_under_its_policy(client: TestClient) -> None:
    stored = client.post("/tts/sync", json={"text": "Call me", "policy": "team/voicemail"}).json()
    path = f"/tts/2026-06-15/{stored['audio_id']}"
    found = client.get(path, params={"policy": "voicemail"})
    assert found.status_code == 200
    assert found.json()["policy"] == "voicemail"
    # Under the default policy there is no such audio.
    assert client.get(path).status_code == 404


def test_an_unknown_policy_is_refused_before_any_work(
    client: TestClient, tone: ToneSynthesizer
) -> None:
    answer = client.post("/tts/sync", json={"text": "Hello", "policy": "nope"})
    assert answer.status_code == 422
    assert answer.json()["error"] == "unknown_policy"
    assert "team/audio" in answer.json()["message"]
    assert tone.calls == 0
    bad = client.post("/tts/sync", json={"text": "Hello", "policy": 7})
    assert bad.status_code == 422
    assert bad.json()["error"] == "invalid_request"
    lookup = client.get(f"/tts/2026-06-15/{uuid.uuid4()}", params={"policy": "nope"})
    assert lookup.status_code == 422
    assert lookup.json()["error"] == "unknown_policy"


def test_policies_lists_what_is_served(client: TestClient) -> None:
    listing = client.get("/policies").json()
    assert listing["default"] == "team/audio"
    retention = {row["name"]: row["retention"] for row in listing["policies"]}
    assert retention == {"audio": "1h", "voicemail": "7d"}


def test_metrics_count_stored_audio_by_policy(client: TestClient) -> None:
    client.post("/tts/sync", json={"text": "Call me", "policy": "voicemail"})
    client.post("/tts/sync", json={"text": "Hello", "policy": "nope"})
    text = client.get("/metrics").text
    assert 'tempaudio_audio_stored_total{policy="team/voicemail"} 1.0' in text
    assert 'tempaudio_policy_refusals_total{reason="unknown_policy"} 1.0' in text


def test_the_shorthand_cannot_disagree_with_a_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(policy("audio", "my-audio", "a/", "1h")))
    env = {"TEMPAUDIO_POLICY_FILE": str(path), "TEMPAUDIO_RETENTION": "24h"}
    with pytest.raises(ConfigError, match="TEMPAUDIO_RETENTION: the policy declares this"):
        ServiceSettings.from_env(env)
    with pytest.raises(ConfigError, match="TEMPAUDIO_BUCKET"):
        ServiceSettings.from_env({"TEMPAUDIO_POLICY_SOURCE": "kubernetes",
                                  "TEMPAUDIO_BUCKET": "x"})  # fmt: skip


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("kind: ConfigMap\nmetadata: {name: x}\n", "is not TempAudioPolicy"),
        (": :\n", "policy file"),
        (yaml.safe_dump(policy("a", "Not_A_Bucket", "p/", "1h")), "not a valid S3 bucket"),
        (yaml.safe_dump_all([policy("a", "abc", "p/", "1h")] * 2), "declared twice"),
    ],
)
def test_a_bad_policy_file_is_a_usage_error(
    tmp_path: Path, content: str, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(content)
    assert main(["--policy", str(path)]) == 2
    assert says in capsys.readouterr().err


def test_the_example_policy_file_starts_the_service_it_describes() -> None:
    settings = ServiceSettings.from_env(
        {"TEMPAUDIO_POLICY_FILE": str(REPO / "examples" / "policy.yaml")}
    )
    served = static_source(settings).current().resolve(None, 0)
    assert (served.key, served.storage.bucket) == ("tempaudio/audio", "my-audio")
