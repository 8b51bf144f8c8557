"""Rewrites of a voice's graph, made once when it is prepared (prepared_models.py), that keep
what it computes and let onnxruntime run it in less time. onnxruntime's own optimizers make
neither on a Piper export: the graph they leave of the bundled voice (``ORT_ENABLE_ALL``,
saved by ``optimized_model_filepath``) still has its 72 ``ReduceMean`` and 3
``ConvTranspose``.

- **Layer norms.** VITS normalizes its text encoder's and duration predictor's channels with a
  layer norm that the export spells as nine operators: ``ReduceMean``, ``Sub``, ``Pow`` 2,
  ``ReduceMean``, ``Add`` epsilon, ``Sqrt``, ``Div``, ``Mul`` gamma, ``Add`` beta (36 of them
  in the bundled voice, between the transposes that move channels last). Each becomes one
  ``LayerNormalization`` (ONNX opset 17): a pass over the activations instead of seven, and
  eight fewer operators to schedule in a front of small ones.
- **Upsampling.** HiFi-GAN's decoder upsamples with ``ConvTranspose`` of stride ``s`` and
  kernel ``2s``, padded ``s/2`` either side. onnxruntime runs one as a matrix product into a
  column buffer of twice the output's size, then a col2im that scatters it on one thread. The
  same layer is ``s`` phases of output, each a two-tap convolution of the input: sample
  ``s*m + r`` is ``x[m-1]·W[q+s] + x[m]·W[q]`` for ``q = r + s/2 < s`` and ``x[m]·W[q] +
  x[m+1]·W[q-s]`` otherwise. So it becomes two ``Conv`` of kernel 2 (the first half of the
  phases padded on the left, the second half on the right), concatenated by phase and
  interleaved by a ``Reshape``, a ``Transpose`` and a ``Reshape``: the same multiply-adds,
  all of them on every thread, and no scatter.

Measured by ``python -m bench.graph_rewrites`` (BENCHMARKS.md "Graph rewrites"; the bundled
voice, 2 cores, both preparations run as the service's wide session, alternating): a short
sentence's front 0.94x and decoder 0.91x their time without the rewrites, 0.92x together; a
medium text's 0.96x. The sums run in another order, so the audio differs in float rounding
only: at most 2 steps of 16 bits, in about 1% of the samples, the phoneme durations the same.

A node that does not have exactly these shapes (another kernel, groups, dilation, output
padding; a normalization whose intermediate values are read elsewhere, or whose gamma is
one value) is left as it is, and so are the layer norms of a graph declared before opset
15.
Needs ``onnx`` and ``numpy``: the preparing child process's work.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

# LayerNormalization's first ONNX opset.
LAYER_NORM_OPSET = 17
# The oldest opset a graph may declare for its layer norms to be fused: declaring 17 instead
# of 15 or 16 keeps every other op's meaning but RoiAlign's (opset 16 gave it a new default;
# a graph with one is left as it is), while 13 and 14 moved and changed several ops' inputs.
# Piper's exports declare 15.
RAISABLE_FROM = 15
_CHANGED_BEFORE_17 = frozenset({"RoiAlign"})


@dataclass(frozen=True)
class Rewritten:
    """How many nodes each rewrite replaced."""

    layer_norms: int
    upsamplings: int


def rewrite(model: Any) -> Rewritten:
    """``model`` (an ``onnx.ModelProto`` with its weights in it) rewritten in place."""
    return Rewritten(fuse_layer_norms(model), polyphase_upsampling(model))


class _Graph:
    """Who makes and who reads each value of a graph, and the constants it holds."""

    def __init__(self, graph: Any) -> None:
        self.graph = graph
        _name_uniquely(graph)
        self.names = {node.name for node in graph.node}
        self.maker: dict[str, Any] = {}
        self.readers: dict[str, list[Any]] = defaultdict(list)
        for node in graph.node:
            for name in node.output:
                self.maker[name] = node
            for name in _read_names([node]):  # in its subgraphs too
                self.readers[name].append(node)
        self.outputs = {value.name for value in graph.output}
        self.initializers = {tensor.name: tensor for tensor in graph.initializer}

    def fresh_name(self, wanted: str) -> str:
        """``wanted``, or with a number after it when a node has that name already."""
        name, number = wanted, 0
        while name in self.names:
            number += 1
            name = f"{wanted}_{number}"
        self.names.add(name)
        return name

    def constant(self, name: str) -> Any:
        """The value of ``name`` as an array when the graph fixes it, else None."""
        from onnx import numpy_helper

        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.maker.get(name)
        if node is not None and node.op_type == "Constant" and len(node.attribute) == 1:
            attribute = node.attribute[0]
            if attribute.name == "value":
                return numpy_helper.to_array(attribute.t)
        return None

    def only_reader(self, name: str, op_type: str) -> Any:
        """The one node that reads ``name``, when it is an ``op_type`` and ``name`` is not
        an output of the graph; else None."""
        readers = self.readers.get(name, [])
        if name in self.outputs or len(readers) != 1 or readers[0].op_type != op_type:
            return None
        return readers[0]

    def replace(self, replaced: dict[str, list[Any]], dropped: set[str], freed: set[str]) -> None:
        """Each node named in ``replaced`` swapped for its list and the ``dropped`` removed;
        then of the values in ``freed`` (constants the removed nodes read), those that
        nothing reads any more go too."""
        nodes: list[Any] = []
        for node in self.graph.node:
            if node.name in replaced:
                nodes.extend(replaced[node.name])
            elif node.name not in dropped:
                nodes.append(node)
        unread = freed - _read_names(nodes) - self.outputs - {""}
        nodes = [node for node in nodes if not set(node.output) & unread]
        del self.graph.node[:]
        self.graph.node.extend(nodes)
        kept = [tensor for tensor in self.graph.initializer if tensor.name not in unread]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept)
        # An older graph may list its initializers as inputs too.
        inputs = [value for value in self.graph.input if value.name not in unread]
        del self.graph.input[:]
        self.graph.input.extend(inputs)


def _name_uniquely(graph: Any) -> None:
    """Nodes without a name, or with a name another node has, named by their place: the
    rewrites find nodes by name. (Torch's exports, Piper's among them, name every node.)"""
    from collections import Counter

    counts = Counter(node.name for node in graph.node)
    for index, node in enumerate(graph.node):
        if not node.name or counts[node.name] > 1:
            node.name = f"/graph_rewrites/{index}/{node.op_type}"


def _bodies(node: Any) -> list[Any]:
    """The subgraphs a node holds (an If's branches, a Loop's or Scan's body)."""
    from onnx import AttributeProto

    bodies: list[Any] = []
    for attribute in node.attribute:
        if attribute.type == AttributeProto.GRAPH:
            bodies.append(attribute.g)
        elif attribute.type == AttributeProto.GRAPHS:
            bodies.extend(attribute.graphs)
    return bodies


def _read_names(nodes: Any) -> set[str]:
    """Every value the nodes read, in their subgraphs too."""
    read: set[str] = set()
    for node in nodes:
        read.update(node.input)
        for body in _bodies(node):  # a body's outputs may name an outer value
            read |= _read_names(body.node) | {value.name for value in body.output}
    return read


def _op_types(graph: Any) -> set[str]:
    """Every op type of the graph, in its subgraphs too."""
    found: set[str] = set()
    for node in graph.node:
        found.add(node.op_type)
        for body in _bodies(node):
            found |= _op_types(body)
    return found


def _attribute(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _other(node: Any, known: str) -> str:
    """The input of a two-input node that is not ``known``."""
    first, second = (str(name) for name in node.input)
    return second if first == known else first


def _reduces_last_axis(graph: _Graph, node: Any) -> bool:
    axes = _attribute(node, "axes")
    if axes is None and len(node.input) > 1:  # opset 18: the axes are an input
        found = graph.constant(node.input[1])
        axes = None if found is None else [int(axis) for axis in found.reshape(-1)]
    return list(axes or []) == [-1] and _attribute(node, "keepdims", 1) == 1


def fuse_layer_norms(model: Any) -> int:
    """Each layer norm spelled as the export spells it made one ``LayerNormalization``."""
    from onnx import helper

    default = [entry for entry in model.opset_import if entry.domain in ("", "ai.onnx")]
    if not default or default[0].version < RAISABLE_FROM:
        return 0
    if default[0].version < LAYER_NORM_OPSET and _op_types(model.graph) & _CHANGED_BEFORE_17:
        return 0
    graph = _Graph(model.graph)
    replaced: dict[str, list[Any]] = {}
    dropped: set[str] = set()
    freed: set[str] = set()
    for mean in model.graph.node:
        found = _layer_norm_at(graph, mean)
        if found is None:
            continue
        last = found.nodes[-1]
        fused = helper.make_node(
            "LayerNormalization",
            [found.source, found.gamma, found.beta],
            [last.output[0]],
            name=graph.fresh_name(mean.name.rsplit("/", 1)[0] + "/LayerNormalization"),
            axis=-1,
            epsilon=found.epsilon,
        )
        replaced[last.name] = [fused]
        dropped.update(node.name for node in found.nodes[:-1])
        freed.update(name for node in found.nodes for name in node.input)
    if not replaced:
        return 0
    graph.replace(replaced, dropped, freed)
    default[0].version = max(default[0].version, LAYER_NORM_OPSET)
    model.ir_version = max(model.ir_version, 8)  # opset 17's
    return len(replaced)


@dataclass(frozen=True)
class _LayerNorm:
    """A layer norm as the export spells it: its nine nodes and what they read."""

    nodes: tuple[Any, ...]
    source: str
    gamma: str
    beta: str
    epsilon: float


def _layer_norm_at(graph: _Graph, mean: Any) -> _LayerNorm | None:
    """The layer norm that starts at ``mean``, or None when it does not start one."""
    normalized = _normalized_at(graph, mean)
    if normalized is None:
        return None
    nodes, epsilon = normalized
    divide = nodes[-1]
    scale = graph.only_reader(divide.output[0], "Mul")
    shift = None if scale is None else graph.only_reader(scale.output[0], "Add")
    if scale is None or shift is None:
        return None
    gamma = _other(scale, divide.output[0])
    beta = _other(shift, scale.output[0])
    # LayerNormalization takes gamma and beta of the normalized axis's length; a Mul or
    # Add would also broadcast one value (or a wrong length), which it would not.
    sizes = set()
    for name in (gamma, beta):
        value = graph.constant(name)
        if name not in graph.initializers or value is None or value.ndim != 1:
            return None
        sizes.add(value.size)
    if len(sizes) != 1 or sizes == {1}:
        return None
    return _LayerNorm((*nodes, scale, shift), mean.input[0], gamma, beta, epsilon)


def _normalized_at(graph: _Graph, mean: Any) -> tuple[tuple[Any, ...], float] | None:
    """The seven nodes from ``mean`` to the ``Div`` that gives the normalized values, and
    the epsilon; None when ``mean`` does not start them."""
    if mean.op_type != "ReduceMean" or not _reduces_last_axis(graph, mean):
        return None
    sub = graph.only_reader(mean.output[0], "Sub")
    if sub is None or list(sub.input) != [mean.input[0], mean.output[0]]:
        return None
    centred = sub.output[0]
    readers = graph.readers.get(centred, [])
    if centred in graph.outputs or sorted(node.op_type for node in readers) != ["Div", "Pow"]:
        return None
    power = next(node for node in readers if node.op_type == "Pow")
    divide = next(node for node in readers if node.op_type == "Div")
    if power.input[0] != centred or _scalar(graph, power.input[1]) != 2.0:
        return None
    variance = graph.only_reader(power.output[0], "ReduceMean")
    if variance is None or not _reduces_last_axis(graph, variance):
        return None
    add_epsilon = graph.only_reader(variance.output[0], "Add")
    root = None if add_epsilon is None else graph.only_reader(add_epsilon.output[0], "Sqrt")
    if add_epsilon is None or root is None or list(divide.input) != [centred, root.output[0]]:
        return None
    if graph.only_reader(root.output[0], "Div") is not divide:
        return None
    epsilon = _scalar(graph, _other(add_epsilon, variance.output[0]))
    if epsilon is None:
        return None
    return (mean, sub, power, variance, add_epsilon, root, divide), epsilon


def _scalar(graph: _Graph, name: str) -> float | None:
    value = graph.constant(name)
    if value is None or value.size != 1:
        return None
    return float(value.reshape(-1)[0])


def polyphase_upsampling(model: Any) -> int:
    """Each 1-D ``ConvTranspose`` of stride s, kernel 2s and padding s/2 made its polyphase
    convolutions."""
    graph = _Graph(model.graph)
    replaced: dict[str, list[Any]] = {}
    freed: set[str] = set()
    for node in model.graph.node:
        made = _polyphase(graph, node)
        if made is not None:
            nodes, weights = made
            replaced[node.name] = nodes
            freed.update(name for name in node.input[1:] if name)
            model.graph.initializer.extend(weights)
    if replaced:
        graph.replace(replaced, set(), freed)
    return len(replaced)


def _polyphase(graph: _Graph, node: Any) -> tuple[list[Any], list[Any]] | None:
    import numpy
    from onnx import helper, numpy_helper

    if node.op_type != "ConvTranspose" or len(node.input) < 2:
        return None
    weight = graph.constant(node.input[1]) if node.input[1] in graph.initializers else None
    bias_name = node.input[2] if len(node.input) > 2 else ""
    bias = graph.constant(bias_name) if bias_name in graph.initializers else None
    if weight is None or weight.ndim != 3 or (bias_name and bias is None):
        return None
    _, outputs, kernel = weight.shape
    strides = _attribute(node, "strides", [1])
    stride = int(strides[0])
    pads = list(_attribute(node, "pads", [0, 0]))
    plain = (
        _attribute(node, "group", 1) == 1
        and list(_attribute(node, "dilations", [1])) == [1]
        and list(_attribute(node, "kernel_shape", [kernel])) == [kernel]
        and _attribute(node, "auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
        and not any(_attribute(node, "output_padding", []) or [])
        and _attribute(node, "output_shape") is None
    )
    if not plain or stride < 2 or stride % 2 or kernel != 2 * stride:
        return None
    if pads != [stride // 2, stride // 2]:
        return None
    if bias is None:
        bias = numpy.zeros(outputs, dtype=weight.dtype)
    half = stride // 2
    # Phase r (q = r + s/2) of output channel o is row (r mod s/2) * outputs + o of its
    # convolution, whose taps read x[m-1], x[m] (left) or x[m], x[m+1] (right).
    left = [
        numpy.stack([weight[:, :, q + stride], weight[:, :, q]], -1) for q in range(half, stride)
    ]
    right = [
        numpy.stack([weight[:, :, q], weight[:, :, q - stride]], -1)
        for q in range(stride, stride + half)
    ]
    base = graph.fresh_name(node.name.rsplit("/", 1)[0] + "/polyphase")
    made = {
        f"{base}/left.weight": numpy.concatenate([w.transpose(1, 0, 2) for w in left]),
        f"{base}/right.weight": numpy.concatenate([w.transpose(1, 0, 2) for w in right]),
        f"{base}/bias": numpy.tile(bias, half),
        f"{base}/phases": numpy.array([0, stride, outputs, -1], dtype=numpy.int64),
        f"{base}/samples": numpy.array([0, outputs, -1], dtype=numpy.int64),
    }
    weights = [
        numpy_helper.from_array(numpy.ascontiguousarray(value), name)
        for name, value in made.items()
    ]
    source = node.input[0]

    def conv(side: str, pads: list[int]) -> Any:
        return helper.make_node(
            "Conv",
            [source, f"{base}/{side}.weight", f"{base}/bias"],
            [f"{base}/{side}"],
            name=f"{base}/{side}/Conv",
            kernel_shape=[2],
            pads=pads,
            strides=[1],
            dilations=[1],
            group=1,
        )

    nodes = [
        conv("left", [1, 0]),
        conv("right", [0, 1]),
        helper.make_node(
            "Concat",
            [f"{base}/left", f"{base}/right"],
            [f"{base}/by_phase"],
            name=f"{base}/Concat",
            axis=1,
        ),
        helper.make_node(
            "Reshape",
            [f"{base}/by_phase", f"{base}/phases"],
            [f"{base}/phase_major"],
            name=f"{base}/Reshape",
        ),
        helper.make_node(
            "Transpose",
            [f"{base}/phase_major"],
            [f"{base}/interleaved"],
            name=f"{base}/Transpose",
            perm=[0, 2, 3, 1],
        ),
        helper.make_node(
            "Reshape",
            [f"{base}/interleaved", f"{base}/samples"],
            list(node.output[:1]),
            name=f"{base}/Reshape_1",
        ),
    ]
    return nodes, weights
