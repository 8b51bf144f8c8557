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

from bench.common import TEXTS, alternate, free_port, machine_line, write_section
from bench.faultproxy import FaultProxy

S3_DELAY = 0.020
ROUNDS = {"short": 15, "medium": 6}


@dataclass
class Variant:
    name: str
    call: Callable[[str], object]
    port: int | None = None  # the service's, for its histograms
    latencies: list[float] | None = None


def _sums(port: int) -> tuple[float, float]:
    """The service's total request and synthesis seconds so far (POST /tts/sync)."""
    request = synthesis = 0.0
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        if line.startswith('tempaudio_request_seconds_sum{route="/tts/sync"}'):
            request = float(line.split()[-1])
        elif line.startswith("tempaudio_synthesis_seconds_sum"):
            synthesis += float(line.split()[-1])
    return request, synthesis


@contextmanager
def services(systems: Any) -> Iterator[list[Variant]]:
    """raw Piper and the three tempaudio variants, each service warm."""
    moto = systems.MOTO[0]
    with ExitStack() as stack:
        variants = [Variant("raw Piper", systems.raw_piper())]
        for name, delay in (("moto", None), ("proxy", 0.0), ("proxy + 20 ms", S3_DELAY)):
            env = {"TEMPAUDIO_DYNAMODB_ENDPOINT_URL": moto}
            if delay is not None:
                proxy = FaultProxy(moto, "s3")
                stack.callback(proxy.close)
                if delay:
                    proxy.set("slow", delay=delay)
                env["TEMPAUDIO_S3_ENDPOINT_URL"] = proxy.url
            port = free_port()
            call, _ = stack.enter_context(systems.tempaudio_server(port=port, extra_env=env))
            variants.append(Variant(f"tempaudio, S3 on {name}", call, port))
        for variant in variants:
            for text in TEXTS.values():
                variant.call(text)
        yield variants


def scenario(quick: bool, systems: Any) -> None:
    rows = []
    # text -> variant name -> (p50, in the service besides synthesis), in ms
    split_ms: dict[str, dict[str, tuple[float, float]]] = {}
    with services(systems) as variants:
        for text, rounds in ROUNDS.items():
            before = {v.name: _sums(v.port) for v in variants if v.port}
            calls = {v.name: partial(v.call, TEXTS[text]) for v in variants}
            seconds = alternate(calls, max(3, rounds // 3) if quick else rounds)
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
                    split = (
                        f"{synthesis / n * 1000:.0f} | {(request - synthesis) / n * 1000:.0f} | "
                        f"{(sum(latencies) - request) / n * 1000:.0f}"
                    )
                    split_ms.setdefault(text, {})[variant.name] = (
                        p50 * 1000,
                        (request - synthesis) / n * 1000,
                    )
                else:
                    split = f"{p50 * 1000:.0f} | - | -"
                    split_ms.setdefault(text, {})[variant.name] = (p50 * 1000, 0.0)
                rows.append(
                    f"| {text} | {variant.name} | {p50 * 1000:.0f} | {p50 / raw:.2f}x | {split} |"
                )
                print(rows[-1], flush=True)
    write_section("BENCHMARKS.md", "storage-latency", report(rows, split_ms), "Benchmarks")


def report(rows: list[str], split_ms: dict[str, dict[str, tuple[float, float]]]) -> str:
    short = split_ms["short"]
    slow, proxied = short["tempaudio, S3 on proxy + 20 ms"], short["tempaudio, S3 on proxy"]
    plain, raw = short["tempaudio, S3 on moto"], short["raw Piper"][0]
    return "\n".join([
        "## Storage latency at concurrency 1",
        "",
        (f"Measured by `python -m bench.synthesis --only storage-latency` on {machine_line()}. "
         "Raw Piper in-process and three tempaudio services (2 workers, repeat cache off), "
         "requests alternating system by system; p50 of "
         + " and ".join(f"{n} {t}" for t, n in ROUNDS.items())
         + " rounds. S3 on moto directly, through bench/faultproxy.py (a Python proxy: its own "
         f"cost), and through it with {S3_DELAY * 1000:.0f} ms added to every S3 call; DynamoDB "
         "is always direct. The service's split is per request, from its own histograms: "
         "synthesis (in the pool), the rest of the request inside the service (PutObject, "
         "PutItem, signing, the JSON answer), and what remains of the client's latency "
         "(HTTP on loopback, the client)."),
        "",
        ("| text | system | p50 (ms) | vs raw | synthesis (ms) | in the service besides "
         "synthesis (ms) | outside the service (ms) |"),
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        (f"Short text: the service's own time besides synthesis is {plain[1]:.0f} ms on moto "
         f"and {slow[1]:.0f} ms with 20 ms on S3 ({slow[1] - proxied[1]:+.0f} ms against the "
         "proxy without delay: the delay is paid once, by the PutObject). The PutObject and "
         "the PutItem run one after the other on purpose: the item is written only once its "
         "object exists, so no item (and no URL) ever points at missing audio, and a crash "
         "between the two leaves an object without an item, which the cleanup removes. "
         "Overlapping them would save the PutItem's few ms at the price of items without "
         "objects after a crash; answering before the object is stored would hand out URLs "
         "that do not work yet. Neither is done: short text costs "
         f"{plain[0] / raw:.2f}x raw on moto and {slow[0] / raw:.2f}x with 20 ms on S3 (the "
         "target was 1.15x); on longer text storage vanishes into synthesis."),
    ])  # fmt: skip
