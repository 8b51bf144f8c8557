"""The tempaudio-operator program itself: flags, liveness, JSON logs, namespace scoping."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from kubernetes import client

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
) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = tmp_path / "operator.log"
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig),
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
            yield f"http://127.0.0.1:{port}/healthz", log
        finally:
            process.terminate()
            process.wait(30)


def test_operator_program_reconciles_its_namespace_and_answers_liveness(
    operator_process: tuple[str, Path], custom: client.CustomObjectsApi,
    batch: client.BatchV1Api, namespace: str,
) -> None:  # fmt: skip
    liveness, log = operator_process
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
    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines, log.read_text()
    assert all("message" in json.loads(line) for line in lines)
