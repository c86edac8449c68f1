"""Stand-ins for users' mask models with each family's exact signature (BYO-MODELS-2.md §2 and §6),
built here with random or chosen weights (nothing third-party, never committed): the XSeg U-Net as
FaceFusion's and VisoMaster's files bind it, VisoMaster's occluder, a BiSeNet-shaped parser with
its auxiliary heads; and pass-through stand-ins whose output is known (a constant mask, a mask
keyed on a colour in the file's own channel order, a fixed label map). Used by the tests and the
benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from realtime.byo.masks.profiles import PARSER_CLASSES, PROFILES
from realtime.testing_onnx import _Graph

OccluderFamily = Literal["xseg_facefusion", "xseg_visomaster", "occluder_visomaster"]
PARSER_SIZE = PROFILES["bisenet"].size
CLASSES = len(PARSER_CLASSES)
FRN_EPS = 1e-6


def _save(path: Path, g: _Graph, inputs: list[tuple[str, list[Any]]], outputs: list[tuple[str, list[Any]]], *, opset: int) -> Path:
    import onnx
    from onnx import helper, numpy_helper

    graph = helper.make_graph(
        g.nodes, "standin",
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(np.asarray(v), n) for n, v in g.inits],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="realtime stand-in")
    model.ir_version = 9 if opset >= 20 else 8
    onnx.save(model, str(path))
    return path


def _signature(family: OccluderFamily) -> tuple[list[tuple[str, list[Any]]], list[tuple[str, list[Any]]]]:
    """The family's declared inputs and outputs (§2.1, §2.2), batch 1 as the files declare it."""
    s = PROFILES[family].size
    if family == "xseg_facefusion":
        return [("input", [1, s, s, 3])], [("output", [1, s, s, 1])]
    profile = PROFILES[family]
    return [(profile.input_name, [1, 3, s, s])], [(profile.output_name or "output", [1, 1, s, s])]


def _to_nchw(g: _Graph, family: OccluderFamily, name: str) -> str:
    return g.node("Transpose", [name], perm=[0, 3, 1, 2]) if PROFILES[family].channels_last else name


def _finish(g: _Graph, family: OccluderFamily, x: str, output: str) -> None:
    """``x`` (N, 1, S, S) as the family's output: NHWC for FaceFusion's XSeg, named as bound."""
    from onnx import helper

    if PROFILES[family].channels_last:
        g.nodes.append(helper.make_node("Transpose", [x], [output], perm=[0, 2, 3, 1]))
    else:
        g.nodes.append(helper.make_node("Identity", [x], [output]))


def _frn_tlu(g: _Graph, x: str, channels: int) -> str:
    """Filter response normalisation then a thresholded linear unit, as XSeg's blocks do:
    x · rsqrt(mean(x²) + ε) · γ + β, then max(·, τ) (Sqrt and Reciprocal: how tf2onnx writes rsqrt)."""
    nu2 = g.node("ReduceMean", [g.node("Mul", [x, x])], axes=[2, 3], keepdims=1)
    inv = g.node("Reciprocal", [g.node("Sqrt", [g.node("Add", [nu2, g.const(np.array(FRN_EPS, np.float32))])])])
    gamma = (1.0 + 0.1 * g.rng.standard_normal((1, channels, 1, 1))).astype(np.float32)
    beta = (0.1 * g.rng.standard_normal((1, channels, 1, 1))).astype(np.float32)
    y = g.node("Add", [g.node("Mul", [g.node("Mul", [x, inv]), g.const(gamma)]), g.const(beta)])
    return g.node("Max", [y, g.const((-0.2 * np.abs(g.rng.standard_normal((1, channels, 1, 1)))).astype(np.float32))])


def _blur_pool(g: _Graph, x: str, channels: int) -> str:
    """BlurPool: a reflected pad, then the binomial 3×3 filter per channel at stride 2."""
    taps = np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0
    weight = np.tile(taps.astype(np.float32), (channels, 1, 1, 1))
    padded = g.node("Pad", [x, g.const(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads")], mode="reflect")
    return g.node("Conv", [padded, g.const(weight, "blur")], kernel_shape=[3, 3], strides=[2, 2], group=channels)


def _up(g: _Graph, x: str, cin: int, cout: int, *, output_shape: list[int] | None) -> str:
    """A stride-2 ConvTranspose: pads and output_padding, or (as tf2onnx may write it) output_shape."""
    weight = (g.rng.standard_normal((cin, cout, 3, 3)) / np.sqrt(cin * 9)).astype(np.float32)
    bias = (g.rng.standard_normal(cout) * 0.01).astype(np.float32)
    if output_shape is not None:
        return g.node("ConvTranspose", [x, g.const(weight, "w"), g.const(bias, "b")], kernel_shape=[3, 3], strides=[2, 2], output_shape=output_shape)
    return g.node("ConvTranspose", [x, g.const(weight, "w"), g.const(bias, "b")], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1])


def make_xseg_standin(path: Path, family: OccluderFamily = "xseg_facefusion", *, base: int = 4, seed: int = 0) -> Path:
    """The XSeg U-Net (§2.1, DeepFaceLive's XsegNet) at width ``base`` (32: the real one): a 256²
    input, Conv+FRN+TLU blocks, six BlurPool halvings to 4×4, a dense bottleneck (4096→512→4096
    at full width), ConvTranspose up-blocks with skips, a 7×7 output conv; a sigmoid (XSeg's
    probability), or none for VisoMaster's occluder (a logit). Bound as ``family`` binds it."""
    g = _Graph(seed)
    inputs, outputs = _signature(family)
    size = PROFILES[family].size
    widths = [base, 2 * base, 4 * base, 8 * base, 8 * base, 8 * base, 8 * base]  # at 256, 128, …, 4 px
    x = _frn_tlu(g, g.conv(_to_nchw(g, family, inputs[0][0]), 3, widths[0], 3), widths[0])
    skips = []
    for level in range(6):
        x = _frn_tlu(g, g.conv(x, widths[level], widths[level], 3), widths[level])
        skips.append(x)
        x = _frn_tlu(g, g.conv(_blur_pool(g, x, widths[level]), widths[level], widths[level + 1], 3), widths[level + 1])
    deep, side = widths[6], size >> 6
    flat = g.node("Reshape", [x, g.const(np.array([1, deep * side * side], np.int64), "shape")])
    for fan_in, fan_out in ((deep * side * side, deep * side * side // 8), (deep * side * side // 8, deep * side * side)):
        weight = (g.rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(np.float32)
        flat = g.node("Add", [g.node("MatMul", [flat, g.const(weight, "dense")]), g.const(np.zeros(fan_out, np.float32))])
    x = g.node("Reshape", [flat, g.const(np.array([1, deep, side, side], np.int64), "shape")])
    for level in reversed(range(6)):
        resolution = size >> level
        # VisoMaster's file is a different export of the same network: it spells the up-sampling
        # as tf2onnx may, with output_shape, so both forms are exercised
        x = _up(g, x, widths[level + 1], widths[level], output_shape=[resolution, resolution] if family != "xseg_facefusion" else None)
        x = g.node("Concat", [_frn_tlu(g, x, widths[level]), skips[level]], axis=1)
        x = _frn_tlu(g, g.conv(x, 2 * widths[level], widths[level], 3), widths[level])
    y = g.conv(x, widths[0], 1, 7)
    if PROFILES[family].output == "probability":
        y = g.node("Sigmoid", [y])
    _finish(g, family, y, outputs[0][0])
    return _save(path, g, inputs, outputs, opset=13)


def make_colour_key_occluder(path: Path, family: OccluderFamily = "xseg_facefusion", *, gain: float = 40.0, offset: float = 10.0) -> Path:
    """An occluder with a known answer, in ``family``'s signature: face = sigmoid(gain·(R − B) +
    offset) (the logit itself for a logit family), R and B read in the colour order the family
    is fed. With the defaults, a blue object (a 'hand' in the tests) is in front of the face and
    skin and greys are face; with ``gain`` 0, ``offset`` +30 (−30) is a mask of ones (zeros)."""
    g = _Graph(0)
    inputs, outputs = _signature(family)
    red, blue = (2, 0) if PROFILES[family].colour == "bgr" else (0, 2)
    weight = np.zeros((1, 3, 1, 1), np.float32)
    weight[0, red], weight[0, blue] = gain, -gain
    y = g.node("Conv", [_to_nchw(g, family, inputs[0][0]), g.const(weight, "w"), g.const(np.array([offset], np.float32), "b")], kernel_shape=[1, 1])
    if PROFILES[family].output == "probability":
        y = g.node("Sigmoid", [y])
    _finish(g, family, y, outputs[0][0])
    return _save(path, g, inputs, outputs, opset=13)


def _conv_bn_relu(g: _Graph, x: str, cin: int, cout: int, k: int = 3, stride: int = 1) -> str:
    ones, zeros = np.ones(cout, np.float32), np.zeros(cout, np.float32)
    scale = (1.0 + 0.1 * g.rng.standard_normal(cout)).astype(np.float32)
    bn = g.node("BatchNormalization", [g.conv(x, cin, cout, k, stride), g.const(scale), g.const(zeros), g.const(0.01 * g.rng.standard_normal(cout).astype(np.float32)), g.const(ones)])
    return g.node("Relu", [bn])


def _attention(g: _Graph, x: str, channels: int) -> str:
    """BiSeNet's attention refinement: x · sigmoid(conv(global average))."""
    return g.node("Mul", [x, g.node("Sigmoid", [g.conv(g.node("GlobalAveragePool", [x]), channels, channels, 1)])])


def _upsample(g: _Graph, x: str, size: int) -> str:
    """Bilinear to ``size``² with align_corners, as yakhyo's model calls F.interpolate."""
    sizes = g.const(np.array([1, 1, size, size], np.int64), "sizes")  # batch and channels: taken from x below
    shape = g.node("Shape", [x])
    keep = g.node("Slice", [shape, g.const(np.array([0], np.int64)), g.const(np.array([2], np.int64))])
    wanted = g.node("Concat", [keep, g.node("Slice", [sizes, g.const(np.array([2], np.int64)), g.const(np.array([4], np.int64))])], axis=0)
    return g.node("Resize", [x, "", "", wanted], mode="linear", coordinate_transformation_mode="align_corners")


def make_bisenet_standin(path: Path, *, base: int = 4, seed: int = 0, size: int = PARSER_SIZE) -> Path:
    """A BiSeNet-shaped face parser (§2.3: yakhyo/face-parsing's export, opset 20, dynamic batch):
    a strided context path with attention refinement, a spatial path, feature fusion, and three
    19-class heads at full size (the main ``output`` and two auxiliary ones, which FaceFusion
    ignores). ``base`` 64 is ResNet's stem width."""
    g = _Graph(seed)
    spatial = _conv_bn_relu(g, _conv_bn_relu(g, _conv_bn_relu(g, "input", 3, base, 7, 2), base, base, 3, 2), base, 2 * base, 3, 2)  # 1/8
    x = g.node("MaxPool", [_conv_bn_relu(g, "input", 3, base, 7, 2)], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])  # 1/4
    x = _conv_bn_relu(g, x, base, 2 * base, 3, 2)  # 1/8
    feat16 = _conv_bn_relu(g, x, 2 * base, 4 * base, 3, 2)  # 1/16
    feat32 = _conv_bn_relu(g, feat16, 4 * base, 8 * base, 3, 2)  # 1/32
    context = g.node("Add", [_attention(g, g.conv(feat32, 8 * base, 2 * base, 1), 2 * base), g.conv(g.node("GlobalAveragePool", [feat32]), 8 * base, 2 * base, 1)])
    up32 = _upsample(g, context, size // 16)
    up16 = _upsample(g, g.node("Add", [_attention(g, g.conv(feat16, 4 * base, 2 * base, 1), 2 * base), up32]), size // 8)
    fused = _conv_bn_relu(g, g.node("Concat", [spatial, up16], axis=1), 4 * base, 4 * base, 1)
    fused = g.node("Add", [fused, g.node("Mul", [fused, g.node("Sigmoid", [g.conv(g.node("GlobalAveragePool", [fused]), 4 * base, 4 * base, 1)])])])
    heads = [(fused, 4 * base), (up16, 2 * base), (up32, 2 * base)]
    names = ["output", "aux16", "aux32"]
    from onnx import helper

    for (feature, channels), name in zip(heads, names, strict=True):
        logits = g.conv(_conv_bn_relu(g, feature, channels, channels), channels, CLASSES, 1)
        g.nodes.append(helper.make_node("Identity", [_upsample(g, logits, size)], [name]))
    return _save(path, g, [("input", ["batch", 3, size, size])], [(n, ["batch", CLASSES, size, size]) for n in names], opset=20)


def make_label_map_parser(path: Path, column_labels: np.ndarray, *, size: int = PARSER_SIZE) -> Path:
    """A parser in BiSeNet's signature whose answer is known: every row's labels are
    ``column_labels`` (``size`` class ids, one per column), whatever the image (a zero-weight
    convolution keeps the input's batch; a constant one-hot adds the label map's logits)."""
    g = _Graph(0)
    logits = np.zeros((1, CLASSES, 1, size), np.float32)
    logits[0, np.asarray(column_labels), 0, np.arange(size)] = 10.0
    zero = g.node("Conv", ["input", g.const(np.zeros((CLASSES, 3, 1, 1), np.float32), "w")], kernel_shape=[1, 1])
    from onnx import helper

    g.nodes.append(helper.make_node("Add", [zero, g.const(logits, "labels")], ["output"]))
    return _save(path, g, [("input", ["batch", 3, size, size])], [("output", ["batch", CLASSES, size, size])], opset=20)
