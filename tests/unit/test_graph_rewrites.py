"""graph_rewrites.py on small graphs made here in the forms of Piper's VITS export: each
rewrite gives onnxruntime's results of the graph before it (to float rounding), and a node
of another form is left as it is. The real voice's entry is tests/e2e/test_prepared_models."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tempaudio_service.speech.graph_rewrites import (
    LAYER_NORM_OPSET,
    Rewritten,
    fuse_layer_norms,
    polyphase_upsampling,
    rewrite,
)
from tempaudio_service.speech.windowed_decoder import WindowedSession, split_graph
from tests.unit.test_windowed_decoder import CHANNELS, _session, vits_like


def _array(shape: tuple[int, ...], seed: int) -> Any:
    return numpy.random.default_rng(seed).standard_normal(shape).astype(numpy.float32)


def _model(
    nodes: list[Any], inputs: list[Any], outputs: list[Any], inits: list[Any], opset: int = 15
) -> Any:
    graph = helper.make_graph(nodes, "small", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _run(model: Any, feed: dict[str, Any]) -> list[Any]:
    return list(_session(model).run(None, feed))


def _ops(model: Any) -> Counter[str]:
    return Counter(node.op_type for node in model.graph.node)


def upsampling(
    channels_in: int,
    channels_out: int,
    stride: int,
    *,
    kernel: int | None = None,
    pads: list[int] | None = None,
    bias: bool = True,
    **attributes: Any,
) -> Any:
    """LeakyRelu -> ConvTranspose (HiFi-GAN's form: kernel 2s, padding s/2 by default)."""
    kernel = 2 * stride if kernel is None else kernel
    group = int(attributes.get("group", 1))
    weight = numpy_helper.from_array(
        _array((channels_in, channels_out // group, kernel), stride), "ups.weight"
    )
    inits = [weight]
    inputs = ["act", "ups.weight"]
    if bias:
        inits.append(numpy_helper.from_array(_array((channels_out,), 99), "ups.bias"))
        inputs.append("ups.bias")
    nodes = [
        helper.make_node("LeakyRelu", ["x"], ["act"], name="/dec/LeakyRelu", alpha=0.1),
        helper.make_node(
            "ConvTranspose",
            inputs,
            ["y"],
            name="/dec/ups.0/ConvTranspose",
            strides=[stride],
            kernel_shape=[kernel],
            pads=pads if pads is not None else [stride // 2, stride // 2],
            **attributes,
        ),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels_in, "T"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels_out, "S"])],
        inits,
    )


@pytest.mark.parametrize(
    ("channels_in", "channels_out", "stride", "bias"),
    [(3, 2, 2, True), (4, 3, 4, True), (2, 5, 8, True), (6, 4, 4, False)],
)
def test_an_upsampling_becomes_polyphase_convolutions_giving_the_same_samples(
    channels_in: int, channels_out: int, stride: int, bias: bool
) -> None:
    model = upsampling(channels_in, channels_out, stride, bias=bias)
    feed = {"x": _array((1, channels_in, 9), 7)}
    before = _run(model, feed)[0]
    assert polyphase_upsampling(model) == 1
    onnx.checker.check_model(model)
    after = _run(model, feed)[0]
    assert _ops(model)["ConvTranspose"] == 0
    assert _ops(model)["Conv"] == 2
    assert after.shape == before.shape == (1, channels_out, 9 * stride)
    numpy.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)
    # The transposed convolution's weights are gone: only the phases' are held.
    names = {tensor.name for tensor in model.graph.initializer}
    assert not names & {"ups.weight", "ups.bias"}


@pytest.mark.parametrize(
    "other",
    [
        {"kernel": 3 * 4},  # kernel 3s
        {"pads": [1, 3]},  # padded unevenly
        {"pads": [0, 0], "kernel": 4},  # kernel s
        {"group": 2},
        {"dilations": [2]},
        {"output_padding": [1]},
    ],
)
def test_an_upsampling_of_another_form_is_left_as_it_is(other: dict[str, Any]) -> None:
    model = upsampling(4, 4, 4, **other)
    before = model.SerializeToString()
    assert polyphase_upsampling(model) == 0
    assert model.SerializeToString() == before


def layer_norm(
    *,
    exponent: float = 2.0,
    read_elsewhere: str | None = None,
    opset: int = 15,
    swapped: bool = False,
    keepdims: int = 1,
    scale: tuple[int, ...] = (6,),
) -> Any:
    """[1, C, T] -> Transpose -> the export's nine-node layer norm over C -> Transpose, its
    exponent and epsilon as Constant nodes, gamma and beta as initializers. Its forms:
    ``read_elsewhere`` an intermediate value also a graph output, the Sub's operands
    ``swapped``, the ReduceMeans' ``keepdims``, gamma's ``scale`` shape."""
    channels = 6

    def constant(name: str, value: float) -> Any:
        return helper.make_node(
            "Constant",
            [],
            [name],
            name=f"/norm/{name}",
            value=numpy_helper.from_array(numpy.array(value, numpy.float32)),
        )

    nodes = [
        helper.make_node("Transpose", ["x"], ["last"], name="/norm/Transpose", perm=[0, 2, 1]),
        helper.make_node(
            "ReduceMean", ["last"], ["mean"], name="/norm/ReduceMean", axes=[-1], keepdims=keepdims
        ),
        helper.make_node(
            "Sub", ["mean", "last"] if swapped else ["last", "mean"], ["centred"], name="/norm/Sub"
        ),
        constant("two", exponent),
        helper.make_node("Pow", ["centred", "two"], ["squared"], name="/norm/Pow"),
        helper.make_node(
            "ReduceMean", ["squared"], ["variance"], name="/norm/ReduceMean_1", axes=[-1]
        ),
        constant("epsilon", 1e-5),
        helper.make_node("Add", ["variance", "epsilon"], ["shifted"], name="/norm/Add"),
        helper.make_node("Sqrt", ["shifted"], ["deviation"], name="/norm/Sqrt"),
        helper.make_node("Div", ["centred", "deviation"], ["normalized"], name="/norm/Div"),
        helper.make_node("Mul", ["normalized", "gamma"], ["scaled"], name="/norm/Mul"),
        helper.make_node("Add", ["scaled", "beta"], ["normed"], name="/norm/Add_1"),
        helper.make_node("Transpose", ["normed"], ["y"], name="/norm/Transpose_1", perm=[0, 2, 1]),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, "T"])]
    if read_elsewhere is not None:
        outputs.append(
            helper.make_tensor_value_info(read_elsewhere, TensorProto.FLOAT, [1, "T", "C"])
        )
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, "T"])],
        outputs,
        [
            numpy_helper.from_array(_array(scale, 1), "gamma"),
            numpy_helper.from_array(_array((channels,), 2), "beta"),
        ],
        opset,
    )


def test_a_spelled_out_layer_norm_becomes_one_layer_normalization() -> None:
    model = layer_norm()
    feed = {"x": _array((1, 6, 11), 3) * 4 + 1}
    before = _run(model, feed)[0]
    assert fuse_layer_norms(model) == 1
    onnx.checker.check_model(model)
    assert _ops(model) == Counter({"Transpose": 2, "LayerNormalization": 1})
    assert {entry.domain: entry.version for entry in model.opset_import}[""] == LAYER_NORM_OPSET
    numpy.testing.assert_allclose(_run(model, feed)[0], before, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "form",
    [
        {"exponent": 3.0},
        {"read_elsewhere": "centred"},
        {"read_elsewhere": "deviation"},
        {"read_elsewhere": "normalized"},
        {"swapped": True},
        {"keepdims": 0},
        {"scale": (1,)},
        {"opset": 13},  # declaring 17 would change other ops' meaning
    ],
    ids=["cubed", "centred", "deviation", "normalized", "swapped", "keepdims", "scalar", "13"],
)
def test_a_normalization_of_another_form_is_left_as_it_is(form: dict[str, Any]) -> None:
    model = layer_norm(**form)
    before = model.SerializeToString()
    assert fuse_layer_norms(model) == 0
    assert model.SerializeToString() == before


def test_a_constant_the_norm_shares_with_another_node_stays() -> None:
    model = layer_norm()
    model.graph.node.append(helper.make_node("Mul", ["x", "two"], ["doubled"], name="/Mul"))
    model.graph.output.append(
        helper.make_tensor_value_info("doubled", TensorProto.FLOAT, [1, 6, "T"])
    )
    feed = {"x": _array((1, 6, 5), 4)}
    before = _run(model, feed)
    assert fuse_layer_norms(model) == 1
    assert "two" in {name for node in model.graph.node for name in node.output}
    assert "epsilon" not in {name for node in model.graph.node for name in node.output}
    for after, expected in zip(_run(model, feed), before, strict=True):
        numpy.testing.assert_allclose(after, expected, rtol=1e-5, atol=1e-5)


def test_a_graph_whose_ops_would_change_meaning_at_opset_17_keeps_its_layer_norms() -> None:
    model = layer_norm()
    model.graph.node.append(
        helper.make_node("RoiAlign", ["x", "rois", "batch"], ["pooled"], name="/RoiAlign")
    )
    assert fuse_layer_norms(model) == 0
    assert {entry.domain: entry.version for entry in model.opset_import}[""] == 15


@pytest.mark.parametrize("names", ["torch's", "none", "one for all"])
def test_rewrite_makes_both_and_counts_them(names: str) -> None:
    norm, upsample = layer_norm(), upsampling(6, 3, 4)
    # One graph with both: the layer norm's output upsampled.
    for node in upsample.graph.node:
        node.input[:] = ["y" if name == "x" else name for name in node.input]
    graph = helper.make_graph(
        [*norm.graph.node, *upsample.graph.node],
        "both",
        list(norm.graph.input),
        [helper.make_tensor_value_info("y_up", TensorProto.FLOAT, [1, 3, "S"])],
        [*norm.graph.initializer, *upsample.graph.initializer],
    )
    graph.node[-1].output[:] = ["y_up"]
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    feed = {"x": _array((1, 6, 10), 5)}
    before = _run(model, feed)[0]
    if names != "torch's":  # other exporters leave names out, or repeat them
        for node in model.graph.node:
            node.name = "" if names == "none" else "/same"
    assert rewrite(model) == Rewritten(layer_norms=1, upsamplings=1)
    onnx.checker.check_model(model)
    assert _ops(model) == Counter(
        {"Transpose": 3, "LayerNormalization": 1, "LeakyRelu": 1, "Conv": 2}
        | {"Concat": 1, "Reshape": 2}
    )
    numpy.testing.assert_allclose(_run(model, feed)[0], before, rtol=1e-5, atol=1e-5)


def test_a_rewritten_graph_splits_at_its_decoder_and_decodes_in_windows_exactly() -> None:
    """The polyphase nodes keep the decoder's ``/dec/`` names: windowed_decoder.py splits the
    rewritten graph, measures its reach, and its windows give the whole graph's samples."""
    model = vits_like(speaker=False)
    assert rewrite(model).upsamplings == 1
    found = split_graph(model)
    assert found is not None
    front, decoder, split = found
    assert all(node.op_type != "ConvTranspose" for node in decoder.graph.node)
    feed = {"input": _array((1, CHANNELS, 101), 9)}
    whole = _run(model, feed)
    windowed = WindowedSession(_session(front), _session(decoder), split, window=10)
    assert numpy.array_equal(windowed.run(None, feed)[0], whole[0])
