"""The ONNX converter, op by op: one tiny graph per op and attribute variant, run by onnxruntime
(the reference) and by our torch module, on the same input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from realtime.errors import ModelError  # noqa: E402
from realtime.models.onnx.graph import load_onnx  # noqa: E402

RNG = np.random.default_rng(0)


def _save(tmp_path: Path, nodes, x_shape, out_shape=None, initializers=(), opset=17, name="m.onnx", extra_inputs=()) -> Path:
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape)), *extra_inputs]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def _compare(path: Path, *inputs: np.ndarray, atol: float = 1e-5) -> None:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    expected = session.run(None, dict(zip(names, inputs, strict=True)))[0]
    module, _ = load_onnx(path)
    with torch.no_grad():
        got = module(*[torch.from_numpy(i) for i in inputs])
    got = got[0] if isinstance(got, tuple) else got
    assert tuple(got.shape) == expected.shape
    np.testing.assert_allclose(got.numpy(), expected, atol=atol, rtol=1e-4)


def _x(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def _init(*shape: int) -> np.ndarray:
    return (RNG.standard_normal(shape) * 0.3).astype(np.float32)


CONV_CASES = [
    {"pads": [1, 1, 1, 1]},
    {"pads": [0, 1, 2, 1], "strides": [2, 2]},  # asymmetric
    {"pads": [2, 2, 2, 2], "dilations": [2, 2]},
    {"group": 2},
]


@pytest.mark.parametrize("attrs", CONV_CASES)
def test_conv(tmp_path, attrs):
    w = _init(4, 4 // attrs.get("group", 1), 3, 3)
    path = _save(tmp_path, [helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs)], ("N", 4, 9, 9), initializers=[("w", w), ("b", _init(4))])
    _compare(path, _x(2, 4, 9, 9))


@pytest.mark.parametrize("attrs", [{"strides": [2, 2]}, {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]}, {"pads": [0, 1, 1, 0]}])
def test_conv_transpose(tmp_path, attrs):
    path = _save(tmp_path, [helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], **attrs)], (1, 3, 5, 5), initializers=[("w", _init(3, 2, 3, 3)), ("b", _init(2))])
    _compare(path, _x(1, 3, 5, 5))


@pytest.mark.parametrize(("mode", "pads"), [("constant", [0, 0, 1, 2, 0, 0, 3, 0]), ("reflect", [0, 0, 3, 3, 0, 0, 3, 3]), ("edge", [0, 0, 1, 0, 0, 0, 2, 1])])
def test_pad_modes_with_pads_as_input(tmp_path, mode, pads):
    path = _save(tmp_path, [helper.make_node("Pad", ["x", "p"], ["y"], mode=mode)], (1, 2, 6, 6), initializers=[("p", np.array(pads, np.int64))])
    _compare(path, _x(1, 2, 6, 6))


def test_pad_as_attribute_at_opset_10(tmp_path):
    path = _save(tmp_path, [helper.make_node("Pad", ["x"], ["y"], mode="reflect", pads=[0, 0, 1, 1, 0, 0, 1, 1])], (1, 2, 5, 5), opset=10)
    _compare(path, _x(1, 2, 5, 5))


@pytest.mark.parametrize(
    ("attrs", "scales"),
    [
        ({"mode": "linear", "coordinate_transformation_mode": "half_pixel"}, [1, 1, 2, 2]),
        ({"mode": "linear", "coordinate_transformation_mode": "align_corners"}, [1, 1, 2, 2]),
        ({"mode": "nearest", "coordinate_transformation_mode": "asymmetric", "nearest_mode": "floor"}, [1, 1, 2, 2]),
        ({"mode": "nearest", "coordinate_transformation_mode": "half_pixel", "nearest_mode": "round_prefer_ceil"}, [1, 1, 2, 2]),
    ],
)
def test_resize(tmp_path, attrs, scales):
    nodes = [helper.make_node("Resize", ["x", "", "s"], ["y"], **attrs)]
    path = _save(tmp_path, nodes, (1, 2, 5, 6), initializers=[("s", np.array(scales, np.float32))])
    _compare(path, _x(1, 2, 5, 6))


def test_resize_by_sizes(tmp_path):
    nodes = [helper.make_node("Resize", ["x", "", "", "sz"], ["y"], mode="linear")]
    path = _save(tmp_path, nodes, (1, 2, 5, 6), initializers=[("sz", np.array([1, 2, 10, 12], np.int64))])
    _compare(path, _x(1, 2, 5, 6))


@pytest.mark.parametrize(("starts", "ends", "axes", "steps"), [([1], [4], [1], [1]), ([-3], [100], [2], [2]), ([4], [0], [3], [-1]), ([-1], [-100], [1], [-2])])
def test_slice_including_negative_steps(tmp_path, starts, ends, axes, steps):
    inits = [("st", np.array(starts, np.int64)), ("en", np.array(ends, np.int64)), ("ax", np.array(axes, np.int64)), ("sp", np.array(steps, np.int64))]
    path = _save(tmp_path, [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])], (1, 6, 7, 5), initializers=inits)
    _compare(path, _x(1, 6, 7, 5))


@pytest.mark.parametrize("attrs", [{}, {"transB": 1}, {"transA": 1, "alpha": 0.5, "beta": 2.0}])
def test_gemm(tmp_path, attrs):
    a_shape = (6, 3) if attrs.get("transA") else (3, 6)
    b = _init(4, 6) if attrs.get("transB") else _init(6, 4)
    path = _save(tmp_path, [helper.make_node("Gemm", ["x", "b", "c"], ["y"], **attrs)], a_shape, initializers=[("b", b), ("c", _init(4))])
    _compare(path, _x(*a_shape))


@pytest.mark.parametrize("opset", [11, 13])
def test_unsqueeze_axes_as_attribute_or_input(tmp_path, opset):
    if opset == 11:
        nodes = [helper.make_node("Unsqueeze", ["x"], ["y"], axes=[2, 3])]
        inits = []
    else:
        nodes = [helper.make_node("Unsqueeze", ["x", "a"], ["y"])]
        inits = [("a", np.array([2, 3], np.int64))]
    path = _save(tmp_path, nodes, (2, 5), initializers=inits, opset=opset)
    _compare(path, _x(2, 5))


def test_normalisations_and_activations(tmp_path):
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["bn"], epsilon=1e-3),
        helper.make_node("PRelu", ["bn", "slope"], ["pr"]),
        helper.make_node("InstanceNormalization", ["pr", "s", "b"], ["inn"], epsilon=1e-5),
        helper.make_node("LeakyRelu", ["inn"], ["lr"], alpha=0.2),
        helper.make_node("Sigmoid", ["lr"], ["sg"]),
        helper.make_node("Clip", ["sg", "lo", "hi"], ["y"]),
    ]
    inits = [("s", _init(3) + 1), ("b", _init(3)), ("m", _init(3)), ("v", np.abs(_init(3)) + 0.5), ("slope", _init(3, 1, 1)), ("lo", np.array(0.3, np.float32)), ("hi", np.array(0.7, np.float32))]
    path = _save(tmp_path, nodes, (2, 3, 4, 4), initializers=inits)
    _compare(path, _x(2, 3, 4, 4))


def test_adain_as_inswapper_writes_it(tmp_path):
    """Instance norm spelled out as ops, then scale and shift from a Gemm on a second input."""
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["mean"], axes=[2, 3], keepdims=1),
        helper.make_node("Sub", ["x", "mean"], ["centred"]),
        helper.make_node("Pow", ["centred", "two"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["var"], axes=[2, 3], keepdims=1),
        helper.make_node("Add", ["var", "eps"], ["var_eps"]),
        helper.make_node("Sqrt", ["var_eps"], ["std"]),
        helper.make_node("Reciprocal", ["std"], ["inv"]),
        helper.make_node("Mul", ["centred", "inv"], ["normed"]),
        helper.make_node("Gemm", ["s", "w", "wb"], ["style"], transB=1),
        helper.make_node("Unsqueeze", ["style"], ["style4"], axes=[2, 3]),
        helper.make_node("Slice", ["style4", "z", "c", "one"], ["scale"]),
        helper.make_node("Slice", ["style4", "c", "cc", "one"], ["shift"]),
        helper.make_node("Mul", ["normed", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "shift"], ["y"]),
    ]
    inits = [("two", np.array(2, np.float32)), ("eps", np.array(1e-8, np.float32)), ("w", _init(8, 6)), ("wb", _init(8)), ("z", np.array([0], np.int64)), ("c", np.array([4], np.int64)), ("cc", np.array([8], np.int64)), ("one", np.array([1], np.int64))]
    source = helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 6])
    path = _save(tmp_path, nodes, (1, 4, 5, 5), initializers=inits, opset=11, extra_inputs=[source])
    _compare(path, _x(1, 4, 5, 5), _x(1, 6))


def test_shape_arithmetic_stays_in_python_and_follows_the_batch(tmp_path):
    """Shape → Gather → Unsqueeze → Concat → Reshape, as exporters write a flatten: the batch
    comes from the input at run time."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"]),
    ]
    inits = [("zero", np.array(0, np.int64)), ("ax", np.array([0], np.int64)), ("minus1", np.array([-1], np.int64))]
    path = _save(tmp_path, nodes, ("N", 3, 4, 4), initializers=inits)
    _compare(path, _x(3, 3, 4, 4))


def test_reshape_transpose_flatten_concat_split_depth_to_space(tmp_path):
    nodes = [
        helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", ["t"], ["t2"], perm=[0, 3, 1, 2]),
        helper.make_node("DepthToSpace", ["t2"], ["d"], blocksize=2, mode="DCR"),
        helper.make_node("SpaceToDepth", ["d"], ["s2d"], blocksize=2),
        helper.make_node("DepthToSpace", ["s2d"], ["crd"], blocksize=2, mode="CRD"),
        helper.make_node("Split", ["crd", "sizes"], ["a", "b"], axis=1),
        helper.make_node("Concat", ["b", "a"], ["c"], axis=1),
        helper.make_node("Flatten", ["c"], ["y"], axis=1),
    ]
    path = _save(tmp_path, nodes, (2, 8, 3, 3), initializers=[("sizes", np.array([1, 1], np.int64))])
    _compare(path, _x(2, 8, 3, 3))


def test_pooling_matmul_softmax_tanh_div(tmp_path):
    nodes = [
        helper.make_node("MaxPool", ["x"], ["mp"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node("AveragePool", ["mp"], ["ap"], kernel_shape=[2, 2], strides=[1, 1]),
        helper.make_node("GlobalAveragePool", ["ap"], ["gp"]),
        helper.make_node("Flatten", ["gp"], ["f"]),
        helper.make_node("MatMul", ["f", "w"], ["mm"]),
        helper.make_node("Softmax", ["mm"], ["sm"], axis=-1),
        helper.make_node("Tanh", ["sm"], ["th"]),
        helper.make_node("Div", ["th", "two"], ["y"]),
    ]
    path = _save(tmp_path, nodes, (2, 3, 9, 9), initializers=[("w", _init(3, 5)), ("two", np.array(2.0, np.float32))])
    _compare(path, _x(2, 3, 9, 9))


def test_float16_weights_and_casts_load_as_float32(tmp_path):
    """An FP16 file made with keep_io_types: FP32 I/O, Casts around FP16 weights."""
    w16 = _init(2, 2, 3, 3).astype(np.float16)
    nodes = [
        helper.make_node("Cast", ["x"], ["x16"], to=TensorProto.FLOAT16),
        helper.make_node("Conv", ["x16", "w"], ["c16"], pads=[1, 1, 1, 1]),
        helper.make_node("Cast", ["c16"], ["y"], to=TensorProto.FLOAT),
    ]
    path = _save(tmp_path, nodes, (1, 2, 6, 6), initializers=[("w", w16)])
    _compare(path, _x(1, 2, 6, 6), atol=1e-2)
    module, _ = load_onnx(path)
    assert all(b.dtype != torch.float16 for b in module.buffers())


def test_constants_are_folded_at_load(tmp_path):
    """A weight computed from constants (a transposed, scaled initializer) runs once, at load."""
    nodes = [
        helper.make_node("Transpose", ["w"], ["wt"], perm=[1, 0]),
        helper.make_node("Mul", ["wt", "k"], ["wk"]),
        helper.make_node("MatMul", ["x", "wk"], ["y"]),
    ]
    path = _save(tmp_path, nodes, (2, 4), initializers=[("w", _init(3, 4)), ("k", np.array(2.0, np.float32))])
    _compare(path, _x(2, 4))
    _, info = load_onnx(path)
    assert info.ops == {"MatMul": 1}


def test_unknown_ops_are_refused_by_name(tmp_path):
    nodes = [helper.make_node("Einsum", ["x", "x"], ["e"], equation="ij,ij->ij"), helper.make_node("Hardmax", ["e"], ["y"])]
    path = _save(tmp_path, nodes, (2, 3))
    with pytest.raises(ModelError, match="uses ONNX ops Einsum, Hardmax, which realtime does not run"):
        load_onnx(path)


def test_bad_files_are_refused_with_a_fix(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_onnx(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00not a model" * 50)
    with pytest.raises(ModelError, match="not a readable ONNX file|holds no ONNX graph"):
        load_onnx(junk)
    good = _save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], (1, 3))
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ModelError, match="check that the download or copy is complete"):
        load_onnx(cut)


def test_unused_initializers_are_reported_with_their_values(tmp_path):
    emap = _init(4, 4)
    path = _save(tmp_path, [helper.make_node("Relu", ["x"], ["y"])], (1, 4), initializers=[("buff2fs", emap)])
    _, info = load_onnx(path)
    assert info.unused_initializers == ("buff2fs",) and info.last_initializer == "buff2fs"
    np.testing.assert_array_equal(info.arrays["buff2fs"], emap)


def test_split_into_equal_parts_by_its_number_of_outputs(tmp_path):
    nodes = [helper.make_node("Split", ["x"], ["a", "b", "c"], axis=1), helper.make_node("Concat", ["c", "a", "b"], ["y"], axis=1)]
    path = _save(tmp_path, nodes, (2, 6, 3), opset=13)
    _compare(path, _x(2, 6, 3))


def test_flatten_at_any_axis(tmp_path):
    for axis in (0, 2):
        path = _save(tmp_path, [helper.make_node("Flatten", ["x"], ["y"], axis=axis)], (2, 3, 4), name=f"f{axis}.onnx")
        _compare(path, _x(2, 3, 4))
