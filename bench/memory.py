"""Where the service's memory goes: per loaded session, per second of sentence audio, and
the service's peak under load for each memory setting.

Each probe runs in a fresh process (peak RSS from getrusage); the load runs start the
service as its own process against moto's server in this one. Writes the "memory" section
of BENCHMARKS.md.

    python -m bench.memory
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from bench.common import SENTENCES, TEXTS, machine_line, write_section
from bench.synthesis import RssSampler, local_moto, tempaudio_server

# One run-on sentence of about 50 words: what an unchunked decoder renders in one go.
RUN_ON = ", and ".join(sentence.rstrip(".") for sentence in SENTENCES[:3]) + "."
LOAD_TEXTS = (TEXTS["medium"], RUN_ON, TEXTS["short"], TEXTS["long"])
# (threads of a synthesis running alone, longest piece decoded at once in phonemes)
LOAD_SETTINGS = ((2, 0), (2, 150), (2, 100), (1, 150), (1, 100), (1, 60))

_PROBE = """
import resource, sys
import tempaudio_service.synth as synth
idle, words = int(sys.argv[1]), int(sys.argv[2])
s = synth.PiperSynthesizer(intra_op_threads=1, idle_threads=idle, max_chunk_phonemes=0)
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
seconds = 0.0
if words:
    seconds = s.synthesize(" ".join(["delivery"] * words) + ".", "en_US-joe-medium",
                           synth.SynthesisOptions()).duration_seconds
print(loaded, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, seconds)
"""


def probe(idle_threads: int, words: int) -> tuple[float, float, float]:
    out = subprocess.run([sys.executable, "-c", _PROBE, str(idle_threads), str(words)],
                         capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    return int(out[0]) / 1024, int(out[1]) / 1024, float(out[2])


def under_load(idle_threads: int, chunk: int, requests: int = 16) -> tuple[float, float, float]:
    """Peak RSS (MB), requests/s and audio seconds/s at concurrency 4, two workers."""
    env = {"TEMPAUDIO_MAX_CHUNK_PHONEMES": str(chunk)}
    with tempaudio_server(workers=2, idle_threads=idle_threads, extra_env=env) as (call, process):
        call(TEXTS["short"])
        sampler = RssSampler(process.pid)
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            seconds = list(
                pool.map(lambda i: call(LOAD_TEXTS[i % len(LOAD_TEXTS)]), range(requests))
            )
        wall = time.perf_counter() - started
        peak = sampler.stop()
    audio = sum(s or 0.0 for s in seconds)
    return peak / 2**20, requests / wall, audio / wall


def main() -> int:
    with local_moto():
        loads = []
        for idle, chunk in LOAD_SETTINGS:
            peak, rate, audio_rate = under_load(idle, chunk)
            print(f"idle={idle} chunk={chunk}: peak {peak:.0f} MB, {rate:.2f} req/s", flush=True)
            loads.append((idle, chunk, peak, rate, audio_rate))
    one, _, _ = probe(1, 0)
    two, _, _ = probe(2, 0)
    rows = []
    for words in (5, 15, 30, 60):
        loaded, peak, seconds = probe(1, words)
        rows.append((words, seconds, peak - loaded))
    text = report(loads, one, two, rows)
    write_section("BENCHMARKS.md", "memory", text, "Benchmarks")
    print(text)
    return 0


def report(
    loads: list[tuple[int, int, float, float, float]],
    one: float,
    two: float,
    rows: list[tuple[int, float, float]],
) -> str:
    """The "memory" section from the load runs, the loaded-process sizes and the probes."""
    peaks = {(idle, chunk): peak for idle, chunk, peak, _, _ in loads}
    whole, chunked = peaks[(2, 0)], peaks[(2, 150)]
    lowest = min(peaks.values())
    met = [
        f"{idle} thread(s) alone, chunk {chunk}" for (idle, chunk), p in peaks.items() if p < 400
    ]
    slope = (rows[-1][2] - rows[0][2]) / (rows[-1][1] - rows[0][1])
    lines = [
        "## Memory",
        "",
        f"Measured by `python -m bench.memory` on {machine_line()}, each figure a fresh process.",
        "",
        (f"- Process with the default voice loaded: {one:.0f} MB with one session "
        f"(`TEMPAUDIO_ONNX_IDLE_THREADS=1`), {two:.0f} MB with the wide session for quiet-service latency (the default)."),
        "- Extra peak while one synthesis decodes a single sentence:",
        "",
        "| words in the sentence | audio (s) | extra peak RSS (MB) |",
        "| --- | --- | --- |",
        *[f"| {w} | {s:.1f} | {mb:.0f} |" for w, s, mb in rows],
        "",
        (f"About {slope:.0f} MB per second of sentence audio per concurrent synthesis: Piper decodes a "
        "whole sentence at once and the VITS decoder's activations grow with its audio length. "
        "Unchunked, a synthesis's peak grows with its longest sentence without bound. "
        "The service therefore decodes a long sentence in pieces of at most "
        "`TEMPAUDIO_MAX_CHUNK_PHONEMES` phonemes (default 150, about 7 s of audio: ordinary "
        "sentences stay whole; split after a clause mark or between words). onnxruntime's arena "
        "keeps each session's largest activations, so the narrow session (shared by the "
        "workers) and the wide one each hold their own; turning the arena off returns the "
        "memory after each synthesis but cost 1.25-1.7x in speed here, and arena shrinkage "
        "raised the peak, so the arena stays on."),
        "",
        ("Service peak RSS under load (two workers, concurrency 4, 16 requests cycling medium "
         "text, a 50-word run-on sentence, short text and long text; S3 and DynamoDB in "
         "another process; target < 400 MB):"),
        "",
        "| threads alone | max chunk (phonemes) | peak RSS (MB) | req/s | audio s/s |",
        "| --- | --- | --- | --- | --- |",
        *[f"| {idle} | {chunk or 'whole sentences'} | {peak:.0f} | {rate:.2f} | {audio:.1f} |"
          for idle, chunk, peak, rate, audio in loads],
        "",
        (f"Chunking cuts the default's peak to {chunked:.0f} MB from {whole:.0f} MB "
         f"({chunked / whole:.2f}x) at the same throughput. "
         + (f"Settings under the 400 MB target: {', '.join(met)}." if met else
            f"No setting measured here meets the 400 MB target (lowest {lowest:.0f} MB, "
            f"{lowest / 400:.2f}x the target): two 63 MB sessions plus one arena per session "
            "holding the largest activations of two concurrent syntheses. What would: sharing "
            "weights and one arena across the sessions, or a smaller (low-quality) voice.")),
    ]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
