"""The real voice behind the whole app, on moto's server: what the e2e tests call."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.storage.store import AudioStore


@pytest.fixture
def client(settings: ServiceSettings, store: AudioStore, piper: Any) -> Iterator[TestClient]:
    with TestClient(create_app(settings, synth=piper, store=store)) as test_client:
        yield test_client
