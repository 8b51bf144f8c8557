"""Every dashboard query and every alert names series the programs really export: the real
Prometheus server (Debian's) scrapes a running service and the operator program on the real
control plane, after traffic that makes each series exist, and each query returns data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client

from tempaudio_service.app import create_app
from tempaudio_service.core.errors import StorageUnavailable
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.speech.synth import SynthesisOptions
from tempaudio_service.storage.store import AudioStore
from tests.alerts.prometheus import Prometheus, Target, running
from tests.alerts.rules import (
    alerts,
    branches,
    dashboard,
    left_side,
    metrics_named,
    panel_expressions,
    rule_groups,
)
from tests.conftest import ToneSynthesizer, documents_file, policy_document, serving
from tests.controlplane import ControlPlane, free_port
from tests.kube_fixtures import GROUP, PLURAL, VERSION, fresh_namespace, policy_manifest, wait_for
from tests.service.conftest import NOW

pytestmark = [
    pytest.mark.k8s,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="prometheus is not installed: run `make test-packages` as root (Debian prometheus)",
    ),
]
WAIT = 30


class HeldTone(ToneSynthesizer):
    """Holds texts that say "hold" until released: one request keeps the only slot."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()
        self.release = threading.Event()

    def sentences(self, text: str, voice: str, options: SynthesisOptions) -> Iterator[bytes]:
        if "hold" in text:
            self.holding.set()
            assert self.release.wait(WAIT)
        yield from super().sentences(text, voice, options)


class FlakyStore(AudioStore):
    failing = False

    def put_audio(self, key: str, audio: bytes, content_type: str = "audio/wav") -> None:
        if self.failing:
            raise StorageUnavailable("could not write audio to S3: Connection refused")
        super().put_audio(key, audio, content_type)


def policies_file(tmp_path: Path, settings: ServiceSettings) -> Path:
    return documents_file(
        tmp_path / "policies.yaml",
        policy_document("audio", settings.bucket, settings.table),
        policy_document(
            "limited", settings.bucket, settings.table, quotas={"requestsPerMinute": 1}
        ),
    )


def drive_the_service(base: str, synth: HeldTone, store: FlakyStore) -> None:
    """Traffic that makes every series of the service exist."""
    sync = f"{base}/tts/sync"
    assert httpx.get(f"{base}/readyz", timeout=WAIT).status_code == 200  # storage_ready
    assert httpx.post(sync, json={"text": "Hello there."}, timeout=WAIT).status_code == 200
    repeat = httpx.post(sync, json={"text": "Hello there."}, timeout=WAIT)
    assert repeat.json()["cached"] is True  # a repeat cache hit
    with httpx.stream("POST", f"{base}/tts/stream", json={"text": "One. Two."}, timeout=WAIT) as r:
        assert r.status_code == 200
        assert b"".join(r.iter_raw())
    # One request a minute under "limited", on a fixed clock: the second is refused.
    statuses = [
        httpx.post(sync, json={"text": f"q{i}", "policy": "limited"}, timeout=WAIT).status_code
        for i in range(2)
    ]
    assert statuses == [200, 429]
    unknown = httpx.post(sync, json={"text": "Anyone?", "policy": "nope"}, timeout=WAIT)
    assert unknown.json()["error"] == "unknown_policy", unknown.text
    store.failing = True
    assert httpx.post(sync, json={"text": "lost"}, timeout=WAIT).status_code == 503
    store.failing = False
    # The only slot held, no queue: the next synthesis is shed.
    held = threading.Thread(target=lambda: httpx.post(sync, json={"text": "hold"}, timeout=WAIT))
    held.start()
    try:
        assert synth.holding.wait(WAIT)
        shed = httpx.post(sync, json={"text": "shed"}, timeout=WAIT)
        assert (shed.status_code, shed.json()["error"]) == (503, "overloaded")
    finally:
        synth.release.set()
        held.join(WAIT)


@pytest.fixture
def operator_metrics(control_plane: ControlPlane, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The operator program on the control plane, with its metrics port: (address, namespace)."""
    port = free_port()
    env = {
        **os.environ, "KUBECONFIG": str(control_plane.kubeconfig),
        "TEMPAUDIO_OPERATOR_METRICS_PORT": str(port), "TEMPAUDIO_OPERATOR_MANAGE_AWS": "false",
        "TEMPAUDIO_OPERATOR_DRIFT_INTERVAL": "2",
    }  # fmt: skip
    with fresh_namespace("m") as namespace, (tmp_path / "operator.log").open("w") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "tempaudio-operator"), "--namespace", namespace,
             "--liveness", ""],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield f"127.0.0.1:{port}", namespace
        finally:
            process.terminate()
            process.wait(30)


def run_a_cleanup(namespace: str) -> None:
    """A policy, and one Job of its CronJob finished (this test plays the kubelet)."""
    custom, batch, core = client.CustomObjectsApi(), client.BatchV1Api(), client.CoreV1Api()
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL,
        policy_manifest("audio", {"storage": {"bucket": "my-audio"}, "dynamodb": {"table": "audio"}}),
    )  # fmt: skip
    cron = wait_for(lambda: batch.list_namespaced_cron_job(namespace).items, what="CronJob")[0]
    template = cron.spec.job_template
    batch.create_namespaced_job(namespace, client.V1Job(
        metadata=client.V1ObjectMeta(name="audio-cleanup-manual", labels=template.metadata.labels),
        spec=template.spec,
    ))  # fmt: skip
    pod = wait_for(
        lambda: core.list_namespaced_pod(namespace, label_selector="job-name=audio-cleanup-manual")
        .items, what="the Job's pod",
    )[0]  # fmt: skip
    container = pod.spec.containers[0]
    core.patch_namespaced_pod_status(pod.metadata.name, namespace, {"status": {
        "phase": "Succeeded",
        "containerStatuses": [{
            "name": container.name, "image": container.image, "imageID": "", "ready": False,
            "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
        }],
    }})  # fmt: skip


def all_evaluated(prometheus: Prometheus) -> list[dict[str, Any]] | None:
    """The loaded rules once each has been evaluated (Go's zero time: never)."""
    rules = prometheus.rules()
    done = rules and all(not r.get("lastEvaluation", "0001").startswith("0001") for r in rules)
    return rules if done else None


def returns_data(prometheus: Prometheus, expressions: list[tuple[str, str]]) -> None:
    missing = []
    for where, expression in expressions:
        try:
            prometheus.wait_for_series(expression, timeout=20)
        except AssertionError:
            missing.append(f"{where}: {expression}")
    assert not missing, "no series:\n" + "\n".join(missing)


def test_every_dashboard_query_and_alert_returns_series_from_the_programs(
    settings: ServiceSettings, store: AudioStore, s3: Any, dynamodb: Any, tmp_path: Path,
    operator_metrics: tuple[str, str],
) -> None:  # fmt: skip
    operator_address, namespace = operator_metrics
    file_settings = replace(
        settings, policy_source="file", policy_file=policies_file(tmp_path, settings),
        default_policy="audio", synth_workers=1, synth_queue=0,
    )  # fmt: skip
    synth = HeldTone()
    flaky = FlakyStore(s3, dynamodb, bucket=settings.bucket, table=settings.table)
    app = create_app(file_settings, synth=synth, store=flaky, clock=lambda: NOW)
    groups = rule_groups()
    with serving(app) as base:
        targets = [
            Target("tempaudio-service", base.removeprefix("http://"),
                   {"namespace": "tempaudio", "pod": "service-1"}),
            Target("tempaudio-operator", operator_address,
                   {"namespace": "tempaudio-system", "pod": "operator-1"}),
        ]  # fmt: skip
        with running(tmp_path, targets, groups) as prometheus:
            drive_the_service(base, synth, flaky)
            run_a_cleanup(namespace)
            up = prometheus.wait_for_series("sum(up) == 2")
            assert up, prometheus.log.read_text()
            queries = panel_expressions(dashboard())
            assert len(queries) >= 25
            # Each operand of an ``or`` on its own: every sign an alert reads must exist.
            rules = [
                (name, left_side(branch))
                for name, rule in alerts(groups).items()
                for branch in branches(rule["expr"])
            ]
            named = sorted({m for _, e in [*queries, *rules] for m in metrics_named(e)})
            returns_data(prometheus, [("metric", m) for m in named])
            returns_data(prometheus, rules)
            returns_data(prometheus, queries)
            # Loaded by the real server, and evaluated without errors.
            loaded = wait_for(lambda: all_evaluated(prometheus), what="every rule evaluated")
            assert {r["name"] for r in loaded} == set(alerts(groups))
            assert all(r["health"] == "ok" for r in loaded), loaded
