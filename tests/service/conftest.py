"""The service tier's client: the tone synthesizer, moto's server, and an injected clock; and
replicas of the service on a policy file's storage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.policy.policy_sources import static_source
from tempaudio_service.storage.store import AudioStore, Stores
from tests.conftest import ToneSynthesizer, documents_file, policy_document

# Tests inject the clock: nothing here depends on the wall clock or the time of day.
NOW = datetime(2026, 6, 15, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def client(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> Iterator[TestClient]:
    with TestClient(create_app(settings, synth=tone, store=store, clock=lambda: NOW)) as test:
        yield test


def policy_file(tmp_path: Path, name: str, **spec: Any) -> Path:
    """A policy file for the storage ``name`` (bucket and table), ``spec`` on top."""
    return documents_file(tmp_path / f"{name}.yaml", policy_document("audio", name, name, **spec))


def replicas(
    tmp_path: Path, settings: ServiceSettings, count: int = 2, name: str = "", **spec: Any
) -> tuple[ExitStack, list[TestClient], str]:
    """``count`` replicas on the storage ``name`` (new storage by default)."""
    name = name or f"replicas-{uuid.uuid4().hex[:10]}"
    file_settings = replace(
        settings, policy_source="file", policy_file=policy_file(tmp_path, name, **spec)
    )
    source = static_source(file_settings)
    stores = Stores(timeout_seconds=5, local_endpoint=file_settings.s3_endpoint_url)
    stores.get(source.current().resolve(None, 0.0).storage).ensure_resources()
    stack = ExitStack()
    clients = []
    for _ in range(count):  # each its own app: clients, caches and pools, as a pod has
        app = create_app(
            file_settings, synth=ToneSynthesizer(), clock=lambda: NOW,
            policies=static_source(file_settings),
        )  # fmt: skip
        clients.append(stack.enter_context(TestClient(app)))
    return stack, clients, name
