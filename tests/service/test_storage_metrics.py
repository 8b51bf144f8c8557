"""What TempAudioStorageUnavailable reads: readiness of the storage as a gauge, and failed
reads and checks counted with the failed writes (in an outage nothing writes: every pod is
unready, out of the Service)."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.errors import StorageUnavailable
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.storage.store import AudioStore
from tests.conftest import ToneSynthesizer


class Outage(AudioStore):
    """Storage whose reads and checks fail while ``down`` (writes are never tried here)."""

    down = False

    def _fail(self, what: str) -> None:
        if self.down:
            raise StorageUnavailable(f"{what} is unavailable; retry later")

    def check_s3(self) -> None:
        self._fail("S3")
        super().check_s3()

    def check_dynamodb(self) -> None:
        self._fail("DynamoDB")
        super().check_dynamodb()

    def get_item(self, date: str, audio_id: str) -> dict[str, Any] | None:
        self._fail("DynamoDB")
        return super().get_item(date, audio_id)


def sample(metrics: str, name: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_readiness_and_failed_reads_show_a_full_outage(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer, s3: Any, dynamodb: Any
) -> None:
    outage = Outage(s3, dynamodb, bucket=settings.bucket, table=settings.table)
    with TestClient(create_app(settings, synth=tone, store=outage)) as client:
        assert client.get("/readyz").status_code == 200
        metrics = client.get("/metrics").text
        assert sample(metrics, 'tempaudio_storage_ready{check="s3"}') == 1
        assert sample(metrics, 'tempaudio_storage_ready{check="dynamodb"}') == 1
        assert "tempaudio_storage_failures_total{" not in metrics
        outage.down = True
        client.app.state.services.readiness.checked_at = None  # type: ignore[attr-defined]
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert set(ready.json()["problems"]) == {"s3", "dynamodb"}
        lookup = client.get("/tts/2026-06-15/0f8fad5b-d9cb-469f-a165-70867728950e")
        assert lookup.json()["error"] == "storage_unavailable", lookup.text
        metrics = client.get("/metrics").text
        assert sample(metrics, 'tempaudio_storage_ready{check="s3"}') == 0
        assert sample(metrics, 'tempaudio_storage_ready{check="dynamodb"}') == 0
        for operation in ("check_s3", "check_dynamodb", "get_item"):
            name = f'tempaudio_storage_failures_total{{operation="{operation}"}}'
            assert sample(metrics, name) == 1, metrics
