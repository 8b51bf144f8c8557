"""The age of the service's policy view in /metrics, which the chart's TempAudioPolicyViewStale
alert compares with TEMPAUDIO_POLICY_MAX_STALENESS."""

from __future__ import annotations

import math
import time
from dataclasses import replace

from prometheus_client import generate_latest
from starlette.testclient import TestClient

from tempaudio_service.app import create_app
from tempaudio_service.core.metrics import Metrics
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.policy.policies import PolicyBook
from tempaudio_service.policy.policy_sources import KubernetesPolicies
from tempaudio_service.storage.store import AudioStore
from tests.conftest import ToneSynthesizer


def test_the_age_of_a_book() -> None:
    assert PolicyBook().age(100.0) == 0.0  # declared in a file or the environment
    assert PolicyBook(synced_at=40.0).age(100.0) == 60.0
    assert PolicyBook(synced_at=-math.inf).age(100.0) == math.inf  # never heard from
    assert PolicyBook(synced_at=101.0).age(100.0) == 0.0


def test_a_declared_policy_view_is_never_old(
    settings: ServiceSettings, store: AudioStore, tone: ToneSynthesizer
) -> None:
    app = create_app(replace(settings, policy_max_staleness_seconds=120), synth=tone, store=store)
    with TestClient(app) as client:
        text = client.get("/metrics").text
    assert "tempaudio_policy_view_age_seconds 0.0" in text
    assert "tempaudio_policy_view_max_age_seconds 120.0" in text


def test_the_watched_view_ages_from_its_last_contact_at_each_scrape() -> None:
    settings = ServiceSettings(policy_source="kubernetes", policy_namespaces=("team",))
    source = KubernetesPolicies(settings)
    metrics = Metrics.create()
    metrics.follow_policy_view(
        lambda: source.current().age(time.monotonic()), settings.policy_max_staleness_seconds
    )
    assert "tempaudio_policy_view_age_seconds +Inf" in generate_latest(metrics.registry).decode()
    source.relisted("team", "tempaudiopolicies", [])
    source.relisted("team", "tempaudiolexicons", [])
    source.relisted("team", "tempaudiovoices", [])
    age = metrics.registry.get_sample_value("tempaudio_policy_view_age_seconds")
    assert age is not None
    assert 0 <= age < 60
