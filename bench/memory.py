"""Where the service's memory goes: per loaded session, per second of sentence audio, and
the service's peak under load for each memory setting.

Each probe runs in a fresh process (peak RSS from getrusage); the load runs start the
service as its own process against moto's server in this one. Writes the "memory" section
of BENCHMARKS.md.

    python -m bench.memory
    python -m bench.memory --only versions --against REV   # against a previous version
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.common import SENTENCES, TEXTS, free_port, machine_line, write_section
from bench.synthesis import RssSampler, local_moto, peak_rss, reset_peak_rss, tempaudio_server

# One run-on sentence of about 50 words: what an unchunked decoder renders in one go.
RUN_ON = ", and ".join(sentence.rstrip(".") for sentence in SENTENCES[:3]) + "."
LOAD_TEXTS = (TEXTS["medium"], RUN_ON, TEXTS["short"], TEXTS["long"])


@dataclass(frozen=True)
class Profile:
    """One memory setting of the service, as the environment variables a user would set."""

    name: str
    workers: int = 2  # TEMPAUDIO_SYNTH_WORKERS
    threads: int = 1  # TEMPAUDIO_ONNX_THREADS: each synthesis while others run
    idle: int = 2  # TEMPAUDIO_ONNX_IDLE_THREADS: a synthesis running alone
    chunk: int = 150  # TEMPAUDIO_MAX_CHUNK_PHONEMES

    @property
    def sessions(self) -> int:
        return 2 if self.idle > self.threads else 1


DEFAULT = Profile("default")
PROFILES = (
    DEFAULT,
    Profile("whole sentences", chunk=100_000),
    Profile("shorter pieces", chunk=100),
    Profile("one 2-thread session", threads=2),
    Profile("one 1-thread session", idle=1),
    Profile("one 2-thread session, one worker", workers=1, threads=2),
)

_PROBE = """
import resource, sys
import tempaudio_service.speech.synth as synth
idle, words = int(sys.argv[1]), int(sys.argv[2])
s = synth.PiperSynthesizer(intra_op_threads=1, idle_threads=idle, max_chunk_phonemes=100_000)
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
seconds = 0.0
if words:
    seconds = s.synthesize(" ".join(["delivery"] * words) + ".", "en_US-joe-medium",
                           synth.SynthesisOptions()).duration_seconds
print(loaded, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, seconds)
"""


def synthesizer_with(*, pattern: bool, shared: bool) -> Any:
    """The default profile's synthesizer with its sessions' memory options overridden: a
    memory pattern per input shape or none, one arena for all sessions or one each."""
    import onnxruntime

    from tempaudio_service.speech.synth import PiperSynthesizer

    real = onnxruntime.InferenceSession

    def session(model: str, sess_options: Any, providers: list[str]) -> Any:
        sess_options.enable_mem_pattern = pattern
        sess_options.add_session_config_entry("session.use_env_allocators", str(int(shared)))
        return real(model, sess_options=sess_options, providers=providers)

    onnxruntime.InferenceSession = session
    try:
        return PiperSynthesizer(
            intra_op_threads=DEFAULT.threads,
            idle_threads=DEFAULT.idle,
            max_chunk_phonemes=DEFAULT.chunk,
        )
    finally:
        onnxruntime.InferenceSession = real


# The default profile's load in one process, two syntheses at once, per session options.
_SESSION_OPTIONS_PROBE = """
import resource, sys
from concurrent.futures import ThreadPoolExecutor
from tempaudio_service.speech.synth import SynthesisOptions
from bench.memory import LOAD_TEXTS, synthesizer_with
s = synthesizer_with(pattern=sys.argv[1] == "1", shared=sys.argv[2] == "1")
options = SynthesisOptions()
with ThreadPoolExecutor(2) as pool:
    list(pool.map(lambda i: s.synthesize(LOAD_TEXTS[i % 4], "en_US-joe-medium", options),
                  range(16)))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
# Speed of the service's options vs onnxruntime's defaults, in one process, alternating
# synthesis by synthesis so a drift in the machine's speed hits both alike.
_SESSION_SPEED_PROBE = """
import statistics, time
from tempaudio_service.speech.synth import SynthesisOptions
from bench.common import TEXTS
from bench.memory import synthesizer_with
service = synthesizer_with(pattern=False, shared=True)
ort_defaults = synthesizer_with(pattern=True, shared=False)
options = SynthesisOptions()
for text, rounds in (("short", 12), ("medium", 6), ("long", 2)):
    times = {service: [], ort_defaults: []}
    for _ in range(rounds + 1):
        for s in (service, ort_defaults):
            started = time.perf_counter()
            s.synthesize(TEXTS[text], "en_US-joe-medium", options)
            times[s].append(time.perf_counter() - started)
    print(text, statistics.median(times[service][1:]) / statistics.median(times[ort_defaults][1:]))
"""


def session_options_speed() -> dict[str, float]:
    """Per text: p50 with the service's session options / p50 with onnxruntime's defaults."""
    out = subprocess.run([sys.executable, "-c", _SESSION_SPEED_PROBE],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return {line.split()[0]: float(line.split()[1]) for line in out.splitlines() if line.strip()}


SESSION_OPTIONS = (
    ("memory pattern per shape, one arena per session (onnxruntime's defaults)", True, False),
    ("no memory pattern, one arena per session", False, False),
    ("no memory pattern, one arena for all sessions (the service)", False, True),
)


def session_options_peak(pattern: bool, shared: bool) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _SESSION_OPTIONS_PROBE, str(int(pattern)), str(int(shared))],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return int(out.split()[-1]) / 1024


def probe(idle_threads: int, words: int) -> tuple[float, float, float]:
    out = subprocess.run([sys.executable, "-c", _PROBE, str(idle_threads), str(words)],
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    return int(out[0]) / 1024, int(out[1]) / 1024, float(out[2])


@dataclass(frozen=True)
class LoadRun:
    peak_mb: float
    requests_per_second: float
    audio_per_second: float
    alone_p50: float  # seconds: the medium text with nothing else running


def under_load(profile: Profile, requests: int = 16, *, high_water: bool = False) -> LoadRun:
    """Peak RSS, requests/s and audio seconds/s at concurrency 4, after the p50 of the medium
    text running alone. With ``high_water`` the peak is the kernel's high-water mark after
    warm-up, not 100 ms samples."""
    env = {"TEMPAUDIO_MAX_CHUNK_PHONEMES": str(profile.chunk)}
    with tempaudio_server(
        workers=profile.workers,
        onnx_threads=profile.threads,
        idle_threads=profile.idle,
        extra_env=env,
    ) as (call, process):
        call(TEXTS["short"])
        alone = []
        for _ in range(4):
            started = time.perf_counter()
            call(TEXTS["medium"])
            alone.append(time.perf_counter() - started)
        if high_water:
            for text in LOAD_TEXTS:  # the same warm-up as the hostile run's
                call(text)
            reset_peak_rss(process.pid)
        sampler = RssSampler(process.pid)
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            seconds = list(
                pool.map(lambda i: call(LOAD_TEXTS[i % len(LOAD_TEXTS)]), range(requests))
            )
        wall = time.perf_counter() - started
        peak = sampler.stop()
        if high_water:
            peak = peak_rss(process.pid)
    audio = sum(s or 0.0 for s in seconds)
    return LoadRun(peak / 2**20, requests / wall, audio / wall, statistics.median(alone[1:]))


# Requests an attacker or a careless caller sends, each within the body and text limits.
HOSTILE: tuple[tuple[str, dict[str, Any] | bytes], ...] = (
    ("830 hyphen-joined words (one espeak word)", {"text": "-".join(["hello"] * 830)}),
    ("4,000 letters without a space", {"text": "qzxj" * 1000}),
    ("5,000 raw phonemes ([[...]])", {"text": "[[" + "a" * 4996 + "]]"}),
    ("1,000 characters at length_scale 5", {"text": TEXTS["long"][:1000], "length_scale": 5}),
    ("1,666 sentences + 5 s silence each", {"text": "A. " * 1666, "sentence_silence": 5}),
    ("only punctuation", {"text": ". " * 2000}),
    ("zero-width characters", {"text": "\u200b" * 4000}),
    ("NUL in the text", b'{"text": "a\\u0000b"}'),
    ("lone surrogate", b'{"text": "\\ud800"}'),
    ("400-digit knob", b'{"text": "hi", "length_scale": ' + b"9" * 400 + b"}"),
    ("5,000-digit integer", b'{"text": "hi", "x": ' + b"1" * 5000 + b"}"),
    ("30,000 levels of nesting", b"[" * 30000 + b"]" * 30000),
)


HOSTILE_BASELINE_REQUESTS = 64


def hostile() -> list[tuple[str, str, float, float]]:
    """Each hostile request twice at once (both workers) against a fresh default service:
    (case, answer, seconds, peak RSS in MB during the case)."""
    import httpx

    rows = []
    port = free_port()
    with tempaudio_server(workers=DEFAULT.workers, idle_threads=DEFAULT.idle, port=port) as (
        call,
        process,
    ):
        for text in LOAD_TEXTS:  # the arena as ordinary load leaves it
            call(text)
        url = f"http://127.0.0.1:{port}/tts/sync"
        client = httpx.Client(timeout=600, headers={"content-type": "application/json"})
        for name, body in HOSTILE:
            reset_peak_rss(process.pid)
            started = time.perf_counter()
            content = body if isinstance(body, bytes) else json.dumps(body).encode()
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(lambda c: client.post(url, content=c), [content] * 2))
            seconds = time.perf_counter() - started
            peak = peak_rss(process.pid) / 2**20
            codes = {f"{a.status_code} {a.json().get('error', 'ok')}" for a in answers}
            rows.append((name, ", ".join(sorted(codes)), seconds, peak))
            print(f"{name}: {codes} {seconds:.1f} s, peak {peak:.0f} MB", flush=True)
    return rows


def hostile_report(rows: list[tuple[str, str, float, float]], normal_peak: float) -> str:
    worst = max(peak for *_, peak in rows)
    return "\n".join([
        ("Hostile corpus (`python -m bench.memory --only hostile`): each request sent twice at "
         "once to a fresh default service (2 workers) after ordinary warm-up; peak RSS is the "
         "kernel's high-water mark of the service process (VmHWM, reset before each case), so "
         "no spike is missed. The normal-load peak is measured the same way on another fresh "
         f"service: the same warm-up, then {HOSTILE_BASELINE_REQUESTS} ordinary requests at "
         "concurrency 4 (the profile table's texts; 100 ms samples, as in that table, miss "
         "the short spikes of ordinary sentences). Normal-load peak in the same run: "
         f"{normal_peak:.0f} MB."),
        "",
        "| request | answer | seconds | peak RSS (MB) | vs normal-load peak |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {name} | {answer} | {seconds:.1f} | {peak:.0f} | {peak / normal_peak:.2f}x |"
          for name, answer, seconds, peak in rows],
        "",
        (f"Worst case {worst:.0f} MB, {worst / normal_peak:.2f}x the normal-load peak. Before "
         "the chunk cap inside words, the first request took a process from 1.1 GB to 5.49 GB "
         "and the second from 287 MB to 1.18 GB; the fifth made a 398 MB WAV in 46 s."),
    ])  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--only", choices=["hostile", "frontier", "versions"], help="run one part only"
    )
    parser.add_argument(
        "--against", metavar="REV", help="versions: the git revision to compare with"
    )
    args = parser.parse_args()
    only = args.only
    if only == "versions":
        from bench import memory_versions

        return memory_versions.main(args.against or "HEAD~1")
    if only == "frontier":
        with local_moto():
            text = frontier_report(paired_rounds(FRONTIER_CANDIDATES))
        write_section("BENCHMARKS.md", "memory-frontier", text, "Benchmarks")
        print(text)
        return 0
    if only == "hostile":
        with local_moto():
            # RSS creeps with the number of decoder calls until it plateaus (arena and malloc
            # fragmentation), so the baseline decodes about as much as the hostile corpus:
            # 64 ordinary requests, not the 16 of the profile table.
            normal_peak = under_load(
                DEFAULT, requests=HOSTILE_BASELINE_REQUESTS, high_water=True
            ).peak_mb
            rows = hostile()
        text = hostile_report(rows, normal_peak)
        write_section("BENCHMARKS.md", "memory-hostile", "## Memory under hostile input\n\n"
                      + text, "Benchmarks")  # fmt: skip
        write_section("RELIABILITY.md", "hostile", "## Hostile input\n\n" + text, "Reliability")
        print(text)
        return 0
    with local_moto():
        loads = []
        for profile in PROFILES:
            run = under_load(profile, high_water=True)
            print(f"{profile.name}: {run}", flush=True)
            loads.append((profile, run))
    one, _, _ = probe(1, 0)
    two, _, _ = probe(2, 0)
    rows = []
    for words in (5, 15, 30, 60):
        loaded, peak, seconds = probe(1, words)
        rows.append((words, seconds, peak - loaded))
    options = [(name, session_options_peak(p, shared)) for name, p, shared in SESSION_OPTIONS]
    speed = session_options_speed()
    text = report(loads, options, speed, one, two, rows)
    write_section("BENCHMARKS.md", "memory", text, "Benchmarks")
    print(text)
    return 0


def report(
    loads: list[tuple[Profile, LoadRun]],
    options: list[tuple[str, float]],
    speed: dict[str, float],
    one: float,
    two: float,
    rows: list[tuple[int, float, float]],
) -> str:
    """The "memory" section from the load runs, the session-option runs and the probes."""
    default = next(run for profile, run in loads if profile == DEFAULT)
    slope = (rows[-1][2] - rows[0][2]) / (rows[-1][1] - rows[0][1])
    growth = (
        f"About {slope:.0f} MB per second of sentence audio per concurrent synthesis (the probe "
        "decodes each sentence whole, in one piece)."
        if slope >= 1
        else "No extra peak to measure: a sentence of any of these lengths, decoded whole in "
        "one piece, stays under the high-water mark the process reached loading the voice."
    )
    verdict = (
        f"With the defaults the peak is {default.peak_mb:.0f} MB (target < 400 MB). Single runs "
        "on this shared machine vary by up to 20% in speed, so whether a profile keeps the "
        'default\'s speed is decided in paired rounds: "Memory frontier" below.'
    )
    lines = [
        "## Memory",
        "",
        f"Measured by `python -m bench.memory` on {machine_line()}, each figure a fresh process.",
        "",
        (f"- Process with the default voice loaded: {one:.0f} MB with one session, {two:.0f} MB "
         "with two (1-thread sessions for busy times plus a 2-thread one for a synthesis running "
         "alone, the default)."),
        "- Extra peak while one synthesis decodes a single sentence:",
        "",
        "| words in the sentence | audio (s) | extra peak RSS (MB) |",
        "| --- | --- | --- |",
        *[f"| {w} | {s:.1f} | {mb:.0f} |" for w, s, mb in rows],
        "",
        (growth + " The VITS decoder runs on windows "
         "of at most 320 latent frames, about 3.7 s of audio "
         "(`service/tempaudio_service/speech/windowed_decoder.py`), so its activations, which "
         "grew with the sentence when Piper decoded it at once (about 20 MB per second of "
         "audio, 522 MB for 60 words on 2026-11-30), no longer do; what still grows is the "
         "front, whose attention spans the sentence's phonemes, and the sentence's audio. The "
         "service also cuts a long sentence into pieces of at most "
         "`TEMPAUDIO_MAX_CHUNK_PHONEMES` phonemes (default 150, about 7 s of audio: ordinary "
         "sentences stay whole; split after a clause mark or between words)."),
        "",
        ("onnxruntime's session options, the default profile's load run in one process "
         "(two syntheses at once, 16 texts):"),
        "",
        "| session options | peak RSS (MB) |",
        "| --- | --- |",
        *[f"| {name} | {peak:.0f} |" for name, peak in options],
        "",
        ("A memory pattern is planned and allocated as one block per input shape, and text "
         "comes in every length, so the blocks fragment the arena; the arena keeps the largest "
         "activations it has served, so two arenas keep two copies of the peak. The service "
         "turns patterns off and registers one arena for all its sessions "
         "(`service/tempaudio_service/speech/synth.py`). Speed, the service's options over "
         "onnxruntime's defaults, one process, alternating synthesis by synthesis (p50): "
         + ", ".join(f"{text} {ratio:.2f}x" for text, ratio in speed.items())
         + ". Turning the arena off entirely cost 1.25-1.7x in speed."),
        "",
        ("Service peak RSS under load, per profile: the medium text alone 4 times (p50 of the "
         "last 3), then concurrency 4, 16 requests cycling medium text, a 50-word run-on "
         "sentence, short text and long text. The peak is the kernel's high-water mark "
         "(VmHWM) after that warm-up, so no spike is missed; S3 and DynamoDB in another "
         "process. Target: < 400 MB at >= 0.97x the default's throughput with the same p50 "
         "alone (+-5%)."),
        "",
        ("| profile | `SYNTH_WORKERS` | `ONNX_THREADS` / `ONNX_IDLE_THREADS` | sessions "
         "| `MAX_CHUNK_PHONEMES` | peak RSS (MB) | req/s | audio s/s | throughput vs default "
         "| p50 alone (s) | vs default |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *[f"| {p.name} | {p.workers} | {p.threads} / {p.idle} | {p.sessions} "
          f"| {p.chunk if p.chunk < 100_000 else 'whole sentences'} | {run.peak_mb:.0f} "
          f"| {run.requests_per_second:.2f} | {run.audio_per_second:.1f} "
          f"| {run.requests_per_second / default.requests_per_second:.2f}x "
          f"| {run.alone_p50:.2f} | {run.alone_p50 / default.alone_p50:.2f}x |"
          for p, run in loads],
        "",
        verdict,
    ]  # fmt: skip
    return "\n".join(lines)


# The profiles under (or near) 400 MB, each against the default in alternating rounds.
FRONTIER_CANDIDATES = (
    Profile("one 2-thread session, one worker", workers=1, threads=2),
    Profile("one 2-thread session", threads=2),
)
FRONTIER_ROUNDS = 3


def paired_rounds(
    candidates: tuple[Profile, ...], rounds: int = FRONTIER_ROUNDS
) -> dict[Profile, list[tuple[LoadRun, LoadRun]]]:
    """Per candidate, (default, candidate) runs back to back, ``rounds`` times: a drift in
    the machine's speed hits both of a pair alike."""
    pairs: dict[Profile, list[tuple[LoadRun, LoadRun]]] = {c: [] for c in candidates}
    for round_ in range(rounds):
        for candidate in candidates:
            default = under_load(DEFAULT, high_water=True)
            other = under_load(candidate, high_water=True)
            print(f"round {round_ + 1}: default {default}\n  {candidate.name} {other}", flush=True)
            pairs[candidate].append((default, other))
    return pairs


def frontier_report(pairs: dict[Profile, list[tuple[LoadRun, LoadRun]]]) -> str:
    rows = []
    for candidate, runs in pairs.items():
        throughput = statistics.median(
            o.requests_per_second / d.requests_per_second for d, o in runs
        )
        alone = statistics.median(o.alone_p50 / d.alone_p50 for d, o in runs)
        rows.append(
            f"| {candidate.name} | {statistics.median(d.peak_mb for d, _ in runs):.0f} "
            f"| {statistics.median(o.peak_mb for _, o in runs):.0f} | {throughput:.2f}x "
            f"({', '.join(f'{o.requests_per_second / d.requests_per_second:.2f}' for d, o in runs)}) "
            f"| {alone:.2f}x ({', '.join(f'{o.alone_p50 / d.alone_p50:.2f}' for d, o in runs)}) |"
        )
    return "\n".join([
        "## Memory frontier",
        "",
        (f"Measured by `python -m bench.memory --only frontier` on {machine_line()}: each "
         f"candidate against the default in {FRONTIER_ROUNDS} rounds, the two runs of a round "
         "back to back (the same load as the profile table: p50 of the medium text alone, "
         "then 16 mixed requests at concurrency 4; peak = VmHWM). Ratios are per round, "
         "median first, then each round's."),
        "",
        ("| candidate | default peak (MB) | candidate peak (MB) | throughput vs default "
         "| p50 alone vs default |"),
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        frontier_verdict(pairs),
    ])  # fmt: skip


def frontier_verdict(pairs: dict[Profile, list[tuple[LoadRun, LoadRun]]]) -> str:
    """Which candidates meet the target (medians over the rounds), or the frontier."""
    summary = []
    for candidate, runs in pairs.items():
        peak = statistics.median(o.peak_mb for _, o in runs)
        throughput = statistics.median(
            o.requests_per_second / d.requests_per_second for d, o in runs
        )
        alone = statistics.median(o.alone_p50 / d.alone_p50 for d, o in runs)
        summary.append((candidate, peak, throughput, alone))
    default_peak = statistics.median(d.peak_mb for runs in pairs.values() for d, _ in runs)
    met = [
        c.name
        for c, peak, thr, alone in summary
        if peak < 400 and thr >= 0.97 and abs(alone - 1) <= 0.05
    ]
    if met:
        return f"Under 400 MB at the default's speed (medians): {', '.join(met)}."
    frontier = ", ".join(
        f"{c.name}: {peak:.0f} MB at {thr:.2f}x the throughput and {alone:.2f}x the p50 alone"
        for c, peak, thr, alone in summary
    )
    return (
        f"No candidate is under 400 MB at the default's speed (>= 0.97x throughput, p50 alone "
        f"within 5%); the default peaks at {default_peak:.0f} MB. The frontier, medians: "
        f"{frontier}. The default stays the fastest point; pods limited to 400 MB take the "
        "point under it that suits them (docs/operations/capacity.md)."
    )


if __name__ == "__main__":
    raise SystemExit(main())
