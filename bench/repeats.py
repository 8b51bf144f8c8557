"""Repeated prompts: 80% of the requests are one of 20 prompts (notification and IVR
callers), at concurrency 4: tempaudio with its repeat cache against Piper's http_server and
raw Piper, which synthesize every request. Run by ``python -m bench.synthesis`` (alone:
``--only repeats``); writes the "repeats" section of BENCHMARKS.md.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx

from bench.common import free_port, fresh_storage, machine_line, percentile, write_section

PROMPTS = 20
REPEAT_SHARE = 0.8
CONCURRENCY = 4


def prompts(n: int, seed: int = 7) -> list[str]:
    """The request texts, in order: 80% drawn from 20 prompts, 20% each said once."""
    rng = random.Random(seed)
    common = [
        f"Your verification code is {' '.join(str(rng.randrange(10)) for _ in range(4))}."
        for _ in range(PROMPTS)
    ]
    texts = []
    for index in range(n):
        if rng.random() < REPEAT_SHARE:
            texts.append(common[rng.randrange(PROMPTS)])
        else:
            texts.append(f"Order number {100000 + index} has shipped and arrives on Friday.")
    return texts


def run(call: Callable[[str], object], texts: list[str]) -> tuple[float, list[float]]:
    """Throughput (requests/s) and latencies of ``texts`` at CONCURRENCY."""
    latencies: list[float] = []
    lock = threading.Lock()

    def one(text: str) -> None:
        started = time.perf_counter()
        call(text)
        with lock:
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(one, texts))
    return len(texts) / (time.perf_counter() - started), latencies


@contextmanager
def replicas(
    tempaudio_server: Any, moto: str, count: int
) -> Iterator[tuple[Callable[..., None], list[int]]]:
    """``count`` services on fresh storage of their own, taken in turn by one client; the
    hits they answered."""
    name = fresh_storage(moto, "repeats")
    env = {"TEMPAUDIO_REPEAT_CACHE_ENTRIES": "10000", "TEMPAUDIO_BUCKET": name,
           "TEMPAUDIO_TABLE": name}  # fmt: skip
    hits = [0]
    lock = threading.Lock()
    with ExitStack() as stack:
        ports = [free_port() for _ in range(count)]
        for port in ports:
            stack.enter_context(tempaudio_server(port=port, extra_env=env))
        turns = itertools.cycle(ports)
        client = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=16))

        def call(text: str, cache: bool = True) -> None:
            with lock:
                port = next(turns)
            answer = client.post(
                f"http://127.0.0.1:{port}/tts/sync", json={"text": text, "cache": cache}
            )
            answer.raise_for_status()
            with lock:
                hits[0] += answer.json()["cached"]

        for _ in ports:
            call("Warm up.", cache=False)
        yield call, hits


def scenario(quick: bool, systems: Any) -> None:
    """``systems``: bench.synthesis as it runs (its moto endpoint is set by then)."""
    peer_server, raw_piper, tempaudio_server = (
        systems.peer_server, systems.raw_piper, systems.tempaudio_server
    )  # fmt: skip
    texts = prompts(60 if quick else 600)
    rows: dict[str, tuple[float, list[float]]] = {}
    ratios: dict[int, float] = {}
    for count in (1, 2):  # one replica, then two behind a round-robin client
        with replicas(tempaudio_server, systems.MOTO[0], count) as (call, hits):
            name = "tempaudio (repeat cache)" if count == 1 else "tempaudio, 2 replicas"
            rows[name] = run(call, texts)
            ratios[count] = hits[0] / len(texts)
            if count == 1:
                rows["tempaudio, cache: false"] = run(lambda text: call(text, cache=False), texts)
    hit_ratio = ratios[1]
    with peer_server() as (peer, _):
        peer("Warm up.")
        rows["piper.http_server"] = run(peer, texts)
    raw = raw_piper()
    raw("Warm up.")
    rows["raw Piper (in-process)"] = run(raw, texts)
    peer_rate = rows["piper.http_server"][0]
    lines = [
        f"| {name} | {rate:.1f} | {rate / peer_rate:.2f}x | {percentile(lat, 50) * 1000:.0f} | "
        f"{percentile(lat, 95) * 1000:.0f} |"
        for name, (rate, lat) in rows.items()
    ]
    body = f"""## Repeated prompts

`python -m bench.synthesis --only repeats` ({machine_line()}). {len(texts)} requests at
concurrency {CONCURRENCY}: {REPEAT_SHARE:.0%} are one of {PROMPTS} short prompts ("Your
verification code is 4 8 1 5."), the rest are said once. tempaudio (2 workers, S3 and
DynamoDB on moto in the bench process) answered {hit_ratio:.0%} of them from the repeat
cache: a server-side copy under a new key and item instead of a synthesis. The target is
4x the peer's throughput. What is left to synthesize bounds the ratio: the texts said once
are about three times as long as the prompts, so they are most of the work tempaudio still
does, and identical requests in flight are synthesized once (the others wait and copy).

With two replicas (the same requests taken in turn by two services on one storage: each
sees every other request, and a prompt either one made is a hit on both through the shared
index) {ratios[2]:.0%} were answered from the cache: {ratios[2] / ratios[1]:.2f}x the
single replica's hit rate (target: at least 0.95x). Two services of 2 workers each share
the same 2 cores here, so their throughput is not a capacity figure.

| system | requests/s | vs peer | p50 (ms) | p95 (ms) |
|---|---|---|---|---|
{chr(10).join(lines)}
"""
    write_section("BENCHMARKS.md", "repeats", body, "Benchmarks")
