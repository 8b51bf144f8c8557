"""What caller authentication adds to a request on a warm cache: two services side by side,
one with ``TEMPAUDIO_AUTH=none`` and one with ``serviceaccount`` against a real control
plane (etcd + kube-apiserver on loopback), a token minted through the TokenRequest API.
Requests alternate service by service at concurrency 1. Writes the "auth" section of
BENCHMARKS.md.

    python -m bench.auth
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
from kubernetes import client, config

from bench.common import TEXTS, alternate, free_port, machine_line, percentile, write_section
from bench.synthesis import local_moto, tempaudio_server
from tests.controlplane import ControlPlane

ROUNDS = 60  # reads: a DynamoDB GetItem and a signature, nothing else
SYNTH_ROUNDS = 20  # short text, repeat cache off


def mint_token(namespace: str = "default", account: str = "bench-caller") -> str:
    core = client.CoreV1Api()
    core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=["tempaudio"], expiration_seconds=3600)
    )
    return str(
        core.create_namespaced_service_account_token(account, namespace, request).status.token
    )


def main() -> None:
    workdir = Path(tempfile.mkdtemp(prefix="tempaudio-bench-auth-"))
    with ControlPlane(workdir / "k8s", controller_manager=False) as plane, local_moto():
        config.load_kube_config(str(plane.kubeconfig))
        headers = {"Authorization": f"Bearer {mint_token()}"}
        ports = {"none": free_port(), "serviceaccount": free_port()}
        http = httpx.Client(timeout=60)
        env = {"TEMPAUDIO_AUTH": "serviceaccount", "KUBECONFIG": str(plane.kubeconfig)}
        with (
            tempaudio_server(port=ports["none"]),
            tempaudio_server(port=ports["serviceaccount"], extra_env=env),
        ):
            bases = {mode: f"http://127.0.0.1:{port}" for mode, port in ports.items()}

            def post(mode: str) -> dict[str, str]:
                answer = http.post(
                    f"{bases[mode]}/tts/sync",
                    json={"text": TEXTS["short"], "cache": False},
                    headers=headers if mode == "serviceaccount" else {},
                )
                answer.raise_for_status()
                return dict(answer.json())

            made = {mode: post(mode) for mode in bases}  # warm: voices, arenas, the cache

            def read(mode: str) -> Callable[[], object]:
                where = f"{bases[mode]}/tts/{made[mode]['date']}/{made[mode]['audio_id']}"
                extra = headers if mode == "serviceaccount" else {}
                return lambda: http.get(where, headers=extra).raise_for_status()

            reads = alternate({mode: read(mode) for mode in bases}, ROUNDS)
            synths = alternate({mode: partial(post, mode) for mode in bases}, SYNTH_ROUNDS)
            reviews = http.get(f"{bases['serviceaccount']}/metrics").text
    lookups = [
        line for line in reviews.splitlines() if line.startswith("tempaudio_auth_lookups_total")
    ]
    print(reads, synths, lookups, flush=True)
    write_section("BENCHMARKS.md", "auth", report(reads, synths, lookups), "Benchmarks")


def _row(what: str, seconds: dict[str, list[float]]) -> str:
    none, sa = (statistics.median(seconds[m]) * 1000 for m in ("none", "serviceaccount"))
    p95 = {m: percentile(seconds[m], 95) * 1000 for m in seconds}
    return (
        f"| {what} | {len(seconds['none'])} | {none:.2f} / {p95['none']:.2f} "
        f"| {sa:.2f} / {p95['serviceaccount']:.2f} | {sa - none:+.2f} |"
    )


def report(
    reads: dict[str, list[float]], synths: dict[str, list[float]], lookups: list[str]
) -> str:
    return "\n".join([
        "## Caller authentication",
        "",
        (f"Measured by `python -m bench.auth` on {machine_line()}: two services, "
         "`TEMPAUDIO_AUTH=none` and `TEMPAUDIO_AUTH=serviceaccount` (TokenReview against a "
         "real kube-apiserver on loopback, verdicts cached 60 s), S3 and DynamoDB on moto; "
         "requests alternate service by service at concurrency 1, after one warm-up request "
         "each (the one TokenReview). Target: auth adds at most 2 ms at p50."),
        "",
        "| request | pairs | none p50 / p95 (ms) | serviceaccount p50 / p95 (ms) | added at p50 (ms) |",
        "| --- | --- | --- | --- | --- |",
        _row("GET /tts/{date}/{id} (read: GetItem + sign)", reads),
        _row("POST /tts/sync, short text, cache off", synths),
        "",
        ("The authenticated service's lookups over the run (`tempaudio_auth_lookups_total`): "
         + ", ".join(f"`{line}`" for line in lookups) + "."),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
