"""Reliability runs: API fuzzing, storage faults under load, and a bounded soak.

    python -m bench.reliability                     # fuzz + faults + 10-minute soak
    python -m bench.reliability --soak-seconds 60   # shorter soak
    python -m bench.reliability --only fuzz         # one part

The service runs as its own process against moto's server (in this process), reached
through fault proxies (bench/faultproxy.py) so S3 and DynamoDB can be taken down,
slowed or made to fail half their calls. Loopback only; every loop is bounded.
Writes RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import psutil

from bench.common import BIN, TEXTS, clean_env, free_port, machine_line, wait_http, write_section
from bench.faultproxy import FaultProxy
from tempaudio_service.storage.embedded import LocalAws
from tempaudio_service.storage.layout import is_audio_item
from tempaudio_service.storage.store import AudioStore, make_dynamodb_client, make_s3_client


@dataclass
class Stack:
    base: str
    process: subprocess.Popen[bytes]
    s3_proxy: FaultProxy
    dynamodb_proxy: FaultProxy
    bucket: str
    table: str
    s3: Any
    dynamodb: Any


@contextmanager
def stack(moto: str, **env: str) -> Iterator[Stack]:
    suffix = uuid.uuid4().hex[:8]
    bucket, table = f"rel-{suffix}", f"rel-{suffix}"
    s3 = make_s3_client(region="us-east-1", endpoint_url=moto, timeout_seconds=10, local=True)
    dynamodb = make_dynamodb_client(
        region="us-east-1", endpoint_url=moto, timeout_seconds=10, local=True
    )
    AudioStore(s3, dynamodb, bucket=bucket, table=table).ensure_resources()
    s3_proxy, dynamodb_proxy = FaultProxy(moto, "s3"), FaultProxy(moto, "dynamodb")
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "tempaudio-service")],
        env=clean_env(
            AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
            TEMPAUDIO_LOCAL_AWS="false", TEMPAUDIO_PORT=str(port),
            TEMPAUDIO_BUCKET=bucket, TEMPAUDIO_TABLE=table,
            TEMPAUDIO_S3_ENDPOINT_URL=s3_proxy.url, TEMPAUDIO_DYNAMODB_ENDPOINT_URL=dynamodb_proxy.url,
            TEMPAUDIO_IO_TIMEOUT="2", TEMPAUDIO_LOG_LEVEL="WARNING",
            TEMPAUDIO_REPEAT_CACHE_ENTRIES="0", **env,
        ),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/readyz", process)
        yield Stack(base, process, s3_proxy, dynamodb_proxy, bucket, table, s3, dynamodb)
    finally:
        process.terminate()
        process.wait(30)
        s3_proxy.close()
        dynamodb_proxy.close()


def orphans(st: Stack) -> tuple[int, int, int]:
    """(objects, items, mismatches): every object needs its item and every item its object."""
    keys = {
        entry["Key"]
        for page in st.s3.get_paginator("list_objects_v2").paginate(Bucket=st.bucket)
        for entry in page.get("Contents", [])
    }
    items = {  # a tombstone (an undone write) promises no audio
        item["s3_url"]["S"].split(f"s3://{st.bucket}/", 1)[1]
        for page in st.dynamodb.get_paginator("scan").paginate(TableName=st.table)
        for item in page["Items"]
        if "revoked" not in item and is_audio_item(item)
    }
    return len(keys), len(items), len(keys ^ items)


def load(base: str, requests: int, concurrency: int, text: str = TEXTS["short"]) -> Counter[int]:
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    client = httpx.Client(timeout=120)

    def one(_: int) -> None:
        try:
            status = client.post(f"{base}/tts/sync", json={"text": text}).status_code
        except httpx.TransportError:
            status = 0
        with lock:
            statuses[status] += 1

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(requests)))
    return statuses


# --- parts -----------------------------------------------------------------------------


def fuzz(moto: str, examples: int) -> str:
    """Schemathesis from the service's own OpenAPI document."""
    with stack(moto, TEMPAUDIO_MAX_TEXT_CHARS="300") as st:
        result = subprocess.run(
            [str(BIN / "schemathesis"), "run", f"{st.base}/openapi.json",
             "--checks", ("not_a_server_error,status_code_conformance,content_type_conformance,"
             "response_schema_conformance"), "--max-examples", str(examples),
             "--request-timeout", "60", "--generation-deterministic", "--no-color"],
            capture_output=True, text=True, timeout=3600, check=False,
        )  # fmt: skip
        objects, items, mismatched = orphans(st)
    output = result.stdout + result.stderr
    summary = [
        line.strip()
        for line in output.splitlines()
        if re.search(r"\d+ (passed|failed|cases|generated)", line)
    ]
    cases = re.findall(r"(\d+) generated", output) or re.findall(r"Test cases:\s*(.*)", output)
    print(output[-3000:], flush=True)
    return "\n".join([
        "## API fuzzing",
        "",
        (f"`schemathesis run /openapi.json` (schemathesis 4, checks: no 5xx, documented status "
        f"codes, documented content types, response bodies match the schemas, so every 4xx is "
        f"the JSON error object), up to {examples} examples per operation, text limit 300 "
        f"characters to keep real Piper synthesis short. Exit code {result.returncode} "
        f"({'no failures' if result.returncode == 0 else 'FAILURES, see the log'})."),
        "",
        "```",
        *(summary[-6:] or [output.strip().splitlines()[-1]]),
        "```",
        "",
        (f"Cases generated: {', '.join(cases) if cases else 'see summary'}. Afterwards: {objects} "
        f"objects, {items} items, {mismatched} without their pair."),
    ])  # fmt: skip


FAULTS = [
    ("S3 down", "s3", "down", {}),
    ("S3 slow (1.5s per call)", "s3", "slow", {"delay": 1.5}),
    ("S3 slow past the timeout (5s)", "s3", "slow", {"delay": 5.0}),
    ("S3 failing 50%", "s3", "flaky", {"rate": 0.5}),
    ("DynamoDB down", "dynamodb", "down", {}),
    ("DynamoDB slow (1.5s per call)", "dynamodb", "slow", {"delay": 1.5}),
    ("DynamoDB slow past the timeout (5s)", "dynamodb", "slow", {"delay": 5.0}),
    ("DynamoDB failing 50%", "dynamodb", "flaky", {"rate": 0.5}),
]


def faults(moto: str, requests: int) -> str:
    rows = []
    for name, target, mode, options in FAULTS:
        with stack(moto) as st:
            proxy = st.s3_proxy if target == "s3" else st.dynamodb_proxy
            proxy.set(mode, **options)
            statuses = load(st.base, requests, 4)
            ready_during = httpx.get(f"{st.base}/readyz", timeout=60).status_code
            proxy.set("ok")
            time.sleep(6)  # slow calls still in flight land, compensations finish
            ready_after = httpx.get(f"{st.base}/readyz", timeout=60).status_code
            recovered = load(st.base, 4, 2)
            objects, items, mismatched = orphans(st)
            restarts = 0 if st.process.poll() is None else 1
        row = (
            name,
            dict(sorted(statuses.items())),
            ready_during,
            ready_after,
            dict(recovered),
            objects,
            items,
            mismatched,
            restarts,
        )
        print(row, flush=True)
        rows.append(row)
    lines = [
        "## Storage faults under load",
        "",
        (
            f"{requests} short-text requests at concurrency 4 while the fault is on (S3/DynamoDB "
            "timeouts 2s, botocore standard retries), then the fault is lifted and 4 more requests "
            "are sent to the same process. Objects and items are counted afterwards: each object "
            "must have its item and each item its object."
        ),
        "",
        "| fault | status codes during | /readyz during | /readyz after | after recovery | objects | items | unpaired | restarts |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, statuses, during, after, recovered, objects, items, mismatched, restarts in rows:
        lines.append(
            f"| {name} | {statuses} | {during} | {after} | {recovered} | {objects} | {items} | {mismatched} | {restarts} |"
        )
    return "\n".join(lines)


def hung(moto: str) -> str:
    """Time to an answer while S3 or DynamoDB holds every request (TEMPAUDIO_IO_TIMEOUT=2)."""
    rows = []
    client = httpx.Client(timeout=120)
    for name in ("S3", "DynamoDB"):
        with stack(moto) as st:
            proxy = st.s3_proxy if name == "S3" else st.dynamodb_proxy
            time.sleep(2.5)  # past the readiness cache
            proxy.set("hung")

            def timed_post(_: int) -> tuple[int, float]:
                started = time.perf_counter()
                status = client.post(f"{st.base}/tts/sync", json={"text": TEXTS["short"]})
                return status.status_code, time.perf_counter() - started

            with ThreadPoolExecutor(4) as pool:
                posts = list(pool.map(timed_post, range(4)))
            started = time.perf_counter()
            ready = client.get(f"{st.base}/readyz")
            ready_seconds = time.perf_counter() - started
            started = time.perf_counter()
            client.get(f"{st.base}/readyz")
            cached_seconds = time.perf_counter() - started
            proxy.set("ok")
            time.sleep(4)  # held writes land, and are undone
            objects, items, mismatched = orphans(st)
        statuses = Counter(status for status, _ in posts)
        row = (name, dict(statuses), max(s for _, s in posts), ready.status_code, ready_seconds,
               ready.json().get("problems"), cached_seconds, objects, items, mismatched)  # fmt: skip
        print(row, flush=True)
        rows.append(row)
    return "\n".join([
        "## Hung storage",
        "",
        ("The S3 or DynamoDB endpoint holds every request without answering, as a SIGSTOPped "
         "process does (fault proxy mode `hung`), with `TEMPAUDIO_IO_TIMEOUT=2`: 4 short-text "
         "requests at once, then `/readyz` twice; then the endpoint is released, the held "
         "writes land, and objects and items are counted."),
        "",
        ("| endpoint held | answers | slowest answer (s) | /readyz | /readyz took (s) | problems "
        "| again, cached (s) | objects | items | unpaired |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *[f"| {n} | {st} | {slow:.2f} | {code} | {rs:.2f} | {pr} | {cs:.3f} | {o} | {i} | {m} |"
          for n, st, slow, code, rs, pr, cs, o, i, m in rows],
        "",
        ("Before the per-call budget (main at db106b7, `TEMPAUDIO_IO_TIMEOUT=5`, endpoint "
         "SIGSTOPped): 503 after 13-45 s, `/readyz` after 21-40 s (S3, then DynamoDB, each "
         "with botocore's retries), and error bodies named the endpoint URL, bucket and key."),
    ])  # fmt: skip


def rss_windows(
    samples: list[tuple[float, int]], *, warm_up: float, window: float
) -> tuple[float, float, int]:
    """Median RSS of the first window after warm-up and of the last window, and the peak."""
    settled = [(t, rss) for t, rss in samples if t >= warm_up] or samples
    start, end = settled[0][0], settled[-1][0]
    first = [rss for t, rss in settled if t < start + window] or [settled[0][1]]
    last = [rss for t, rss in settled if t > end - window] or [settled[-1][1]]
    return statistics.median(first), statistics.median(last), max(r for _, r in settled)


def soak(moto: str, seconds: int) -> str:
    with stack(moto) as st:
        process = psutil.Process(st.process.pid)
        load(st.base, 6, 2)  # warm up
        statuses: Counter[int] = Counter()
        samples: list[tuple[float, int]] = []
        started = time.monotonic()
        texts = [TEXTS["short"], TEXTS["medium"]]
        index = 0
        while time.monotonic() - started < seconds:
            statuses.update(load(st.base, 4, 2, texts[index % 2]))
            index += 1
            samples.append((time.monotonic() - started, process.memory_info().rss))
        objects, items, mismatched = orphans(st)
    total = sum(statuses.values())
    errors = total - statuses.get(200, 0)
    warm_up, window = min(60, seconds / 5), seconds / 10
    first, last, peak = rss_windows(samples, warm_up=warm_up, window=window)
    growth = (last - first) / first * 100
    return "\n".join([
        "## Soak",
        "",
        (f"{seconds} s at the sustainable rate (concurrency 2, alternating short and medium texts, "
        "2 synthesis workers), service against moto's server through pass-through proxies. "
        f"RSS is sampled after every batch of 4 requests; growth compares the median of the "
        f"first {window:.0f} s after a {warm_up:.0f} s warm-up with the "
        f"median of the last {window:.0f} s."),
        "",
        "| requests | errors | error rate | RSS after warm-up | RSS at end | growth | peak RSS | objects / items / unpaired |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        (f"| {total} | {errors} | {errors / max(1, total):.2%} | {first / 2**20:.0f} MB | "
        f"{last / 2**20:.0f} MB | {growth:+.1f}% | {peak / 2**20:.0f} MB "
        f"| {objects} / {items} / {mismatched} |"),
        "",
        "Target: error rate 0, RSS growth < 5%.",
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["fuzz", "faults", "hung", "soak"], action="append")
    parser.add_argument("--fuzz-examples", type=int, default=100)
    parser.add_argument("--fault-requests", type=int, default=16)
    parser.add_argument("--soak-seconds", type=int, default=600)
    args = parser.parse_args(argv)
    parts = args.only or ["fuzz", "faults", "hung", "soak"]
    with LocalAws() as local:
        sections = {}
        if "fuzz" in parts:
            sections["fuzz"] = fuzz(local.endpoint_url, args.fuzz_examples)
        if "faults" in parts:
            sections["faults"] = faults(local.endpoint_url, args.fault_requests)
        if "hung" in parts:
            sections["hung"] = hung(local.endpoint_url)
        if "soak" in parts:
            sections["soak"] = soak(local.endpoint_url, args.soak_seconds)
    for name, body in sections.items():
        write_section(
            "RELIABILITY.md",
            name,
            f"{body}\n\nMeasured by `python -m bench.reliability` on {machine_line()}.",
            "Reliability",
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
