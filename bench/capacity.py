"""How many replicas and cores a platform team needs: the service's cost per request and per
audio second, its memory per worker, its latency below saturation and its storage per
format, measured here and stated per core. Writes the "capacity" section of BENCHMARKS.md.

    python -m bench.capacity
"""

from __future__ import annotations

import math
import random
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import psutil

from bench.common import TEXTS, free_port, machine_line, percentile, write_section
from bench.memory import Profile, under_load
from bench.synthesis import local_moto, tempaudio_server

TEXT = TEXTS["medium"]
SATURATION_REQUESTS = 16
# Headroom an autoscaler on CPU keeps: it adds pods once the average passes this share.
TARGET_UTILIZATION = 0.7
PACED_REQUESTS = 40
RATES = (1, 10, 100)
MIN_REPLICAS = 2  # the chart's PodDisruptionBudget keeps one while another drains
FORMATS = ("wav", "mp3", "opus", "aac", "flac")


@dataclass(frozen=True)
class Saturation:
    requests_per_second: float
    audio_seconds: float  # per request
    cpu_seconds: float  # per request, the service process
    cores_busy: float

    @property
    def audio_per_cpu_second(self) -> float:
        return self.audio_seconds / self.cpu_seconds


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def saturate(call: Callable[[str], float | None], pid: int) -> Saturation:
    """Medium text at concurrency 4 (2 waiting per worker): the most the service does."""
    cpu = cpu_seconds(pid)
    started = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        durations = list(pool.map(lambda _: call(TEXT), range(SATURATION_REQUESTS)))
    wall = time.perf_counter() - started
    used = cpu_seconds(pid) - cpu
    return Saturation(
        requests_per_second=SATURATION_REQUESTS / wall,
        audio_seconds=statistics.mean(d or 0.0 for d in durations),
        cpu_seconds=used / SATURATION_REQUESTS,
        cores_busy=used / wall,
    )


def paced(call: Callable[[str], float | None], rate: float, seed: int = 7) -> list[float]:
    """Open-loop arrivals (Poisson, ``rate`` per second) of the medium text: each request's
    latency, whether or not earlier ones have been answered."""
    arrivals = random.Random(seed)
    latencies: list[float] = []

    def one() -> None:
        started = time.perf_counter()
        call(TEXT)
        latencies.append(time.perf_counter() - started)

    with ThreadPoolExecutor(32) as pool:
        for _ in range(PACED_REQUESTS):
            pool.submit(one)
            time.sleep(arrivals.expovariate(rate))
    return latencies


def lone(call: Callable[[str], float | None], rounds: int = 5) -> float:
    latencies = []
    for _ in range(rounds):
        started = time.perf_counter()
        call(TEXT)
        latencies.append(time.perf_counter() - started)
    return statistics.median(latencies)


def bytes_per_audio_hour(port: int) -> dict[str, float]:
    """Stored object bytes per hour of audio, per format (the medium text)."""
    client = httpx.Client(timeout=600)
    sizes = {}
    for name in FORMATS:
        answer = client.post(
            f"http://127.0.0.1:{port}/tts/sync",
            json={"text": TEXT, "response_format": name},
        ).json()
        stored = client.get(answer["s3_url"]).content
        sizes[name] = len(stored) / answer["duration"] * 3600
    return sizes


def main() -> None:
    port = free_port()
    with local_moto():
        with tempaudio_server(workers=2, port=port) as (call, process):
            for text in TEXTS.values():  # warm up
                call(text)
            alone = lone(call)
            saturation = saturate(call, process.pid)
            print(saturation, flush=True)
            light = paced(call, TARGET_UTILIZATION * saturation.requests_per_second)
            storage = bytes_per_audio_hour(port)
        memory = {
            workers: under_load(Profile(f"{workers} workers", workers=workers, idle=workers),
                                high_water=True).peak_mb
            for workers in (1, 2, 4)
        }  # fmt: skip
    print(memory, flush=True)
    text = report(saturation, alone, light, storage, memory)
    write_section("BENCHMARKS.md", "capacity", text, "Benchmarks")
    print(text)


def report(
    sat: Saturation,
    alone: float,
    light: list[float],
    storage: dict[str, float],
    memory: dict[int, float],
) -> str:
    pod_memory = memory[2]
    cores_per_pod = 2
    rows = []
    for rate in RATES:
        cores = rate * sat.cpu_seconds / TARGET_UTILIZATION
        replicas = max(MIN_REPLICAS, math.ceil(cores / cores_per_pod))
        rows.append(
            f"| {rate} | {rate * sat.cpu_seconds:.1f} | {cores:.1f} | {replicas} "
            f"| {replicas * cores_per_pod} | {replicas * pod_memory / 1024:.1f} |"
        )
    return "\n".join([
        "## Capacity",
        "",
        (f"Measured by `python -m bench.capacity` on {machine_line()}: one service process "
         "with the chart's defaults (2 synthesis workers, the repeat cache off, so every "
         "request is a synthesis), S3 and DynamoDB on moto in another process. The load is "
         f"the medium text ({sat.audio_seconds:.1f} s of audio). CPU is the service "
         "process's own user + system time."),
        "",
        "| per core | value |",
        "| --- | --- |",
        f"| audio seconds per CPU second | {sat.audio_per_cpu_second:.1f} |",
        f"| CPU seconds per request (medium text) | {sat.cpu_seconds:.2f} |",
        (f"| saturation, requests/s per core busy | "
         f"{sat.requests_per_second / sat.cores_busy:.2f} |"),
        "",
        "| per pod (2 workers) | value |",
        "| --- | --- |",
        (f"| saturation | {sat.requests_per_second:.2f} req/s with {sat.cores_busy:.2f} "
         "cores busy |"),
        f"| p50 of a request running alone | {alone:.2f} s |",
        (f"| at {TARGET_UTILIZATION:.0%} of saturation ({PACED_REQUESTS} Poisson arrivals at "
         f"{TARGET_UTILIZATION * sat.requests_per_second:.2f}/s): p50 / p95 "
         f"| {statistics.median(light):.2f} / {percentile(light, 95):.2f} s |"),
        (f"| peak RSS with 1 / 2 / 4 workers (kernel high-water mark, bench.memory's mixed "
         f"load) | {memory[1]:.0f} / {memory[2]:.0f} / {memory[4]:.0f} MB |"),
        (f"| peak MB per worker at 1 / 2 / 4 workers | {memory[1]:.0f} / {memory[2] / 2:.0f} / "
         f"{memory[4] / 4:.0f} |"),
        "",
        ("Memory does not grow in proportion to workers: the decoder's activations, most of "
         "the peak, are bounded across all workers by the decode budget (1.5 pieces of "
         "`TEMPAUDIO_MAX_CHUNK_PHONEMES` at once, `synth.py`), and one worker keeps one "
         "session where several keep a second one for a synthesis running alone. So size "
         "memory per pod, not per worker."),
        "",
        "S3 bytes per hour of audio, per format (stored objects of the medium text):",
        "",
        "| format | MB per audio hour |",
        "| --- | --- |",
        *[f"| {name} | {size / 1e6:.0f} |" for name, size in storage.items()],
        "",
        (f"Sizing for the medium text, pods of 2 workers requesting 2 cores and "
         f"{pod_memory:.0f} MB, CPU kept at {TARGET_UTILIZATION:.0%} (an autoscaler's "
         f"target), at least {MIN_REPLICAS} replicas:"),
        "",
        "| requests/s | cores busy | cores requested | replicas | CPU requests | memory at the measured peak (GB) |",
        "| --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        (f"Other texts scale with their audio: {sat.audio_per_cpu_second:.1f} audio seconds "
         "per CPU second. Repeat-cache hits cost no synthesis: at a hit ratio h the cores "
         "scale by (1 - h)."),
        "",
        ("The chart's defaults follow this table: `synthWorkers: 2` with `resources.requests."
         f"cpu: 2` (a busy pod keeps {sat.cores_busy:.1f} cores busy, so utilization is "
         "measured against what it can use) and a memory request above the 2-worker peak; the "
         "limit (1Gi) leaves room for the hostile-input peak (\"Memory under hostile "
         "input\"). The HPA (`service.autoscaling`) scales on CPU at 70% of the request: "
         "synthesis is CPU-bound, so CPU follows load linearly up to saturation, needs no "
         "Prometheus adapter, and 70% keeps p95 within the row above while new pods start "
         "and load the voice. Scaling on `tempaudio_synthesis_queue_depth` through the "
         "Prometheus adapter reacts sooner to bursts; it is an option for clusters that run "
         "the adapter, not a default."),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
