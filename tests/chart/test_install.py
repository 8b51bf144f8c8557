"""helm against the real API server: dry-run of every object, install, upgrade, uninstall."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic

from tests.chart import keda
from tests.chart.helm import CHART, CI_VALUES, helm, render
from tests.controlplane import ControlPlane
from tests.kube_fixtures import GROUP, PLURAL, VERSION, wait_for

pytestmark = pytest.mark.k8s

SERVICE_MONITOR_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
    "spec": {
        "group": "monitoring.coreos.com",
        "scope": "Namespaced",
        "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
        }],
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def dynamic_client(control_plane: ControlPlane) -> dynamic.DynamicClient:
    """Also installs the Prometheus Operator's ServiceMonitor kind (schema-less) and KEDA's
    ScaledObject (its released CRD, schema and rules, from tests/chart/fixtures) for dry-runs."""
    extensions = client.ApiextensionsV1Api()
    for crd in (SERVICE_MONITOR_CRD, keda.crd()):
        try:
            extensions.create_custom_resource_definition(crd)
        except client.ApiException as error:
            if error.status != 409:
                raise
    for name in ("ci-apps", "ci-team-b"):
        try:
            client.CoreV1Api().create_namespace({"metadata": {"name": name}})
        except client.ApiException as error:
            if error.status != 409:
                raise
    dyn = dynamic.DynamicClient(client.ApiClient())
    wait_for(lambda: dyn.resources.get(api_version="monitoring.coreos.com/v1", kind="ServiceMonitor"),
             what="ServiceMonitor kind served")  # fmt: skip
    wait_for(
        lambda: dyn.resources.get(api_version="keda.sh/v1alpha1", kind="ScaledObject"),
        what="ScaledObject kind served",
    )
    return dyn


@pytest.mark.parametrize("values", [None, *CI_VALUES], ids=lambda v: v.name if v else "default")
def test_every_rendered_object_is_accepted_by_the_api_server(
    dynamic_client: dynamic.DynamicClient, namespace: str, values: Path | None
) -> None:
    objects = render("--namespace", namespace, *(["-f", str(values)] if values else []))
    for obj in objects:
        resource = dynamic_client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        target = obj["metadata"].get("namespace", namespace) if resource.namespaced else None
        # Server-side dry run: full validation and admission, nothing stored.
        resource.create(body=obj, namespace=target, dry_run="All")


@pytest.fixture
def release(control_plane: ControlPlane, namespace: str) -> Iterator[str]:
    name = f"r{uuid.uuid4().hex[:6]}"
    yield name
    helm("uninstall", name, "--namespace", namespace, "--no-hooks", check=False)


def objects_left(namespace: str, release: str) -> list[str]:
    selector = f"app.kubernetes.io/instance={release}"
    apps, core, rbac = client.AppsV1Api(), client.CoreV1Api(), client.RbacAuthorizationV1Api()
    left = [
        f"Deployment/{d.metadata.name}"
        for d in apps.list_namespaced_deployment(namespace, label_selector=selector).items
    ]
    left += [
        f"Service/{s.metadata.name}"
        for s in core.list_namespaced_service(namespace, label_selector=selector).items
    ]
    left += [
        f"ServiceAccount/{s.metadata.name}"
        for s in core.list_namespaced_service_account(namespace, label_selector=selector).items
    ]
    left += [
        f"ClusterRole/{r.metadata.name}"
        for r in rbac.list_cluster_role(label_selector=selector).items
    ]
    left += [
        f"ClusterRoleBinding/{r.metadata.name}"
        for r in rbac.list_cluster_role_binding(label_selector=selector).items
    ]
    # A deleted policy's final cleanup stays on purpose, to delete the audio its URLs
    # promised once they are over (docs/concepts/policies.md); test_served.py covers it.
    left += [
        f"CronJob/{c.metadata.name}"
        for c in client.BatchV1Api().list_namespaced_cron_job(namespace).items
        if "tempaudio.dev/retired-policy" not in (c.metadata.labels or {})
    ]
    left += [
        f"TempAudioPolicy/{p['metadata']['name']}"
        for p in client.CustomObjectsApi().list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL
        )["items"]
    ]
    return left  # fmt: skip


def cleanup_container(namespace: str) -> Any:
    cronjobs = client.BatchV1Api().list_namespaced_cron_job(namespace).items
    return cronjobs[0].spec.job_template.spec.template.spec.containers[0] if cronjobs else None


def test_install_reconcile_upgrade_uninstall(
    control_plane: ControlPlane, namespace: str, release: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kopf.testing import KopfRunner

    # --no-hooks: no kubelet on this tier to run the hooks' Jobs (tests/cluster runs them).
    installed = helm(
        "install",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--set",
        "image.tag=ci",
        "--no-hooks",
    )
    assert "tts/sync" in installed.stdout  # NOTES: how to call the service ...
    assert (
        f"kubectl -n {namespace} get tempaudiopolicies" in installed.stdout
    )  # ... and inspect policies

    # The operator runs in-process with the environment the chart gives its Deployment.
    deployment = client.AppsV1Api().read_namespaced_deployment(
        f"{release}-tempaudio-operator", namespace
    )
    for variable in deployment.spec.template.spec.containers[0].env:
        monkeypatch.setenv(variable.name, variable.value or "")
    assert os.environ["TEMPAUDIO_OPERATOR_CLEANUP_IMAGE"] == "ghcr.io/tempaudio/tempaudio:ci"
    monkeypatch.setenv("TEMPAUDIO_OPERATOR_MANAGE_AWS", "false")
    with KopfRunner(
        ["run", "--standalone", "-n", namespace, "-m", "tempaudio_operator.handlers"], timeout=120
    ) as runner:
        container = wait_for(
            lambda: cleanup_container(namespace), what="CronJob from the chart's policy"
        )
        args = container.args
        assert args[args.index("--retention") + 1] == "24h"
        assert args[args.index("--bucket") + 1] == "tempaudio"
        assert args[args.index("--prefix") + 1] == "temp-audio/"
        assert container.image == "ghcr.io/tempaudio/tempaudio:ci"
        cron = client.BatchV1Api().list_namespaced_cron_job(namespace).items[0]
        assert cron.spec.schedule == "*/15 * * * *"
        assert (
            cron.spec.job_template.spec.template.spec.service_account_name
            == f"{release}-tempaudio-cleanup"
        )

        helm(
            "upgrade",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--reuse-values",
            "--set",
            "retention=48h",
            "--no-hooks",
        )
        wait_for(
            lambda: (
                (c := cleanup_container(namespace))
                and c.args[c.args.index("--retention") + 1] == "48h"
            ),
            what="retention upgrade reaches the CronJob",
        )
        # The service follows the same policy (tests/operator/test_served.py serves it).
        policy = client.CustomObjectsApi().get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, f"{release}-tempaudio"
        )
        assert policy["spec"]["retention"] == "48h"

        # No kubelet on this tier to run the pre-delete hook's Job (tests/cluster runs it);
        # the in-process operator lets the policy go.
        helm("uninstall", release, "--namespace", namespace, "--no-hooks")
        wait_for(lambda: not objects_left(namespace, release), what="nothing left after uninstall")
        finals = client.BatchV1Api().list_namespaced_cron_job(namespace).items
        assert [c.metadata.name for c in finals] == [f"{release}-tempaudio-final"]
    assert runner.exception is None, runner.output
    crd = client.ApiextensionsV1Api().read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    assert crd.metadata.name == f"{PLURAL}.{GROUP}"  # CRDs stay, as helm does
