"""The real-node tier: a cluster that `make e2e` (scripts/e2e.sh) brought up on this machine.

S3, DynamoDB and SQS are moto's server in this process, listening on the bridge address, so
pods reach it and tests can set its clock. The chart is installed once per session with the
values a user of a small node would set, from the image built from the Dockerfile.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest
from kubernetes import client, config

from tempaudio_service.storage.aws_clients import make_sqs_client
from tempaudio_service.storage.embedded import LocalAws
from tempaudio_service.storage.job_queue import ensure_queue
from tempaudio_service.storage.store import AudioStore, make_dynamodb_client, make_s3_client
from tests.controlplane import REPO
from tests.kube_fixtures import wait_for as kube_wait_for

KUBECONFIG = os.environ.get("TEMPAUDIO_E2E_KUBECONFIG")
BIN = Path(os.environ.get("TEMPAUDIO_E2E_BIN", "/nonexistent"))
BRIDGE_IP = "10.209.0.1"  # scripts/cluster/node.sh
MOTO_PORT = 15000
ENDPOINT = f"http://{BRIDGE_IP}:{MOTO_PORT}"
NAMESPACE = "tempaudio"
JOBS_QUEUE = "tempaudio-jobs"
RELEASE = "ta"
IMAGE = os.environ.get("TEMPAUDIO_E2E_IMAGE", "localhost/tempaudio:e2e")
T = TypeVar("T")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if KUBECONFIG:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
        for item in items:  # the first one installs the chart and waits for its pods
            if "tests/cluster" in str(item.path):
                item.add_marker(pytest.mark.timeout(900))
        return
    skip = pytest.mark.skip(
        reason="the real-node tier runs with `make e2e` (root, about 1 GB of RAM): docs/development.md"
    )
    for item in items:
        if "tests/cluster" in str(item.path):
            item.add_marker(skip)


def wait_for(check: Callable[[], T | None], *, timeout: float = 120, what: str = "it") -> T:
    """tests.kube_fixtures.wait_for, with the longer default a real node needs."""
    return kube_wait_for(check, timeout=timeout, what=what)


def run(
    *command: str, check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """A tool from the node's binaries (helm, kubectl) against the e2e cluster."""
    tool = BIN / command[0]
    result = subprocess.run(
        [str(tool), *command[1:]], env={**os.environ, "KUBECONFIG": KUBECONFIG or ""},
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)}: {result.returncode}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="session")
def kube() -> client.ApiClient:
    return config.new_client_from_config(KUBECONFIG)


@pytest.fixture(scope="session")
def moto() -> Iterator[dict[str, Any]]:
    """S3, DynamoDB and SQS for the pods: the chart's default bucket and table, and the
    queue every replica takes job parts from."""
    with LocalAws(host=BRIDGE_IP, port=MOTO_PORT) as local:
        s3 = make_s3_client(region="us-east-1", endpoint_url=local.endpoint_url,
                            timeout_seconds=10, local=True)  # fmt: skip
        dynamodb = make_dynamodb_client(region="us-east-1", endpoint_url=local.endpoint_url,
                                        timeout_seconds=10, local=True)  # fmt: skip
        AudioStore(s3, dynamodb, bucket="tempaudio", table="tempaudio").ensure_resources(
            enable_ttl=False  # the operator's job
        )
        sqs = make_sqs_client(
            region="us-east-1", endpoint_url=local.endpoint_url, timeout_seconds=10, local=True
        )
        queue_url = ensure_queue(sqs, JOBS_QUEUE)
        # moto names the queue by the Host it was asked on: the pods must reach that host.
        assert urlsplit(queue_url).netloc == urlsplit(ENDPOINT).netloc, queue_url
        yield {
            "s3": s3,
            "dynamodb": dynamodb,
            "sqs": sqs,
            "queue_url": queue_url,
            "endpoint": local.endpoint_url,
        }


VALUES = [
    "-f", str(REPO / "charts/tempaudio/values-small.yaml"),
    "--set", f"image.repository={IMAGE.rsplit(':', 1)[0]}",
    "--set", f"image.tag={IMAGE.rsplit(':', 1)[1]}",
    "--set", "image.pullPolicy=Never",
    "--set", f"aws.endpointURL={ENDPOINT}",
    # Static keys in a Secret, as on MinIO or any cluster without IRSA.
    "--set", "aws.existingSecret=aws-keys",
    "--set", "service.logFormat=json",
    "--set", f"jobs.sqsEndpointUrl={ENDPOINT}",
    # Parts of 1,000 characters, so that one test's job spreads over every replica; a part
    # a pod took comes back 15 s after the pod is gone (docs/api/jobs.md).
    "--set-json", "service.extraEnv=" + json.dumps([
        {"name": "TEMPAUDIO_JOBS_PART_CHARS", "value": "1000"},
        {"name": "TEMPAUDIO_JOBS_VISIBILITY_SECONDS", "value": "15"},
    ]),
]  # fmt: skip


@pytest.fixture(scope="session")
def release(kube: client.ApiClient, moto: dict[str, Any]) -> Iterator[str]:
    core = client.CoreV1Api(kube)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    core.create_namespaced_secret(NAMESPACE, {
        "metadata": {"name": "aws-keys"},
        "stringData": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    })  # fmt: skip
    started = time.monotonic()
    run(
        "helm",
        "install",
        RELEASE,
        str(REPO / "charts/tempaudio"),
        "-n",
        NAMESPACE,
        *VALUES,
        "--set",
        f"jobs.queueUrl={moto['queue_url']}",
        "--wait",
        "--timeout",
        "8m",
    )
    logging.getLogger("e2e").info("helm install --wait: %.0f s", time.monotonic() - started)
    yield RELEASE
    run("helm", "uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)
