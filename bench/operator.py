"""Operator benchmark and chaos run on the real control plane.

1. Latency: apply 20 policies one after another; time from create to CronJob present and
   to Ready=True (p50/p95), with the tempaudio-operator program running.
2. Chaos: create 40 policies, SIGKILL the operator mid-reconcile and start it again, then
   SIGKILL and restart kube-apiserver; every policy must converge to Ready=True with exactly
   one CronJob, and Events must stay a handful per policy (no storm).

    python -m bench.operator
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml
from kubernetes import client, config

from bench.common import BIN, REPO, machine_line, percentile, write_section
from tests.controlplane import ControlPlane

GROUP, VERSION, PLURAL = "tempaudio.dev", "v1alpha1", "tempaudiopolicies"


def manifest(name: str) -> dict[str, object]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "TempAudioPolicy", "metadata": {"name": name},
        "spec": {"storage": {"bucket": "bench-audio"}, "metadata": {"table": "bench-audio"}},
    }  # fmt: skip


def start_operator(plane: ControlPlane, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig), "TEMPAUDIO_OPERATOR_MANAGE_AWS": "false",
           "TEMPAUDIO_OPERATOR_DRIFT_INTERVAL": "5"}  # fmt: skip
    with log.open("ab") as output:
        return subprocess.Popen([str(BIN / "tempaudio-operator"), "-A", "--liveness", ""], env=env,
                                stdout=output, stderr=subprocess.STDOUT)  # fmt: skip


def is_ready(policy: dict[str, object]) -> bool:
    status = policy.get("status") or {}
    assert isinstance(status, dict)
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def wait(check, timeout: float = 120, interval: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except client.ApiException:
            value = None
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError


def latency(plane: ControlPlane, workdir: Path) -> tuple[list[float], list[float]]:
    custom, batch = client.CustomObjectsApi(), client.BatchV1Api()
    client.CoreV1Api().create_namespace({"metadata": {"name": "bench-latency"}})
    operator = start_operator(plane, workdir / "operator-latency.log")
    to_cronjob, to_ready = [], []
    try:
        time.sleep(3)  # the operator is up and watching
        for index in range(20):
            name = f"p{index:02d}"
            started = time.monotonic()
            custom.create_namespaced_custom_object(
                GROUP, VERSION, "bench-latency", PLURAL, manifest(name)
            )
            wait(lambda n=name: batch.read_namespaced_cron_job(f"{n}-cleanup", "bench-latency"))
            to_cronjob.append(time.monotonic() - started)
            wait(
                lambda n=name: is_ready(
                    custom.get_namespaced_custom_object(GROUP, VERSION, "bench-latency", PLURAL, n)
                )
            )
            to_ready.append(time.monotonic() - started)
    finally:
        operator.terminate()
        operator.wait(30)
    return to_cronjob, to_ready


def chaos(plane: ControlPlane, workdir: Path) -> dict[str, object]:
    custom, batch, core = client.CustomObjectsApi(), client.BatchV1Api(), client.CoreV1Api()
    namespace = "bench-chaos"
    core.create_namespace({"metadata": {"name": namespace}})
    log = workdir / "operator-chaos.log"
    operator = start_operator(plane, log)
    time.sleep(3)
    names = [f"c{index:02d}" for index in range(40)]

    def ready_count() -> int:
        items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)["items"]
        return sum(is_ready(p) for p in items)

    for index, name in enumerate(names):
        custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, manifest(name))
        if index == 19:
            operator.kill()  # mid-reconcile: half the policies exist, some reconciled
            operator.wait()
    ready_at_operator_kill = ready_count()
    operator = start_operator(plane, log)
    time.sleep(0.3)
    ready_at_apiserver_kill = ready_count()
    plane.restart("kube-apiserver")  # the API server goes away under the reconciling operator
    started = time.monotonic()
    try:

        def converged() -> bool:
            policies = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)[
                "items"
            ]
            return len(policies) == len(names) and all(is_ready(p) for p in policies)

        wait(converged, timeout=300, interval=0.5)
        converge_seconds = time.monotonic() - started
        time.sleep(10)  # two resync rounds: nothing more should happen
    finally:
        operator.terminate()
        operator.wait(30)
    cronjobs = Counter(
        c.metadata.labels["tempaudio.dev/policy"]
        for c in batch.list_namespaced_cron_job(namespace).items
    )
    events = Counter(
        (e.involved_object.name, e.reason) for e in core.list_namespaced_event(namespace).items
        if e.involved_object.kind == "TempAudioPolicy"
    )  # fmt: skip
    per_policy = Counter(name for name, _ in events.elements())
    return {
        "policies": len(names),
        "ready_at_operator_kill": ready_at_operator_kill,
        "ready_at_apiserver_kill": ready_at_apiserver_kill,
        "cronjobs_per_policy": sorted({cronjobs[n] for n in names}),
        "converge_seconds": converge_seconds,
        "max_events_per_policy": max(per_policy.values()) if per_policy else 0,
        "event_reasons": dict(Counter(reason for _, reason in events.elements())),
    }


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="tempaudio-bench-operator-"))
    with ControlPlane(workdir / "k8s") as plane:
        config.load_kube_config(str(plane.kubeconfig))
        for file in ("tempaudiopolicies.yaml", "tempaudiolexicons.yaml", "tempaudiovoices.yaml"):
            crd = yaml.safe_load((REPO / "crds" / file).read_text())
            client.ApiextensionsV1Api().create_custom_resource_definition(crd)
        time.sleep(2)
        to_cronjob, to_ready = latency(plane, workdir)
        result = chaos(plane, workdir)
    print(to_cronjob, to_ready, result, flush=True)
    body = "\n".join([
        "## Operator",
        "",
        (f"Measured by `python -m bench.operator` on {machine_line()}: the `tempaudio-operator` "
        "program against a real etcd + kube-apiserver + kube-controller-manager on loopback "
        "(AWS management off, so this is the Kubernetes side only)."),
        "",
        "| 20 policies, created one after another | p50 | p95 | max |",
        "| --- | --- | --- | --- |",
        f"| create -> CronJob present | {percentile(to_cronjob, 50):.2f} s | {percentile(to_cronjob, 95):.2f} s | {max(to_cronjob):.2f} s |",
        f"| create -> Ready=True | {percentile(to_ready, 50):.2f} s | {percentile(to_ready, 95):.2f} s | {max(to_ready):.2f} s |",
        "",
        (f"Chaos: {result['policies']} policies created back to back; the operator SIGKILLed after "
        f"the 20th (then {result['ready_at_operator_kill']} Ready) and restarted; 0.3 s later "
        f"(then {result['ready_at_apiserver_kill']} Ready) kube-apiserver SIGKILLed and restarted "
        "under it. All policies Ready "
        f"{result['converge_seconds']:.1f} s after the API server came back; CronJobs per policy: "
        f"{result['cronjobs_per_policy']} (exactly one each); at most "
        f"{result['max_events_per_policy']} Events per policy, by reason {result['event_reasons']}."),
    ])  # fmt: skip
    write_section("BENCHMARKS.md", "operator", body, "Benchmarks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
