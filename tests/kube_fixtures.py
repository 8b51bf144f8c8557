"""Fixtures on the real control plane: CRD installed, namespaces, API clients, the operator."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client, config

from tests.controlplane import REPO, ControlPlane

T = TypeVar("T")
GROUP, VERSION, PLURAL = "tempaudio.dev", "v1alpha1", "tempaudiopolicies"


def wait_for(check: Callable[[], T | None], *, timeout: float = 60, what: str = "condition") -> T:
    """Poll until ``check`` returns something truthy; fail with the last value otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except client.ApiException as error:
            last = error
        if last:
            return last  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}")


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with ControlPlane(tmp_path_factory.mktemp("k8s")) as plane, pytest.MonkeyPatch.context() as mp:
        mp.setenv("KUBECONFIG", str(plane.kubeconfig))
        config.load_kube_config(str(plane.kubeconfig))
        extensions = client.ApiextensionsV1Api()
        for file in ("tempaudiopolicies.yaml", "tempaudiolexicons.yaml", "tempaudiovoices.yaml"):
            crd = yaml.safe_load((REPO / "crds" / file).read_text())
            extensions.create_custom_resource_definition(crd)

            def established(name: str = crd["metadata"]["name"]) -> bool:
                found = extensions.read_custom_resource_definition(name)
                return any(
                    c.type == "Established" and c.status == "True"
                    for c in found.status.conditions or []
                )

            wait_for(established, what=f"CRD {file} established")
        yield plane


@contextmanager
def fresh_namespace(prefix: str) -> Iterator[str]:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    client.CoreV1Api().create_namespace({"metadata": {"name": name}})
    try:
        yield name
    finally:
        client.CoreV1Api().delete_namespace(name)


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    with fresh_namespace("t") as name:
        yield name


@pytest.fixture
def custom(control_plane: ControlPlane) -> client.CustomObjectsApi:
    return client.CustomObjectsApi()


@pytest.fixture
def batch(control_plane: ControlPlane) -> client.BatchV1Api:
    return client.BatchV1Api()


@pytest.fixture
def core(control_plane: ControlPlane) -> client.CoreV1Api:
    return client.CoreV1Api()


def run_here(container: Any, now: datetime, **env: str) -> subprocess.CompletedProcess[str]:
    """Play the kubelet: run a container's command with its env on this machine, with the
    clock injected (the cleanup program's hidden --now)."""
    environment = {**os.environ, **{e.name: e.value for e in container.env or []}, **env}
    command = [str(Path(sys.executable).parent / container.command[0]), *container.args]
    return subprocess.run(
        [*command, "--now", now.isoformat()],
        env=environment, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def delete_policy(custom: client.CustomObjectsApi, namespace: str, name: str) -> None:
    """Delete a policy and wait until it is gone (the operator's finalizer has run)."""
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    wait_policy_gone(custom, namespace, name)


def wait_policy_gone(custom: client.CustomObjectsApi, namespace: str, name: str) -> None:
    def gone() -> bool:
        try:
            custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
        except client.ApiException as error:
            if error.status == 404:
                return True
            raise
        return False

    wait_for(gone, what=f"policy {name} gone")


def policy_manifest(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TempAudioPolicy",
        "metadata": {"name": name},
        "spec": spec,
    }


@pytest.fixture(scope="module")
def operator(
    control_plane: ControlPlane, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """The operator, in-process through kopf's KopfRunner, watching the tests' ``t-*``
    namespaces (the ``namespace`` fixture's); tests of the operator program use their own
    prefix, so two operators never reconcile one policy."""
    from kopf.testing import KopfRunner

    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "TEMPAUDIO_OPERATOR_CLEANUP_IMAGE": "tempaudio:test",
            "TEMPAUDIO_OPERATOR_DRIFT_INTERVAL": "2",
            "TEMPAUDIO_OPERATOR_AWS_RETRY": "2",
            "TEMPAUDIO_OPERATOR_TTL_THROTTLE_RETRY": "2",
            # The resync loop's scope, as kopf's "-n t-*" below (it listed everything before).
            "TEMPAUDIO_OPERATOR_NAMESPACES": "t-*",
            # moto, and the tests' own listeners, all on loopback.
            "TEMPAUDIO_OPERATOR_ALLOWED_ENDPOINTS": "http://127.0.0.1",
            "TEMPAUDIO_OPERATOR_ALLOWED_SERVICE_ACCOUNTS": "cleaner",
        }.items():
            mp.setenv(name, value)
        args = ["run", "-n", "t-*", "--standalone", "-m", "tempaudio_operator.handlers"]
        with KopfRunner(args, timeout=120) as runner:
            yield
    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output
