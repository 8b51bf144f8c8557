"""What state shared across replicas costs a request at concurrency 1: quotas counted in the
policy's table against a policy without quotas (what the in-memory count cost: nothing
measurable), and a repeat found in the table by another replica against one found in the
replica's own memory. On moto directly, through the fault proxy (its own cost per call),
and with 20 ms added to every DynamoDB call there. Requests alternate, so a drift in the machine's speed hits all alike.

    python -m bench.shared_state            # writes the "shared-state" section of BENCHMARKS.md
    python -m bench.shared_state --quick

The services are their own processes with the real voice; moto's server runs here. Loopback
only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx
import yaml

from bench.common import (
    BIN,
    TEXTS,
    alternate,
    clean_env,
    free_port,
    fresh_storage,
    machine_line,
    percentile,
    write_section,
)
from bench.faultproxy import FaultProxy
from bench.synthesis import server
from tempaudio_service.storage.embedded import LocalAws

DYNAMODB_DELAY = 0.020


def _policy(path: Path, name: str, s3: str, dynamodb: str, quotas: bool) -> Path:
    spec: dict[str, object] = {
        "retention": "1h",
        "storage": {"bucket": name, "endpointURL": s3},
        "dynamodb": {"table": name, "endpointURL": dynamodb},
    }
    if quotas:  # limits no request here reaches: every one is counted, none refused
        spec["quotas"] = {"requestsPerMinute": 100_000, "audioSecondsPerHour": 10_000_000}
    document = {"apiVersion": "tempaudio.dev/v1alpha1", "kind": "TempAudioPolicy",
                "metadata": {"name": "bench"}, "spec": spec}  # fmt: skip
    path.write_text(yaml.safe_dump(document))
    return path


@contextmanager
def service(
    policy: Path, *, cache: bool
) -> Iterator[Callable[[dict[str, object]], dict[str, object]]]:
    port = free_port()
    env = clean_env(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", TEMPAUDIO_LOCAL_AWS="false",
        TEMPAUDIO_POLICY_FILE=str(policy), TEMPAUDIO_PORT=str(port),
        TEMPAUDIO_SYNTH_WORKERS="1", TEMPAUDIO_LOG_LEVEL="WARNING",
        TEMPAUDIO_REPEAT_CACHE_ENTRIES="10000" if cache else "0",
    )  # fmt: skip
    with server([str(BIN / "tempaudio-service")], env, f"http://127.0.0.1:{port}/readyz"):
        client = httpx.Client(timeout=600)

        def call(body: dict[str, object]) -> dict[str, object]:
            answer = client.post(f"http://127.0.0.1:{port}/tts/sync", json=body)
            answer.raise_for_status()
            result: dict[str, object] = answer.json()
            return result

        yield call


def measure(moto: str, delay: float | None, rounds: int, tmp: Path) -> dict[str, float]:
    """p50 ms of: no quotas, quotas; a hit from memory, a hit from the table. ``delay``
    None: DynamoDB on moto directly; else through the fault proxy with that delay."""
    with ExitStack() as stack:
        dynamodb = moto
        if delay is not None:
            proxy = FaultProxy(moto, "dynamodb")
            stack.callback(proxy.close)
            if delay:
                proxy.set("slow", delay=delay)
            dynamodb = proxy.url
        name = fresh_storage(moto, "shared")
        body = {"text": TEXTS["short"], "cache": False}
        with ExitStack() as pair:  # the two alone on the machine, then the next two
            plain = pair.enter_context(
                service(
                    _policy(tmp / f"plain-{delay}.yaml", name, moto, dynamodb, False), cache=False
                )
            )
            counted = pair.enter_context(
                service(
                    _policy(tmp / f"quotas-{delay}.yaml", name, moto, dynamodb, True), cache=False
                )
            )
            for call in (plain, counted):
                call(body)
            quota = alternate(
                {"none": lambda: plain(body), "quotas": lambda: counted(body)}, rounds
            )
        cached = _policy(tmp / f"cache-{delay}.yaml", name, moto, dynamodb, False)
        a = stack.enter_context(service(cached, cache=True))
        b = stack.enter_context(service(cached, cache=True))
        for call in (a, b):
            call(body)
        memory, table = [], []
        for i in range(rounds):
            prompt = {"text": f"{TEXTS['short']} Number {i}."}
            assert a(prompt)["cached"] is False  # made on A
            times = alternate({"memory": lambda p=prompt: a(p), "table": lambda p=prompt: b(p)}, 1)
            memory += times["memory"]
            table += times["table"]
    return {
        "none": percentile(quota["none"], 50) * 1000,
        "quotas": percentile(quota["quotas"], 50) * 1000,
        "memory": percentile(memory, 50) * 1000,
        "table": percentile(table, 50) * 1000,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    rounds = 8 if args.quick else 30
    rows = []
    with LocalAws() as local, TemporaryDirectory() as tmp:
        for label, delay in (("moto", None), ("moto through the fault proxy", 0.0),
                             ("fault proxy + 20 ms on DynamoDB", DYNAMODB_DELAY)):  # fmt: skip
            p50 = measure(local.endpoint_url, delay, rounds, Path(tmp))
            rows.append(
                f"| {label} | {p50['none']:.1f} | {p50['quotas']:.1f} | "
                f"{p50['quotas'] - p50['none']:+.1f} | {p50['memory']:.1f} | {p50['table']:.1f}"
                f" | {p50['table'] - p50['memory']:+.1f} |"
            )
            print(rows[-1], json.dumps(p50), flush=True)
    body = "\n".join([
        "## Shared quotas and repeat cache: latency at concurrency 1",
        "",
        (f"p50 in ms of POST /tts/sync, short text, {rounds} rounds, requests taking turns. "
         "Quotas: a policy with both quotas (every request counted, none refused: one conditional UpdateItem before synthesis, and the audio's UpdateItem after the answer) against the same policy without (no call; the in-memory "
         "count of before cost no measurable time). Repeats: a prompt made on replica A, then "
         "repeated on A (found in A's memory) and on B (found in the table: one GetItem, then "
         "the same copy). Through the fault proxy, with the delay on DynamoDB only."),
        "",
        "| storage | no quotas | quotas | added | hit from memory | hit from the table | added |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ])  # fmt: skip
    write_section(
        "BENCHMARKS.md", "shared-state",
        f"{body}\n\nMeasured by `python -m bench.shared_state` on {machine_line()}.",
        "Benchmarks",
    )  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
