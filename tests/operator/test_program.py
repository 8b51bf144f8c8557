"""The tempaudio-operator program itself: flags, liveness, JSON logs, namespace scoping."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client, utils

from tempaudio_service.storage.store import AudioStore
from tests.chart.helm import CHART, helm
from tests.controlplane import ControlPlane, free_port
from tests.kube_fixtures import GROUP, PLURAL, VERSION, fresh_namespace, policy_manifest, wait_for

pytestmark = pytest.mark.k8s


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """Outside the in-process operator's ``t-*`` namespaces: only the program reconciles here."""
    with fresh_namespace("p") as name:
        yield name


@pytest.fixture
def operator_process(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> Iterator[tuple[str, Path, str]]:
    port, metrics_port = free_port(), free_port()
    log = tmp_path / "operator.log"
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig),
        "TEMPAUDIO_OPERATOR_METRICS_PORT": str(metrics_port),
        "TEMPAUDIO_OPERATOR_MANAGE_AWS": "false",
        "TEMPAUDIO_OPERATOR_CLEANUP_IMAGE": "registry.example/tempaudio:9.9",
    }
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "tempaudio-operator"), "--namespace", namespace,
             "--liveness", f"http://127.0.0.1:{port}/healthz", "--log-format", "json"],
            env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield (
                f"http://127.0.0.1:{port}/healthz",
                log,
                f"http://127.0.0.1:{metrics_port}/metrics",
            )
        finally:
            process.terminate()
            process.wait(30)


def test_operator_program_reconciles_its_namespace_and_answers_liveness(
    operator_process: tuple[str, Path, str], custom: client.CustomObjectsApi,
    batch: client.BatchV1Api, namespace: str,
) -> None:  # fmt: skip
    liveness, log, metrics = operator_process
    custom.create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL,
        policy_manifest("audio", {"storage": {"bucket": "my-audio"}, "metadata": {"table": "t1x"}}),
    )  # fmt: skip
    cron = wait_for(
        lambda: batch.list_namespaced_cron_job(namespace).items, what="CronJob from the program"
    )[0]
    assert cron.spec.job_template.spec.template.spec.containers[0].image == (
        "registry.example/tempaudio:9.9"
    )
    assert wait_for(lambda: httpx.get(liveness).status_code == 200, what="liveness")
    # The operator exported no metrics before.
    scraped = wait_for(
        lambda: (t := httpx.get(metrics).text) and 'outcome="ready"} 1.0' in t and t,
        what="reconcile counted in /metrics",
    )
    assert "tempaudio_operator_cleanups_total" in scraped
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines, log.read_text()
    assert all("message" in json.loads(line) for line in lines)


def test_namespaced_operator_with_the_charts_rbac_repairs_drift(
    control_plane: ControlPlane, custom: client.CustomObjectsApi, core: client.CoreV1Api,
    namespace: str, moto_endpoint: str, dynamodb: Any, s3: Any, tmp_path: Path,
) -> None:  # fmt: skip
    """The operator as the chart runs it in namespaced mode: its own ServiceAccount, the
    chart's RBAC, ``--namespace`` flags. Its resync loop listed cluster-wide before, got 403
    and never repaired anything; ``-n`` also merged with the env list instead of replacing it."""
    release = f"r{uuid.uuid4().hex[:6]}"
    rendered = helm(
        "template", release, str(CHART), "--namespace", namespace,
        "--set", f"operator.watchNamespaces={{{namespace}}}", "--set", "policy.create=false",
        "--show-only", "templates/operator/rbac.yaml",
        "--show-only", "templates/operator/serviceaccount.yaml",
    ).stdout  # fmt: skip
    api = client.ApiClient()
    for manifest in (doc for doc in yaml.safe_load_all(rendered) if doc):
        utils.create_from_dict(api, manifest, namespace=namespace)
    account = f"{release}-tempaudio-operator"
    token = core.create_namespaced_service_account_token(
        account, namespace, {"spec": {"expirationSeconds": 3600}}
    ).status.token
    kubeconfig = tmp_path / "operator-kubeconfig"
    kubeconfig.write_text(control_plane.kubeconfig.read_text().replace(control_plane.token, token))
    store = AudioStore(s3, dynamodb, bucket=f"ns-{release}", table=f"ns-{release}")
    store.ensure_resources(enable_ttl=False)
    log = tmp_path / "operator.log"
    env = {
        **os.environ, "KUBECONFIG": str(kubeconfig),
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "TEMPAUDIO_OPERATOR_DRIFT_INTERVAL": "2",
        "TEMPAUDIO_OPERATOR_ALLOWED_ENDPOINTS": "http://127.0.0.1",
        # Replaced by the flag, not merged with it (a namespace it may not list).
        "TEMPAUDIO_OPERATOR_NAMESPACES": "kube-system",
    }  # fmt: skip
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "tempaudio-operator"), "--namespace", namespace,
             "--liveness", ""],
            env=env, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL,
                policy_manifest("audio", {
                    "storage": {"bucket": store.bucket, "endpointURL": moto_endpoint},
                    "metadata": {"table": store.table},
                }),
            )  # fmt: skip

            def ttl_enabled() -> bool:
                described = dynamodb.describe_time_to_live(TableName=store.table)
                return bool(described["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED")

            wait_for(ttl_enabled, what="TTL enabled by the namespaced operator")
            dynamodb.update_time_to_live(
                TableName=store.table,
                TimeToLiveSpecification={"Enabled": False, "AttributeName": "ttl"},
            )
            wait_for(ttl_enabled, what="TTL drift repaired by the resync loop", timeout=30)
        finally:
            process.terminate()
            process.wait(30)
    # No 403 from the API server; a log timestamp's milliseconds (",403]") are not one.
    assert not re.search(r"(?<![,\d])403\b", log.read_text()), log.read_text()[-3000:]
