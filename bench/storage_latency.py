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

from bench.common import (
    TEXTS,
    alternate,
    free_port,
    machine_line,
    previous_version,
    write_section,
)
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
        call, _ = stack.enter_context(systems.tempaudio_server(port=port, extra_env=env))
        variants.append(Variant(f"{label}, S3 on {name}", call, port))
    return variants


def scenario(quick: bool, systems: Any, against: str | None = None) -> None:
    rows = []
    # text -> variant name -> (p50, in the service besides synthesis), in ms
    split_ms: dict[str, dict[str, tuple[float, float]]] = {}
    with services(systems, against) as variants:
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
    write_section("BENCHMARKS.md", "storage-latency", report(rows, split_ms, against), "Benchmarks")


def report(
    rows: list[str], split_ms: dict[str, dict[str, tuple[float, float]]], against: str | None
) -> str:
    short = split_ms["short"]
    slow, proxied = short["tempaudio, S3 on proxy + 20 ms"], short["tempaudio, S3 on proxy"]
    plain, raw = short["tempaudio, S3 on moto"], short["raw Piper"][0]
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
            "(HTTP on loopback, the client)."
        ),
        "",
        (
            "| text | system | p50 (ms) | vs raw | synthesis (ms) | in the service besides "
            "synthesis (ms) | outside the service (ms) |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
        (
            f"Short text: the service's own time besides synthesis is {plain[1]:.0f} ms on moto "
            f"and {slow[1]:.0f} ms with 20 ms on S3 ({slow[1] - proxied[1]:+.0f} ms against the "
            "proxy without delay). The PutObject and the PutItem are sent at once: a request "
            "waits for the slower of the two, not for both; if either fails, both are undone "
            "(the item revoked by a tombstone, the object deleted), so no item outlives its "
            "object. Short text costs "
            f"{plain[0] / raw:.2f}x raw on moto and {slow[0] / raw:.2f}x with 20 ms on S3."
        ),
    ]
    if against:
        old_plain = short[f"tempaudio {against}, S3 on moto"][0]
        old_slow = short[f"tempaudio {against}, S3 on proxy + 20 ms"][0]
        lines.append(
            f"At {against}, in the same run: "
            f"{old_plain / raw:.2f}x raw on moto and {old_slow / raw:.2f}x with 20 ms on S3; "
            f"now {plain[0] / old_plain:.2f}x and {slow[0] / old_slow:.2f}x of that."
        )
    return "\n".join(lines)
