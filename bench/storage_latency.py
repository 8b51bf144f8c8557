"""What storage adds to a request at concurrency 1: raw Piper against tempaudio with S3 on moto
directly, through the fault proxy, and through the fault proxy with 20 ms added to every S3
call (real S3's typical PutObject latency); DynamoDB on the same moto, or on a moto of its own
(two services, as in AWS). Requests alternate system by system, so a drift in the machine's
speed hits all alike, and every system (raw Piper's process too) is started afresh for each
of ``REPEATS`` repeats, so one process's luck weighs a third. The service's own histograms
split its time into synthesis and the rest (storage, signing, the answer). Run by ``python -m
bench.synthesis`` (alone: ``--only storage-latency``); writes the "storage-latency" section
of BENCHMARKS.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from itertools import chain
from typing import Any

import httpx
import psutil

from bench.common import (
    BIN,
    SETTLE_SECONDS,
    TEXTS,
    alternate,
    clean_env,
    free_port,
    machine_line,
    previous_version,
    write_section,
)
from bench.faultproxy import FaultProxy
from tempaudio_service.app import shorthand_store
from tempaudio_service.core.settings import ServiceSettings
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

    def cpu_seconds(self) -> float:
        """The service's CPU time so far (user + system), 0 for raw Piper."""
        if self.pid is None:
            return 0.0
        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)


@dataclass
class Tally:
    """One system's requests for one text, over every repeat."""

    latencies: list[list[float]] = field(default_factory=list)  # seconds, per repeat
    request: float = 0.0  # the service's own seconds, from its histograms
    synthesis: float = 0.0
    cpu: float = 0.0  # the service process's CPU seconds

    @property
    def p50(self) -> float:
        return statistics.median(chain.from_iterable(self.latencies))

    @property
    def count(self) -> int:
        return sum(len(latencies) for latencies in self.latencies)

    @property
    def mean(self) -> float:
        return sum(chain.from_iterable(self.latencies)) / self.count

    @property
    def besides_ms(self) -> float:
        """In the service besides synthesis, per request."""
        return (self.request - self.synthesis) / self.count * 1000

    @property
    def cpu_ms(self) -> float:
        """The service process's CPU time per request."""
        return self.cpu / self.count * 1000

    def split(self) -> str:
        """The table's columns after p50 and the ratio: synthesis, the rest of the request in
        the service, what is left outside it, and the service's CPU (ms per request)."""
        n = self.count
        return (
            f"{self.synthesis / n * 1000:.0f} | {self.besides_ms:.0f}"
            f" | {(self.mean - self.request / n) * 1000:.0f} | {self.cpu_ms:.0f}"
        )


def _sums(port: int) -> tuple[float, float]:
    """The service's total request and synthesis seconds so far (POST /tts/sync)."""
    request = synthesis = 0.0
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics").text.splitlines():
        if line.startswith('tempaudio_request_seconds_sum{route="/tts/sync"}'):
            request = float(line.split()[-1])
        elif line.startswith("tempaudio_synthesis_seconds_sum"):
            synthesis += float(line.split()[-1])
    return request, synthesis


# The tempaudio variants: (name, S3 delay: None for moto directly, else through the proxy,
# DynamoDB on a moto of its own). One moto serves S3 and DynamoDB in one Python process, so
# the two writes a request sends at once take turns there; in AWS they are two services.
VARIANTS = (
    ("moto", None, False),
    ("moto, DynamoDB apart", None, True),
    ("proxy", 0.0, False),
    ("proxy + 20 ms", S3_DELAY, False),
)
# Each repeat starts every system afresh, raw Piper's process too: one process's luck (where
# its threads land, how its memory is laid out) moved a ratio by 3-5% between runs.
REPEATS = 3


@contextmanager
def moto_apart(systems: Any) -> Iterator[str]:
    """moto's server as a process of its own, with the table: DynamoDB apart from S3."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    command = [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    with systems.server(command, clean_env(), f"{endpoint}/moto-api/"):
        shorthand_store(ServiceSettings(local_aws=True).with_endpoint(endpoint)).ensure_resources()
        yield endpoint


@contextmanager
def services(
    systems: Any, dynamodb: str, previous: tuple[str, dict[str, str]] | None
) -> Iterator[list[Variant]]:
    """raw Piper and the tempaudio variants, each warm; with ``previous`` (a git revision and
    the environment that runs it), that version too, on moto and with 20 ms on S3."""
    moto = systems.MOTO[0]
    with ExitStack() as stack:
        variants = [Variant("raw Piper", stack.enter_context(systems.raw_piper_process()))]
        versions: list[tuple[str, dict[str, str], tuple[tuple[str, float | None, bool], ...]]] = [
            ("tempaudio", {}, VARIANTS)
        ]
        if previous is not None:
            revision, previous_env = previous
            versions.append((f"tempaudio {revision}", previous_env, (*VARIANTS[:2], VARIANTS[3])))
        for label, version_env, kinds in versions:
            variants += _variants(stack, systems, (moto, dynamodb), label, version_env, kinds)
        for variant in variants:
            for text in TEXTS.values():
                variant.call(text)
        yield variants


def _variants(
    stack: ExitStack,
    systems: Any,
    motos: tuple[str, str],
    label: str,
    version_env: dict[str, str],
    kinds: tuple[tuple[str, float | None, bool], ...],
) -> list[Variant]:
    moto, dynamodb = motos
    variants = []
    for name, delay, apart in kinds:
        env = {"TEMPAUDIO_DYNAMODB_ENDPOINT_URL": dynamodb if apart else moto, **version_env}
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


def measure(variants: list[Variant], rounds: int, text: str, tallies: dict[str, Tally]) -> None:
    """One repeat of ``text``: the systems taking turns ``rounds`` times, into ``tallies``."""
    before = {v.name: _sums(v.port) for v in variants if v.port}
    cpu = {v.name: v.cpu_seconds() for v in variants}
    calls = {v.name: partial(v.call, TEXTS[text]) for v in variants}
    seconds = alternate(calls, rounds, SETTLE_SECONDS)
    for variant in variants:
        tally = tallies.setdefault(variant.name, Tally())
        tally.latencies.append(seconds[variant.name])
        tally.cpu += variant.cpu_seconds() - cpu[variant.name]
        if variant.port:
            request, synthesis = _sums(variant.port)
            tally.request += request - before[variant.name][0]
            tally.synthesis += synthesis - before[variant.name][1]


def scenario(quick: bool, systems: Any, against: str | None = None) -> None:
    tallies: dict[str, dict[str, Tally]] = {text: {} for text in ROUNDS}  # text -> system
    used = {text: max(3, rounds // 3) if quick else rounds for text, rounds in ROUNDS.items()}
    with ExitStack() as stack:
        previous = None
        if against is not None:
            previous = (against, stack.enter_context(previous_version(against)))
        dynamodb = stack.enter_context(moto_apart(systems))
        for repeat in range(1 if quick else REPEATS):
            with services(systems, dynamodb, previous) as variants:
                for text, rounds in used.items():
                    measure(variants, rounds, text, tallies[text])
            ratios = repeat_ratios(tallies["short"])
            print(f"repeat {repeat + 1}, short over raw Piper: {ratios}", flush=True)
    rows = []
    for text, systems_tallies in tallies.items():
        raw = systems_tallies["raw Piper"].p50
        for name, tally in systems_tallies.items():
            split = tally.split() if name != "raw Piper" else f"{tally.mean * 1000:.0f} | - | - | -"
            rows.append(
                f"| {text} | {name} | {tally.p50 * 1000:.0f} | {tally.p50 / raw:.2f}x | {split} |"
            )
    report_text = report(rows, tallies, against, repeat_ratios(tallies["short"]), used)
    write_section("BENCHMARKS.md", "storage-latency", report_text, "Benchmarks")


def repeat_ratios(short: dict[str, Tally]) -> dict[str, list[float]]:
    """Each tempaudio system's short-text p50 over raw Piper's, repeat by repeat."""
    raw = [statistics.median(latencies) for latencies in short["raw Piper"].latencies]
    return {
        name: [
            round(statistics.median(mine) / r, 2)
            for mine, r in zip(tally.latencies, raw, strict=True)
        ]
        for name, tally in short.items()
        if name != "raw Piper"
    }


def report(
    rows: list[str],
    tallies: dict[str, dict[str, Tally]],
    against: str | None,
    ratios: dict[str, list[float]],
    rounds: dict[str, int],
) -> str:
    short = tallies["short"]
    slow, proxied = short["tempaudio, S3 on proxy + 20 ms"], short["tempaudio, S3 on proxy"]
    plain, raw = short["tempaudio, S3 on moto"], short["raw Piper"].p50
    apart = short["tempaudio, S3 on moto, DynamoDB apart"]
    repeats = len(ratios["tempaudio, S3 on moto"])

    def per_repeat(name: str) -> str:
        return ", ".join(f"{ratio:.2f}x" for ratio in ratios[name])

    lines = [
        "## Storage latency at concurrency 1",
        "",
        (
            "Measured by `python -m bench.synthesis --only storage-latency"
            + (f" --against {against}" if against else "")
            + f"` on {machine_line()}. "
            "Raw Piper (its own Python API, in a process of its own, a text at a time over a "
            "pipe) and tempaudio services (2 workers, repeat cache off), requests alternating "
            "system by system; p50 of "
            + " and ".join(f"{n} {t}" for t, n in rounds.items())
            + f" rounds in each of {repeats} repeat{'s' if repeats > 1 else ''}, every system "
            "started afresh for each repeat (raw Piper's process too), all of them pooled. S3 on "
            "moto directly, through "
            "bench/faultproxy.py (a Python proxy: its own cost), and through it with "
            f"{S3_DELAY * 1000:.0f} ms added to every S3 call; DynamoDB on that moto directly, "
            "or (DynamoDB apart) on a moto of its own in another process, as S3 and DynamoDB "
            "are two services in AWS."
            + (
                f" `tempaudio {against}` is the service as it was at that revision (a git worktree "
                "first on PYTHONPATH), in the same run."
                if against
                else ""
            )
            + " The service's split is the mean per request, from its own histograms: "
            "synthesis (in the pool), the rest of the request inside the service (PutObject, "
            "PutItem, signing, the JSON answer), and what remains of the client's latency "
            "(HTTP on loopback, the client); and the service process's CPU time per request. "
            "Raw Piper's synthesis column is the mean of its requests. Means and medians: the "
            "columns do not add up to the p50. "
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
            f"Short text costs {plain.p50 / raw:.2f}x raw on moto, pooled (per repeat: "
            f"{per_repeat('tempaudio, S3 on moto')}; their median "
            f"{statistics.median(ratios['tempaudio, S3 on moto']):.2f}x), "
            f"{apart.p50 / raw:.2f}x with DynamoDB apart "
            f"({per_repeat('tempaudio, S3 on moto, DynamoDB apart')}) and {slow.p50 / raw:.2f}x "
            f"with 20 ms on S3. The service's own time besides synthesis is {plain.besides_ms:.0f} "
            f"ms on moto, {apart.besides_ms:.0f} ms with DynamoDB apart and {slow.besides_ms:.0f} ms "
            "with 20 ms on S3 "
            f"({slow.besides_ms - proxied.besides_ms:+.0f} ms against the proxy without delay). "
            "The PutObject and the PutItem are sent at once: a request waits for the slower of "
            "the two, not for both; if either fails, both are undone (the item revoked by a "
            "tombstone, the object deleted), so no item outlives its object. On one moto, "
            "sending them at once saves little: one Python process serves both (by hand on "
            "2026-12-07, boto3 against moto_server in another process, 100 calls of each kind 20 ms apart: "
            "PutObject of 148 kB 8.6 ms, conditional PutItem 6.9 ms, both at once 12.6 ms, one "
            "after the other 14.7 ms). moto's "
            "server (werkzeug) also closes every connection after one answer, so each call "
            "opens a TCP connection of its own, which AWS's keep-alive spares."
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
        old_apart = short[f"tempaudio {against}, S3 on moto, DynamoDB apart"]
        lines.append(
            f"At {against}, in the same run: "
            f"{old_plain.p50 / raw:.2f}x raw on moto (per repeat: "
            f"{per_repeat(f'tempaudio {against}, S3 on moto')}), {old_apart.p50 / raw:.2f}x with "
            f"DynamoDB apart and {old_slow.p50 / raw:.2f}x with 20 ms on S3; now "
            f"{plain.p50 / old_plain.p50:.2f}x and {slow.p50 / old_slow.p50:.2f}x of that, for "
            f"{plain.cpu_ms / old_plain.cpu_ms:.2f}x its CPU per request on moto."
        )
    return "\n".join(lines)
