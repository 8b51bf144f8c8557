"""Callers through every endpoint that makes or reads audio, with the Kubernetes lookups
answered from a table (tests/operator/test_callers.py runs the real TokenReview): tokens,
clients, readers, quotas in audio seconds, the audit line, and an API that stops answering.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.testclient import TestClient

from tempaudio_service.access.identity import LookupUnavailable
from tempaudio_service.app import create_app
from tempaudio_service.core.config import ConfigError
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.policy.policy_sources import static_source
from tempaudio_service.storage.store import Stores
from tempaudio_service.wire.status_schemas import PolicyList
from tests.conftest import MovableClock, ToneSynthesizer
from tests.service.test_policies import policy

START = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
TOKENS = {
    "t-notifier": "system:serviceaccount:team-a:notifier",
    "t-support": "system:serviceaccount:support:agent",
    "t-stranger": "system:serviceaccount:team-b:notifier",
    "t-node": "system:node:worker-1",
}
LABELS = {"support": {"tempaudio.dev/reader": "true"}}


class TableLookups:
    """TokenReview and namespace reads from tables; ``down`` makes the API unreachable."""

    def __init__(self) -> None:
        self.down = False
        self.reviews = 0

    def review(self, token: str, audience: str) -> str | None:
        if self.down:
            raise LookupUnavailable("connection refused")
        self.reviews += 1
        return TOKENS.get(token) if audience == "tempaudio" else None

    def labels(self, namespace: str) -> Mapping[str, str]:
        if self.down:
            raise LookupUnavailable("connection refused")
        return LABELS.get(namespace, {})


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def status(test: TestClient, text: str, token: str) -> int:
    """The status of POST /tts/sync of ``text`` with ``token``."""
    return test.post("/tts/sync", json={"text": text}, headers=auth(token)).status_code


def serve(
    tmp_path: Path,
    settings: ServiceSettings,
    spec: dict[str, Any],
    *,
    auth_mode: str = "serviceaccount",
    **changes: Any,
) -> tuple[TestClient, TableLookups, MovableClock]:
    document = policy("audio", f"calls-{uuid.uuid4().hex[:10]}", "temp-audio/", "1h")
    document["spec"].update(spec)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    file_settings = replace(
        settings,
        policy_source="file",
        policy_file=path,
        default_policy="audio",
        auth=auth_mode,
        **changes,
    )
    source = static_source(file_settings)
    stores = Stores(timeout_seconds=5, local_endpoint=file_settings.s3_endpoint_url)
    stores.get(source.current().resolve(None, 0.0).storage).ensure_resources()
    lookups, clock = TableLookups(), MovableClock(START)
    app = create_app(
        file_settings, synth=ToneSynthesizer(), clock=clock, policies=source, lookups=lookups
    )
    return TestClient(app), lookups, clock


CLIENTS = {
    "clients": [{"namespace": "team-a", "serviceAccount": "notifier"}],
    "readers": [{"namespaceSelector": {"matchLabels": {"tempaudio.dev/reader": "true"}}}],
}


def test_every_endpoint_that_makes_audio_needs_an_allowed_caller(
    tmp_path: Path, settings: ServiceSettings
) -> None:
    test, _, _ = serve(tmp_path, settings, CLIENTS)
    calls = [
        ("/tts/sync", {"text": "Hello."}),
        ("/tts/stream", {"text": "Hello."}),
        ("/v1/audio/speech", {"model": "tts-1", "input": "Hello.", "voice": "alloy"}),
    ]
    with test:
        for path, body in calls:
            assert test.post(path, json=body).status_code == 401, path
            assert test.post(path, json=body, headers=auth("t-node")).status_code == 401, path
            assert test.post(path, json=body, headers=auth("t-stranger")).status_code == 403, path
            answer = test.post(path, json=body, headers=auth("t-notifier"))
            assert answer.status_code == 200, (path, answer.text)
        # OpenAI's error shape for OpenAI's clients.
        refused = test.post("/v1/audio/speech", json=calls[2][1], headers=auth("t-stranger"))
        assert refused.json()["error"]["code"] == "forbidden"
        assert refused.json()["error"]["type"] == "permission_error"
        unknown = test.post("/v1/audio/speech", json=calls[2][1])
        assert unknown.json()["error"]["type"] == "authentication_error"
        assert unknown.headers["www-authenticate"] == 'Bearer realm="tempaudio"'
        # Health, metrics and listings stay open; /policies says who may use each policy.
        for path in ("/healthz", "/voices", "/policies", "/v1/models", "/metrics"):
            assert test.get(path).status_code == 200, path
        listing = PolicyList.model_validate(test.get("/policies").json())
        assert listing.policies[0].names_clients is True


def test_stored_audio_answers_its_maker_and_the_readers_only(
    tmp_path: Path, settings: ServiceSettings, dynamodb: Any
) -> None:
    test, _, _ = serve(tmp_path, settings, CLIENTS)
    with test:
        made = test.post("/tts/sync", json={"text": "Hello."}, headers=auth("t-notifier")).json()
        streamed = test.post("/tts/stream", json={"text": "Hi."}, headers=auth("t-notifier"))
        for day, audio_id in (
            (made["date"], made["audio_id"]),
            (streamed.headers["x-tempaudio-date"], streamed.headers["x-tempaudio-audio-id"]),
        ):
            where = f"/tts/{day}/{audio_id}"
            assert test.get(where, headers=auth("t-notifier")).status_code == 200
            assert test.get(where, headers=auth("t-support")).status_code == 200  # by label
            hidden = test.get(where, headers=auth("t-stranger"))
            assert hidden.status_code == 404
            assert hidden.json()["error"] == "not_found"
            assert test.get(where).status_code == 401
    # The item records its caller, besides the seed's seven attributes.
    policy_table = yaml.safe_load((tmp_path / "policy.yaml").read_text())["spec"]["storage"][
        "bucket"
    ]
    found = dynamodb.get_item(
        TableName=policy_table,
        Key={"date": {"S": made["date"]}, "audio_id": {"S": made["audio_id"]}},
    )["Item"]
    assert found["caller"] == {"S": "team-a/notifier"}


def test_audio_seconds_per_hour_with_retry_after(tmp_path: Path, settings: ServiceSettings) -> None:
    test, _, clock = serve(tmp_path, settings, {"quotas": {"audioSecondsPerHour": 1}})
    body = {"text": "Hello there. " * 10, "cache": False}
    with test:
        first = test.post("/tts/sync", json=body, headers=auth("t-notifier"))
        assert first.status_code == 200
        assert first.json()["duration"] > 1  # crosses the limit: served
        limited = test.post("/tts/sync", json=body, headers=auth("t-notifier"))
        assert limited.status_code == 429
        assert limited.json()["error"] == "quota_exceeded"
        assert int(limited.headers["retry-after"]) == 3600
        # Another caller has its own quota.
        assert test.post("/tts/sync", json=body, headers=auth("t-support")).status_code == 200
        clock.now += timedelta(minutes=59, seconds=59)
        retry = test.post("/tts/sync", json=body, headers=auth("t-notifier"))
        assert retry.status_code == 429
        assert int(retry.headers["retry-after"]) == 1
        clock.now += timedelta(seconds=1)
        assert test.post("/tts/sync", json=body, headers=auth("t-notifier")).status_code == 200
        metrics = test.get("/metrics").text
    assert (
        'tempaudio_quota_refusals_total{policy="team/audio",quota="audio_seconds_per_hour"} 2.0'
        in metrics
    )


def test_a_policy_naming_clients_refuses_an_unauthenticated_service(
    tmp_path: Path, settings: ServiceSettings
) -> None:
    test, _, _ = serve(tmp_path, settings, CLIENTS, auth_mode="none")
    with test:
        refused = test.post("/tts/sync", json={"text": "Hello."})
    assert refused.status_code == 403
    assert "TEMPAUDIO_AUTH" in refused.json()["message"]


def test_cached_callers_outlive_an_api_outage_and_new_ones_get_503(
    tmp_path: Path, settings: ServiceSettings
) -> None:
    test, lookups, clock = serve(tmp_path, settings, {}, auth_cache_seconds=60)
    with test:
        assert status(test, "a", "t-notifier") == 200
        lookups.down = True
        assert status(test, "b", "t-notifier") == 200
        new = test.post("/tts/sync", json={"text": "c"}, headers=auth("t-support"))
        assert new.status_code == 503
        assert new.json()["error"] == "auth_unavailable"
        assert new.headers["retry-after"] == "5"
        clock.now += timedelta(seconds=60)  # the cache lifetime is over
        assert status(test, "d", "t-notifier") == 503
        lookups.down = False
        assert status(test, "e", "t-notifier") == 200


def test_a_warm_caller_costs_no_review_and_a_refusal_is_remembered_briefly(
    tmp_path: Path, settings: ServiceSettings
) -> None:
    test, lookups, clock = serve(tmp_path, settings, {})
    with test:
        for text in ("a", "b", "c"):
            test.post("/tts/sync", json={"text": text}, headers=auth("t-notifier"))
        assert lookups.reviews == 1
        for _ in range(3):
            assert (
                test.post("/tts/sync", json={"text": "x"}, headers=auth("bogus")).status_code == 401
            )
        assert lookups.reviews == 2
        clock.now += timedelta(seconds=10)
        test.post("/tts/sync", json={"text": "x"}, headers=auth("bogus"))
        assert lookups.reviews == 3


def test_audit_lines(
    tmp_path: Path, settings: ServiceSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tempaudio.audit")
    lines: list[dict[str, Any]] = []
    for audit_text in (False, True):
        caplog.clear()
        test, _, _ = serve(tmp_path, settings, CLIENTS, audit_text=audit_text)
        with test:
            made = test.post(
                "/tts/sync", json={"text": "Secret code 4815."}, headers=auth("t-notifier")
            )
            test.get(
                f"/tts/{made.json()['date']}/{made.json()['audio_id']}", headers=auth("t-stranger")
            )
            test.get("/healthz")
        lines = [r.audit for r in caplog.records if r.name == "tempaudio.audit"]  # type: ignore[attr-defined]
        assert len(lines) == 2  # the synthesis and the read; not the health check
        made_line, read_line = lines
        assert made_line["caller"] == "team-a/notifier"
        assert made_line["policy"] == "team/audio"
        assert made_line["characters"] == len("Secret code 4815.")
        assert made_line["audio_seconds"] == made.json()["duration"]
        assert made_line["outcome"] == "ok"
        assert made_line["status"] == 200
        assert ("text" in made_line) is audit_text
        assert read_line["caller"] == "team-b/notifier"
        assert read_line["status"] == 404
        assert read_line["outcome"] == "not_found"
        json.dumps(made_line)  # one JSON line


@pytest.mark.parametrize(("scope", "shared"), [(None, False), ("Caller", False), ("Policy", True)])
def test_the_repeat_cache_is_each_callers_own_unless_the_policy_shares_it(
    tmp_path: Path, settings: ServiceSettings, scope: str | None, shared: bool
) -> None:
    spec = {} if scope is None else {"repeatCacheScope": scope}
    test, _, _ = serve(tmp_path, settings, spec)
    body = {"text": "Your parcel arrives today."}
    with test:
        first = test.post("/tts/sync", json=body, headers=auth("t-notifier")).json()
        again = test.post("/tts/sync", json=body, headers=auth("t-notifier")).json()
        other = test.post("/tts/sync", json=body, headers=auth("t-stranger")).json()
    assert (first["cached"], again["cached"]) == (False, True)
    assert other["cached"] is shared  # another caller learns nothing unless the policy shares


def test_a_repeat_cache_scope_that_is_not_one_is_refused(
    tmp_path: Path, settings: ServiceSettings
) -> None:
    with pytest.raises(
        ConfigError, match="repeatCacheScope 'Tenant' must be one of Caller, Policy"
    ):
        serve(tmp_path, settings, {"repeatCacheScope": "Tenant"})


ROUTES = {
    "/tts/sync": {"text": "Hello."},
    "/tts/stream": {"text": "Hello."},
    # Without "policy": the audio is not kept, and answers to the default policy all the same.
    "/v1/audio/speech": {"model": "tts-1", "input": "Hello.", "voice": "alloy"},
}


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("auth_mode", ["none", "serviceaccount"])
def test_every_route_answers_to_the_default_policy_s_quotas_in_every_auth_mode(
    tmp_path: Path, settings: ServiceSettings, route: str, auth_mode: str
) -> None:
    test, _, _ = serve(
        tmp_path, settings, {"quotas": {"requestsPerMinute": 2}}, auth_mode=auth_mode
    )
    headers = auth("t-notifier") if auth_mode == "serviceaccount" else {}
    with test:
        answers = [test.post(route, json=ROUTES[route], headers=headers) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert answers[2].headers["retry-after"] == "60"  # START is on the minute


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("auth_mode", ["none", "serviceaccount"])
def test_every_route_answers_to_the_default_policy_s_clients_in_every_auth_mode(
    tmp_path: Path, settings: ServiceSettings, route: str, auth_mode: str
) -> None:
    test, _, _ = serve(tmp_path, settings, CLIENTS, auth_mode=auth_mode)
    with test:
        if auth_mode == "none":  # a policy that names clients admits no anonymous caller
            refused = test.post(route, json=ROUTES[route])
            admitted = None
        else:
            refused = test.post(route, json=ROUTES[route], headers=auth("t-stranger"))
            admitted = test.post(route, json=ROUTES[route], headers=auth("t-notifier"))
    assert refused.status_code == 403, refused.text
    assert admitted is None or admitted.status_code == 200
