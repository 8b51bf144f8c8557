"""The service tier's client: the tone synthesizer, moto's server, and an injected clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.settings import ServiceSettings
from tempaudio_service.store import AudioStore
from tests.conftest import ToneSynthesizer

# Tests inject the clock: nothing here depends on the wall clock or the time of day.
NOW = datetime(2026, 6, 15, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def client(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> Iterator[TestClient]:
    with TestClient(create_app(settings, synth=tone, store=store, clock=lambda: NOW)) as test:
        yield test
