"""windowed_decoder.py on small graphs made here in the shape of Piper's VITS export: a
front that gives a latent (and a speaker's embedding, and durations), a ``/dec/`` decoder of
convolutions that upsamples it. The real voice's split is tests/e2e/test_prepared_models."""

from __future__ import annotations

from typing import Any

import numpy
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

from tempaudio_service.speech.windowed_decoder import (
    Split,
    WindowedDecoder,
    WindowedSession,
    split_graph,
)

CHANNELS = 4
SPEAKER = 3


def _weight(name: str, shape: tuple[int, ...], seed: int) -> Any:
    values = numpy.random.default_rng(seed).standard_normal(shape).astype(numpy.float32)
    return numpy_helper.from_array(values * 0.3, name)


def vits_like(*, speaker: bool, decoder_prefix: str = "/dec/") -> Any:
    """input [1, CHANNELS, T] -> /Mul_7 (the masked latent) -> conv_pre (k 7) [+ cond(g)]
    -> LeakyRelu -> ConvTranspose x4 (k 8) -> a dilated Conv -> Tanh -> Unsqueeze -> output;
    a second output from the front (like Piper's durations)."""
    d = decoder_prefix
    nodes = [
        helper.make_node("Mul", ["input", "mask"], ["/Mul_7_output_0"], name="/Mul_7"),
        helper.make_node("Ceil", ["input"], ["/Ceil_output_0"], name="/Ceil"),
        helper.make_node(
            "Conv",
            ["/Mul_7_output_0", "dec.conv_pre.weight", "dec.conv_pre.bias"],
            ["pre"],
            name=f"{d}conv_pre/Conv",
            pads=[3, 3],
        ),
    ]
    inits = [
        numpy_helper.from_array(numpy.ones((1, 1, 1), numpy.float32), "mask"),
        _weight("dec.conv_pre.weight", (8, CHANNELS, 7), 1),
        _weight("dec.conv_pre.bias", (8,), 2),
        _weight("dec.ups.0.weight", (8, 6, 8), 3),
        _weight("dec.resblock.weight", (6, 6, 3), 4),
    ]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, CHANNELS, "T"])]
    before = "pre"
    if speaker:
        inputs.append(helper.make_tensor_value_info("sid", TensorProto.FLOAT, [1, SPEAKER, 1]))
        nodes += [
            helper.make_node("Relu", ["sid"], ["/emb_g_output_0"], name="/emb_g"),
            helper.make_node(
                "Conv", ["/emb_g_output_0", "dec.cond.weight"], ["cond"], name=f"{d}cond/Conv"
            ),
            helper.make_node("Add", ["pre", "cond"], ["conditioned"], name=f"{d}Add"),
        ]
        inits.append(_weight("dec.cond.weight", (8, SPEAKER, 1), 5))
        before = "conditioned"
    nodes += [
        helper.make_node("LeakyRelu", [before], ["act"], name=f"{d}LeakyRelu", alpha=0.1),
        helper.make_node(
            "ConvTranspose",
            ["act", "dec.ups.0.weight"],
            ["up"],
            name=f"{d}ups.0/ConvTranspose",
            strides=[4],
            pads=[2, 2],
        ),
        helper.make_node(
            "Conv",
            ["up", "dec.resblock.weight"],
            ["res"],
            name=f"{d}resblock/Conv",
            dilations=[3],
            pads=[3, 3],
        ),
        helper.make_node("ReduceMean", ["res"], ["mean"], name=f"{d}ReduceMean", axes=[1]),
        helper.make_node("Tanh", ["mean"], ["/dec/Tanh_output_0"], name=f"{d}Tanh"),
        helper.make_node(
            "Unsqueeze", ["/dec/Tanh_output_0", "axis"], ["output"], name="/Unsqueeze_11"
        ),
    ]
    inits.append(numpy_helper.from_array(numpy.array([1], numpy.int64), "axis"))
    graph = helper.make_graph(
        nodes,
        "vits_like",
        inputs,
        [
            helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1, "S"]),
            helper.make_tensor_value_info("/Ceil_output_0", TensorProto.FLOAT, [1, CHANNELS, "T"]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _session(model: Any) -> Any:
    return onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )


def _feed(frames: int, speaker: bool) -> dict[str, Any]:
    random = numpy.random.default_rng(7)
    feed = {"input": random.standard_normal((1, CHANNELS, frames)).astype(numpy.float32)}
    if speaker:
        feed["sid"] = random.standard_normal((1, SPEAKER, 1)).astype(numpy.float32)
    return feed


def test_the_graph_splits_where_the_decoder_begins_and_the_reach_is_measured() -> None:
    found = split_graph(vits_like(speaker=False))
    assert found is not None
    front, decoder, split = found
    # conv_pre reaches 3 frames, the transposed conv 1, the dilated conv 3 samples (< 1
    # frame): 8 is the smallest context tried that covers that.
    assert split == Split("/Mul_7_output_0", (), 8, 4)
    assert [value.name for value in front.graph.output] == ["/Mul_7_output_0", "/Ceil_output_0"]
    assert [value.name for value in decoder.graph.input] == ["/Mul_7_output_0"]
    assert all(
        node.name.startswith("/dec/") or node.op_type == "Unsqueeze" for node in decoder.graph.node
    )


def test_windows_give_the_whole_graph_s_outputs_exactly() -> None:
    for speaker in (False, True):
        model = vits_like(speaker=speaker)
        found = split_graph(model)
        assert found is not None
        front, decoder, split = found
        assert split.conditions == (("/emb_g_output_0",) if speaker else ())
        feed = _feed(101, speaker)
        whole = _session(model).run(None, feed)
        windowed = WindowedSession(_session(front), _session(decoder), split, window=10)
        given = windowed.run(None, feed)
        assert [a.shape for a in given] == [a.shape for a in whole]
        assert numpy.array_equal(given[0], whole[0])
        assert numpy.array_equal(given[1], whole[1])


class _Recording:
    def __init__(self, session: Any) -> None:
        self._session = session
        self.frames: list[int] = []

    def run(self, names: Any, feed: dict[str, Any]) -> Any:
        self.frames.append(feed["/Mul_7_output_0"].shape[-1])
        return self._session.run(names, feed)


def test_the_decoder_never_sees_more_than_a_window_and_its_context() -> None:
    found = split_graph(vits_like(speaker=False))
    assert found is not None
    _, decoder, split = found
    recording = _Recording(_session(decoder))
    latent = numpy.random.default_rng(3).standard_normal((1, CHANNELS, 95)).astype(numpy.float32)
    audio = WindowedDecoder(recording, split.latent, split.context, split.hop, 20).decode(
        latent, {}
    )
    assert audio.shape[-1] == 95 * split.hop
    # As few windows as keep each under 20 frames, of equal length: 19, 19, 19, 19, 19,
    # each with its context where there is latent for it.
    context = split.context
    assert recording.frames == [19 + context] + [19 + 2 * context] * 3 + [19 + context]
    # Short enough: one run, whole.
    recording.frames.clear()
    WindowedDecoder(recording, split.latent, split.context, split.hop, 20).decode(
        latent[:, :, :20], {}
    )
    assert recording.frames == [20]


def test_a_graph_without_a_decoder_of_that_shape_is_not_split() -> None:
    assert split_graph(vits_like(speaker=False, decoder_prefix="/vocoder/")) is None


def test_a_decoder_that_reads_the_model_s_input_is_not_split() -> None:
    model = vits_like(speaker=False)
    # The decoder's Tanh now also reads the front's input: it is not the decoder alone.
    for node in model.graph.node:
        if node.name == "/dec/ReduceMean":
            node.input[0] = "input"
    assert split_graph(model) is None
