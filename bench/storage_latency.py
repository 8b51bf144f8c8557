"""What storage adds to a request at concurrency 1: raw Piper against tempaudio with S3 on moto
directly, through the fault proxy, and through the fault proxy with 20 ms added to every S3
call (real S3's typical PutObject latency; DynamoDB stays direct). Requests alternate system by
system, so a drift in the machine's speed hits all alike. The service's own histograms split
its time into synthesis and the rest (storage, signing, the answer). Run by
``python -m bench.synthesis`` (alone: ``--only storage-latency``); writes the
"storage-latency" section of BENCHMARKS.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import httpx
import psutil

from bench.common import (
    SETTLE_SECONDS,
    TEXTS,
    alternate,
    free_port,
    machine_line,
    previous_version,
    write_section,
)
from bench.faultproxy import FaultProxy
from tempaudio_service.speech.voice_files import SPIN_MICROSECONDS

S3_DELAY = 0.020
# Short text's p50 varies by a few percent from run to run with 15 rounds; 40 hold it.
ROUNDS = {"short": 40, "medium": 6}


@dataclass
class Variant:
    name: str
    call: Callable[[str], object]
    port: int | None = None  # the service's, for its histograms
    pid: int | None = None  # the service's, for its CPU
    latencies: list[float] | None = None

    def cpu_seconds(self) -> float:
        """The service's CPU time so far (user + system), 0 for raw Piper."""
        if self.pid is None:
            return 0.0
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)


@dataclass(frozen=True)
class Figures:
    """One system's figures for one text, in ms per request."""

    p50: float
    besides: float = 0.0  # in the service besides synthesis
    cpu: float = 0.0  # the service process's CPU time


def _sums(port: int) -> tuple[float, float]:
    """The service's total request and synthesis seconds so far (POST /tts/sync)."""
    request = synthesis = 0.0
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        if line.startswith('tempaudio_request_seconds_sum{route="/tts/sync"}'):
            request = float(line.split()[-1])
        elif line.startswith("tempaudio_synthesis_seconds_sum"):
            synthesis += float(line.split()[-1])
    return request, synthesis


# The tempaudio variants: (name, S3 delay: None for moto directly, else through the proxy).
VARIANTS = (("moto", None), ("proxy", 0.0), ("proxy + 20 ms", S3_DELAY))


@contextmanager
def services(systems: Any, against: str | None = None) -> Iterator[list[Variant]]:
    """raw Piper and the three tempaudio variants, each service warm; with ``against`` (a
    git revision), that version too, on moto and with 20 ms on S3."""
    moto = systems.MOTO[0]
    with ExitStack() as stack:
        variants = [Variant("raw Piper", systems.raw_piper())]
        versions: list[tuple[str, dict[str, str], tuple[tuple[str, float | None], ...]]] = [
            ("tempaudio", {}, VARIANTS)
        ]
        if against is not None:
            previous = stack.enter_context(previous_version(against))
            versions.append((f"tempaudio {against}", previous, (VARIANTS[0], VARIANTS[2])))
        for label, version_env, kinds in versions:
            variants += _variants(stack, systems, moto, label, version_env, kinds)
        for variant in variants:
            for text in TEXTS.values():
                variant.call(text)
        yield variants


def _variants(
    stack: ExitStack,
    systems: Any,
    moto: str,
    label: str,
    version_env: dict[str, str],
    kinds: tuple[tuple[str, float | None], ...],
) -> list[Variant]:
    variants = []
    for name, delay in kinds:
        env = {"TEMPAUDIO_DYNAMODB_ENDPOINT_URL": moto, **version_env}
        if delay is not None:
            proxy = FaultProxy(moto, "s3")
            stack.callback(proxy.close)
            if delay:
                proxy.set("slow", delay=delay)
            env["TEMPAUDIO_S3_ENDPOINT_URL"] = proxy.url
        port = free_port()
        call, process = stack.enter_context(systems.tempaudio_server(port=port, extra_env=env))
        variants.append(Variant(f"{label}, S3 on {name}", call, port, process.pid))
    return variants


def scenario(quick: bool, systems: Any, against: str | None = None) -> None:
    rows = []
    figures: dict[str, dict[str, Figures]] = {}  # text -> variant name -> its figures
    with services(systems, against) as variants:
        for text, rounds in ROUNDS.items():
            before = {v.name: _sums(v.port) for v in variants if v.port}
            cpu = {v.name: v.cpu_seconds() for v in variants}
            calls = {v.name: partial(v.call, TEXTS[text]) for v in variants}
            seconds = alternate(calls, max(3, rounds // 3) if quick else rounds, SETTLE_SECONDS)
            for variant in variants:
                variant.latencies = seconds[variant.name]
            raw = statistics.median(variants[0].latencies or [0.0])
            for variant in variants:
                latencies = variant.latencies or []
                p50 = statistics.median(latencies)
                split = ""
                if variant.port:
                    request, synthesis = _sums(variant.port)
                    request -= before[variant.name][0]
                    synthesis -= before[variant.name][1]
                    n = len(latencies)
                    used = variant.cpu_seconds() - cpu[variant.name]
                    split = (
                        f"{synthesis / n * 1000:.0f} | {(request - synthesis) / n * 1000:.0f} | "
                        f"{(sum(latencies) - request) / n * 1000:.0f} | {used / n * 1000:.0f}"
                    )
                    figures.setdefault(text, {})[variant.name] = Figures(
                        p50 * 1000, (request - synthesis) / n * 1000, used / n * 1000
                    )
                else:
                    split = f"{p50 * 1000:.0f} | - | - | -"
                    figures.setdefault(text, {})[variant.name] = Figures(p50 * 1000)
                rows.append(
                    f"| {text} | {variant.name} | {p50 * 1000:.0f} | {p50 / raw:.2f}x | {split} |"
                )
                print(rows[-1], flush=True)
    write_section("BENCHMARKS.md", "storage-latency", report(rows, figures, against), "Benchmarks")


def report(rows: list[str], figures: dict[str, dict[str, Figures]], against: str | None) -> str:
    short = figures["short"]
    slow, proxied = short["tempaudio, S3 on proxy + 20 ms"], short["tempaudio, S3 on proxy"]
    plain, raw = short["tempaudio, S3 on moto"], short["raw Piper"].p50
    lines = [
        "## Storage latency at concurrency 1",
        "",
        (
            "Measured by `python -m bench.synthesis --only storage-latency"
            + (f" --against {against}" if against else "")
            + f"` on {machine_line()}. "
            "Raw Piper in-process and tempaudio services (2 workers, repeat cache off), "
            "requests alternating system by system; p50 of "
            + " and ".join(f"{n} {t}" for t, n in ROUNDS.items())
            + " rounds. S3 on moto directly, through bench/faultproxy.py (a Python proxy: its own "
            f"cost), and through it with {S3_DELAY * 1000:.0f} ms added to every S3 call; DynamoDB "
            "is always direct."
            + (
                f" `tempaudio {against}` is the service as it was at that revision (a git worktree "
                "first on PYTHONPATH), in the same run."
                if against
                else ""
            )
            + " The service's split is per request, from its own histograms: "
            "synthesis (in the pool), the rest of the request inside the service (PutObject, "
            "PutItem, signing, the JSON answer), and what remains of the client's latency "
            "(HTTP on loopback, the client); and the service process's CPU time per request. "
            "Each request starts 0.1 s after the one before it ended (bench/common.py "
            "`alternate`): raw Piper's onnxruntime threads spin on for about 40 ms after each "
            "synthesis, which the system measured next used to lose."
        ),
        "",
        (
            "| text | system | p50 (ms) | vs raw | synthesis (ms) | in the service besides "
            "synthesis (ms) | outside the service (ms) | service CPU (ms) |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        (
            f"Short text costs {plain.p50 / raw:.2f}x raw on moto and {slow.p50 / raw:.2f}x "
            f"with 20 ms on S3. The service's own time besides synthesis is {plain.besides:.0f} "
            f"ms on moto and {slow.besides:.0f} ms with 20 ms on S3 "
            f"({slow.besides - proxied.besides:+.0f} ms against the proxy without delay). "
            "The PutObject and the PutItem are sent at once: a request waits for the slower of "
            "the two, not for both; if either fails, both are undone (the item revoked by a "
            "tombstone, the object deleted), so no item outlives its object. On moto, sending "
            "them at once saves little: one Python process serves both (by hand, boto3 from "
            "another process, calls 20 ms apart: PutObject of 90 kB 8.2 ms, conditional "
            "PutItem 6.9 ms, both at once 12.2 ms, one after the other 14.4 ms)."
        ),
        (
            "A synthesis that runs alone takes the wide session (2 threads), whose threads "
            f"spin for {SPIN_MICROSECONDS} us waiting for the next operator before they sleep, "
            "and stop spinning when a run returns (onnxruntime's `spin_duration_us` and "
            "`force_spinning_stop`; speech/voice_files.py). Threads that slept at once were "
            "woken for each of the model's operators; with a 20 us spin, still for many of "
            "the front's small ones. The spinning costs CPU that a quiet replica has spare: "
            "the CPU column."
        ),
    ]
    if against:
        old_plain = short[f"tempaudio {against}, S3 on moto"]
        old_slow = short[f"tempaudio {against}, S3 on proxy + 20 ms"]
        lines.append(
            f"At {against}, in the same run: "
            f"{old_plain.p50 / raw:.2f}x raw on moto and {old_slow.p50 / raw:.2f}x with 20 ms "
            f"on S3; now {plain.p50 / old_plain.p50:.2f}x and {slow.p50 / old_slow.p50:.2f}x of "
            f"that, for {plain.cpu / old_plain.cpu:.2f}x its CPU per request on moto."
        )
    return "\n".join(lines)
