"""A VITS voice's decoder run in windows of bounded length, so that its memory no longer
follows a piece's audio.

A Piper model is a text encoder, a duration predictor and a flow, which work at the rate of
the model's frames (one per ``hop`` samples: 256 at 22,050 Hz), then a HiFi-GAN decoder
that turns the flow's latent frames into samples. The decoder's activations are at the
audio's rate, in hundreds of channels: about 20 MB per second of audio, so decoding a 7 s
piece at once held about 140 MB per synthesis, where the rest of the model holds little.

The decoder is convolutions only, so a sample depends on the latent frames within a fixed
reach of its own (its receptive field). At preparation, the model's graph is split where
the decoder begins (its ``/dec/`` nodes, as Piper's VITS export names them), and that reach
is measured: a random latent decoded whole and in windows, with ``context`` frames either
side of each window, until the windows' samples are the whole decode's, bit for bit (12
frames for the bundled voice). At run time the first graph gives the latent; a latent of
more than ``WINDOW_FRAMES`` frames (about 3.7 s at 22,050 Hz) is decoded in as few windows
of equal length as keep each under it, with that context, and each window's own samples
are copied into the piece's audio. The audio is the same as the whole graph's; only the
decoder's peak memory is bounded by the window. Each seam decodes twice the context again
(24 frames): a shorter window would hold less and cost more (BENCHMARKS.md "Memory").

A graph that does not split this way (no ``/dec/`` nodes, a decoder fed from elsewhere, no
reach found within ``CONTEXTS``) is run whole, as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)
# Latent frames a window holds at most: 320 x 256 samples at 22,050 Hz is 3.7 s, so an
# ordinary short sentence is one window, decoded whole. Measured on the bundled voice: with
# windows of 200 frames a short sentence (290 frames) took two, at 1.05x its time whole.
WINDOW_FRAMES = 320
# Context frames tried at preparation, smallest first.
CONTEXTS = (8, 12, 16, 24, 32, 48, 64)
DECODER_PREFIX = "/dec/"
DECODER_FIRST = "/dec/conv_pre/Conv"
# Frames of random latent decoded to measure the reach: three windows' worth of the largest
# context, so that every window has context on both sides.
_PROBE_FRAMES = 3 * 2 * CONTEXTS[-1]


@dataclass(frozen=True)
class Split:
    """Where a prepared model's graph was split: the front graph gives ``latent`` (then
    ``conditions``, then the whole model's other outputs); the decoder graph takes them."""

    latent: str
    # Decoder inputs besides the latent (a speaker's embedding), given whole to every window.
    conditions: tuple[str, ...]
    # Frames either side of a window that make its samples exact; samples per frame.
    context: int
    hop: int


def split_graph(model: Any) -> tuple[Any, Any, Split] | None:
    """``model`` (an ``onnx.ModelProto`` with its weights in it) as a front graph and a
    decoder graph, or None when it does not split at a decoder. Needs ``onnx`` and
    ``onnxruntime``: the preparing child process's work."""
    import onnx
    from onnx.utils import Extractor

    graph = model.graph
    nodes = [node for node in graph.node if node.name.startswith(DECODER_PREFIX)]
    first = next((node for node in nodes if node.name == DECODER_FIRST), None)
    if first is None:
        return None
    made = {name for node in nodes for name in node.output}
    weights = {tensor.name for tensor in graph.initializer}
    fed: list[str] = []
    for node in nodes:
        for name in node.input:
            if name and name not in made and name not in weights and name not in fed:
                fed.append(name)
    latent = first.input[0]
    if latent not in fed:
        return None
    conditions = tuple(name for name in fed if name != latent)
    inputs = [value.name for value in graph.input]
    outputs = [value.name for value in graph.output]
    # The extractor types the halves' new inputs and outputs from the graph's value_info.
    extractor = Extractor(onnx.shape_inference.infer_shapes(model))
    try:
        decoder = extractor.extract_model([latent, *conditions], outputs[:1])
        front = extractor.extract_model(inputs, [latent, *conditions, *outputs[1:]])
    except (ValueError, KeyError) as error:  # a name the graph does not type or have
        logger.warning("the model's decoder could not be split out: %s", error)
        return None
    # The decoder must be the decoder alone: fed by the latent and conditions only.
    if any(name in inputs for node in decoder.graph.node for name in node.input):
        return None
    channels = next((list(t.dims)[1] for t in graph.initializer if t.name == first.input[1]), None)
    reach = None if channels is None else measured_context(decoder, latent, channels, conditions)
    if reach is None:
        return None
    context, hop = reach
    return front, decoder, Split(latent, conditions, context, hop)


def measured_context(
    decoder: Any, latent: str, channels: int, conditions: Sequence[str]
) -> tuple[int, int] | None:
    """The smallest context in ``CONTEXTS`` with which windows decode a random latent of
    ``channels`` to the whole decode's samples exactly, and the samples per frame; None if
    none does."""
    import numpy
    import onnxruntime

    session = onnxruntime.InferenceSession(
        decoder.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    shapes = {value.name: value.shape for value in session.get_inputs()}
    random = numpy.random.default_rng(0)
    feed = {
        name: random.standard_normal([d if isinstance(d, int) else 1 for d in shapes[name]]).astype(
            numpy.float32
        )
        for name in conditions
    }
    frames = random.standard_normal((1, channels, _PROBE_FRAMES)).astype(numpy.float32)
    whole = session.run(None, {latent: frames, **feed})[0]
    hop, remainder = divmod(whole.shape[-1], _PROBE_FRAMES)
    if remainder or hop <= 0:
        return None
    window = _PROBE_FRAMES // 3
    for context in CONTEXTS:
        windowed = WindowedDecoder(session, latent, context, hop, window).decode(frames, feed)
        if windowed.shape == whole.shape and numpy.array_equal(windowed, whole):
            return context, hop
    return None


class WindowedDecoder:
    """A decoder session run on windows of a latent with context either side."""

    def __init__(
        self, session: Any, latent: str, context: int, hop: int, window: int = WINDOW_FRAMES
    ) -> None:
        self._session = session
        self._latent = latent
        self._context = context
        self._hop = hop
        self._window = window

    @property
    def session(self) -> Any:
        return self._session

    def decode(self, latent: Any, conditions: dict[str, Any]) -> Any:
        """The audio of ``latent`` ([1, channels, frames]), as the decoder gives it whole."""
        import numpy

        frames = latent.shape[-1]
        if frames <= self._window:
            return self._session.run(None, {self._latent: latent, **conditions})[0]
        # Windows of equal length: as few seams (each decodes 2 x context frames twice) as
        # windows of at most ``window`` frames allow.
        count = -(-frames // self._window)
        length = -(-frames // count)
        audio: Any = None
        for start in range(0, frames, length):
            end = min(frames, start + length)
            first = max(0, start - self._context)
            last = min(frames, end + self._context)
            window = numpy.ascontiguousarray(latent[:, :, first:last])
            out = self._session.run(None, {self._latent: window, **conditions})[0]
            if audio is None:
                audio = numpy.empty((*out.shape[:-1], frames * self._hop), dtype=out.dtype)
            skip = (start - first) * self._hop
            audio[..., start * self._hop : end * self._hop] = out[
                ..., skip : skip + (end - start) * self._hop
            ]
        return audio


class WindowedSession:
    """The front and decoder sessions of a split model, run as one session of the whole
    model: ``run(None, feed)`` gives the whole graph's outputs (what Piper's voice reads)."""

    def __init__(self, front: Any, decoder: Any, split: Split, window: int = WINDOW_FRAMES):
        self.front = front
        self.split = split
        self.decoder = WindowedDecoder(decoder, split.latent, split.context, split.hop, window)

    def sessions(self) -> tuple[Any, Any]:
        return self.front, self.decoder.session

    def run(self, output_names: Sequence[str] | None, feed: dict[str, Any], *_: Any) -> list[Any]:
        if output_names is not None:
            raise ValueError("a windowed session gives every output (output_names=None)")
        given = self.front.run(None, feed)
        count = len(self.split.conditions)
        conditions = dict(zip(self.split.conditions, given[1 : 1 + count], strict=True))
        return [self.decoder.decode(given[0], conditions), *given[1 + count :]]
