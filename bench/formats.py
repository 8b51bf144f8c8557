"""Formats benchmark: bytes per audio second and encode cost per format, PyAV against
soundfile (libsndfile), as a fraction of the synthesis that made the audio.

The medium text is synthesized in-process with the real voice; each encoder then encodes the
same PCM, whole (as stored in S3) and streamed (sentence by sentence). Writes the "formats"
section of BENCHMARKS.md.

    python -m bench.formats
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable

from bench.common import TEXTS, machine_line, write_section
from tempaudio_service.core.formats import FORMATS
from tempaudio_service.speech.encoders import Resampler, open_encoder
from tempaudio_service.speech.synth import PiperSynthesizer, SynthesisOptions

REPEATS = 7
VOICE = "en_US-joe-medium"


def timed(func: Callable[[], bytes]) -> tuple[float, bytes]:
    """Median seconds of REPEATS runs, and the output of the last."""
    times, out = [], b""
    for _ in range(REPEATS):
        started = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def pyav(name: str, pieces: list[bytes], rate: int, *, streaming: bool) -> Callable[[], bytes]:
    def run() -> bytes:
        fmt = FORMATS[name]
        encoder = open_encoder(name, rate, fmt.output_rate(rate, None), streaming=streaming)
        out = b"".join(encoder.write(piece) for piece in pieces) + encoder.finish()
        encoder.close()
        return out

    return run


def libsndfile(name: str, pcm: bytes, rate: int) -> Callable[[], bytes] | None:
    """The same encode with soundfile; None where libsndfile has no such format (AAC)."""
    import numpy as np
    import soundfile

    kinds = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "pcm": ("RAW", "PCM_16"),
             "mp3": ("MP3", "MPEG_LAYER_III"), "opus": ("OGG", "OPUS")}  # fmt: skip
    if name not in kinds:
        return None
    out_rate = FORMATS[name].output_rate(rate, None)
    # libsndfile does not resample: Opus gets 24 kHz input, resampled outside the timing.
    samples = np.frombuffer(Resampler(rate, out_rate).resample(pcm), dtype="<i2")
    container, subtype = kinds[name]

    def run() -> bytes:
        buffer = io.BytesIO()
        soundfile.write(buffer, samples, out_rate, format=container, subtype=subtype)
        return buffer.getvalue()

    return run


def main() -> None:
    synth = PiperSynthesizer()
    text = TEXTS["medium"]
    synth.synthesize(text, VOICE, SynthesisOptions())  # warm up
    synth_seconds, _ = timed(lambda: b"".join(synth.sentences(text, VOICE, SynthesisOptions())))
    pieces = list(synth.sentences(text, VOICE, SynthesisOptions()))
    pcm = b"".join(pieces)
    rate = synth.voices[VOICE].sample_rate
    audio_seconds = len(pcm) / 2 / rate
    rows = []
    for name, fmt in FORMATS.items():
        whole_seconds, whole = timed(pyav(name, pieces, rate, streaming=False))
        stream_seconds, _ = timed(pyav(name, pieces, rate, streaming=True))
        sndfile = libsndfile(name, pcm, rate)
        if sndfile is not None:
            sf_seconds, sf_out = timed(sndfile)
            sf_cell = f"{sf_seconds * 1000:.1f} ms ({len(sf_out) / audio_seconds / 1000:.1f} kB/s)"
        else:
            sf_cell = "not supported"
        rows.append(
            f"| {name} | {fmt.content_type} | {len(whole) / audio_seconds / 1000:.1f} | "
            f"{len(whole) / len(pcm):.3f} | {whole_seconds * 1000:.1f} ms | "
            f"{whole_seconds / synth_seconds:.3f} | {stream_seconds / synth_seconds:.3f} | "
            f"{sf_cell} |"
        )
        print(rows[-1], flush=True)
    body = f"""## Formats: bytes per audio second and encode cost

`python -m bench.formats` ({machine_line()}). The medium text ({audio_seconds:.1f} s of audio)
synthesized in-process with the real voice in {synth_seconds * 1000:.0f} ms (median of
{REPEATS}); each format then encodes that same PCM, median of {REPEATS}. "Whole" is the
file stored in S3, "streamed" the same audio sentence by sentence (POST /tts/stream,
/v1/audio/speech). Encode cost is a fraction of that synthesis time. Bit rates: mp3 and
aac 64 kbit/s, opus 32 kbit/s at 24 kHz (Opus has no 22.05 kHz), flac lossless.

| format | Content-Type | kB per audio second | size vs wav | PyAV encode (whole) | encode / synthesis (whole) | encode / synthesis (streamed) | soundfile encode (size) |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

PyAV was chosen: it covers all six formats (libsndfile has no AAC) and resamples
(libswresample), at costs of the same order where both encode; every encode stays a small
fraction of synthesis, so formats do not move the throughput tables above.
"""
    write_section("BENCHMARKS.md", "formats", body, "Benchmarks")


if __name__ == "__main__":
    main()
