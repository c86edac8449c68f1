"""ONNX operations as torch functions, one per op type, following the ONNX operator specification
(opset 7-21 forms of each op's attributes and inputs). A function takes the node's input values
(tensors, ``None`` for an omitted optional input, or ``ShapeValue`` lists for shape arithmetic),
its attributes and the run's ``Context``; it returns one value or a list (ops with several
outputs). Shapes stay Python values, so ``torch.export`` sees no data-dependent shape."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from realtime.errors import ModelError

ShapeValue = list[int]  # a shape (or a slice of one) computed from tensor sizes: kept as Python ints
# int/float: a scalar constant, kept in Python so that exporting never reads a tensor for it;
# a tuple: the outputs of a multi-output op
Value = torch.Tensor | ShapeValue | int | float | tuple[torch.Tensor, ...] | None
Attrs = dict[str, Any]
# No tensor an op makes from a shape (ConstantOfShape), and no constant folded at load, may be
# larger: a face swapper's largest weight is tens of MiB, and a file that asks for gigabytes
# (an unused ConstantOfShape of 4 GiB, say) is refused before anything is allocated.
MAX_TENSOR_BYTES = 256 << 20


@dataclass(frozen=True)
class Context:
    """What an op may need beyond its inputs: the run's batch, the batch the file declares (a
    constant shape that names the declared batch of 1 is read as the run's batch), and where ops
    that take no tensor make their output (``meta``: sizes only, when folding checks a node)."""

    batch: int
    declared_batch: int | None
    device: torch.device | None = None


def _t(value: Value) -> torch.Tensor:
    """A tensor from a value (a shape list becomes int64)."""
    if isinstance(value, list):
        return torch.tensor(value, dtype=torch.int64)
    if isinstance(value, (int, float)):
        return torch.tensor(value)
    assert isinstance(value, torch.Tensor)
    return value


def _ints(value: Value) -> list[int]:
    """A constant or shape value as Python ints (pads, axes, a target shape)."""
    if isinstance(value, list):
        return [int(v) for v in value]
    if isinstance(value, (int, float)):
        return [int(value)]
    return [int(v) for v in _t(value).reshape(-1).tolist()]


def _floats(value: Value) -> list[float]:
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, list):
        return [float(v) for v in value]
    return [float(v) for v in _t(value).reshape(-1).tolist()]


def _axes(attrs: Attrs, inputs: Sequence[Value], index: int) -> list[int] | None:
    """``axes`` from the attribute (older opsets) or from input ``index`` (newer ones)."""
    if "axes" in attrs:
        return [int(a) for a in attrs["axes"]]
    if len(inputs) > index and inputs[index] is not None:
        return _ints(inputs[index])
    return None


def _is_shape(*values: Value) -> bool:
    return any(isinstance(v, list) for v in values) and all(isinstance(v, (list, int)) or (isinstance(v, torch.Tensor) and v.dim() <= 1 and not v.is_floating_point()) for v in values)


# ---- element-wise -----------------------------------------------------------------------------

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "Add": lambda a, b: a + b, "Sub": lambda a, b: a - b, "Mul": lambda a, b: a * b,
    "Div": lambda a, b: a // b if isinstance(a, int) else a / b, "Pow": lambda a, b: a**b,
    "Max": torch.maximum, "Min": torch.minimum,
}
_UNARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "Relu": F.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Sqrt": torch.sqrt, "Exp": torch.exp,
    "Reciprocal": torch.reciprocal, "Neg": torch.neg, "Abs": torch.abs, "Floor": torch.floor, "Ceil": torch.ceil,
    "Erf": torch.erf, "Log": torch.log, "Softplus": F.softplus,
    "Identity": lambda x: x, "Dropout": lambda x: x,
}


def _binary(op: str) -> Callable[[list[Value], Attrs, Context], Value]:
    fn = _BINARY[op]

    def run(inputs: list[Value], _attrs: Attrs, _ctx: Context) -> Value:
        a, b = inputs[0], inputs[1]
        if _is_shape(a, b):  # shape arithmetic stays in Python
            left, right = _ints(a), _ints(b)
            width = max(len(left), len(right))
            left, right = left * (width if len(left) == 1 else 1), right * (width if len(right) == 1 else 1)
            return [int(fn(x, y)) for x, y in zip(left, right, strict=True)]
        if isinstance(b, (int, float)) and isinstance(a, torch.Tensor):
            if op == "Pow" and float(b) == 2.0:
                return a * a
            return fn(a, float(b)) if op not in ("Max", "Min") else fn(a, torch.tensor(float(b), dtype=a.dtype, device=a.device))
        if isinstance(a, (int, float)) and isinstance(b, torch.Tensor) and op in ("Add", "Mul"):
            return fn(b, float(a))
        ta, tb = _t(a), _t(b)
        if ta.is_floating_point() and tb.is_floating_point() and ta.dtype != tb.dtype:
            tb = tb.to(ta.dtype)  # constants are FP32; the activations may run in FP16/BF16
        return fn(ta, tb)

    return run


def _unary(op: str) -> Callable[[list[Value], Attrs, Context], Value]:
    fn = _UNARY[op]
    return lambda inputs, _attrs, _ctx: fn(_t(inputs[0]))


def _leaky_relu(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    return F.leaky_relu(_t(inputs[0]), float(attrs.get("alpha", 0.01)))


def _prelu(inputs: list[Value], _attrs: Attrs, _ctx: Context) -> Value:
    x, slope = _t(inputs[0]), _t(inputs[1]).to(_t(inputs[0]).dtype)
    if slope.dim() == 1 and x.dim() > 2 and slope.numel() == x.shape[1] and slope.numel() != x.shape[-1]:
        slope = slope.reshape(1, -1, *([1] * (x.dim() - 2)))  # per-channel slopes stored flat (exporters' habit)
    return torch.where(x >= 0, x, x * slope)


def _clip(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    low = _floats(inputs[1])[0] if len(inputs) > 1 and inputs[1] is not None else attrs.get("min")
    high = _floats(inputs[2])[0] if len(inputs) > 2 and inputs[2] is not None else attrs.get("max")
    return torch.clamp(x, low, high)


def _softmax(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    return torch.softmax(_t(inputs[0]), int(attrs.get("axis", -1)))


# ---- convolution, normalisation, pooling --------------------------------------------------------

def _spatial_pads(attrs: Attrs, dims: int) -> list[int]:
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        raise ModelError(f"auto_pad={attrs['auto_pad']!r} is not supported", "re-export the model with explicit pads")
    pads = [int(p) for p in attrs.get("pads", [0] * 2 * dims)]
    return pads


def _torch_pads(onnx_pads: list[int], dims: int) -> list[int]:
    """ONNX (begin..., end...) over the spatial axes → torch's (last axis first) pairs."""
    out: list[int] = []
    for axis in reversed(range(dims)):
        out += [onnx_pads[axis], onnx_pads[axis + dims]]
    return out


def _conv(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x, weight = _t(inputs[0]), _t(inputs[1]).to(_t(inputs[0]).dtype)
    bias = _t(inputs[2]).to(x.dtype) if len(inputs) > 2 and inputs[2] is not None else None
    dims = weight.dim() - 2
    pads = _spatial_pads(attrs, dims)
    strides = [int(s) for s in attrs.get("strides", [1] * dims)]
    dilations = [int(d) for d in attrs.get("dilations", [1] * dims)]
    group = int(attrs.get("group", 1))
    if pads[:dims] == pads[dims:]:
        padding: list[int] = pads[:dims]
    else:
        x, padding = F.pad(x, _torch_pads(pads, dims)), [0] * dims
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims]
    return conv(x, weight, bias, stride=strides, padding=padding, dilation=dilations, groups=group)


def _conv_transpose(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x, weight = _t(inputs[0]), _t(inputs[1]).to(_t(inputs[0]).dtype)
    bias = _t(inputs[2]).to(x.dtype) if len(inputs) > 2 and inputs[2] is not None else None
    dims = weight.dim() - 2
    strides = [int(s) for s in attrs.get("strides", [1] * dims)]
    dilations = [int(d) for d in attrs.get("dilations", [1] * dims)]
    output_padding = [int(p) for p in attrs.get("output_padding", [0] * dims)]
    pads = _transpose_pads(attrs, list(x.shape[2:]), list(weight.shape[2:]), strides, dilations, output_padding)
    group = int(attrs.get("group", 1))
    fn = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}[dims]
    y = fn(x, weight, bias, stride=strides, padding=0, output_padding=output_padding, groups=group, dilation=dilations)
    # ONNX pads crop the full output: (begin, end) per spatial axis
    index = [slice(None), slice(None)] + [slice(pads[i], y.shape[2 + i] - pads[i + dims]) for i in range(dims)]
    return y[tuple(index)]


def _transpose_pads(attrs: Attrs, sizes: list[int], kernel: list[int], strides: list[int], dilations: list[int], output_padding: list[int]) -> list[int]:
    """ConvTranspose's ONNX pads: given, or made from ``output_shape`` (how tf2onnx writes
    conv2d_transpose) or ``auto_pad`` SAME_*, by the specification's rule: the full output
    cropped by total = stride·(in−1) + output_padding + (k−1)·dilation + 1 − out, SAME_UPPER
    putting the odd pixel at the end, NOTSET and SAME_LOWER at the start."""
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    dims = len(sizes)
    if "output_shape" not in attrs and auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        return _spatial_pads(attrs, dims)
    wanted = [int(v) for v in attrs["output_shape"]][-dims:] if "output_shape" in attrs else [n * s for n, s in zip(sizes, strides, strict=True)]
    begin, end = [], []
    for i in range(dims):
        total = strides[i] * (sizes[i] - 1) + output_padding[i] + (kernel[i] - 1) * dilations[i] + 1 - wanted[i]
        if total < 0:
            raise ModelError(f"ConvTranspose output_shape {wanted} is larger than its input gives", "re-export the model with pads instead")
        small, large = total // 2, total - total // 2
        begin.append(small if auto_pad == "SAME_UPPER" else large)
        end.append(large if auto_pad == "SAME_UPPER" else small)
    return begin + end


def _batch_norm(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    scale, bias, mean, var = (_t(v).to(x.dtype) for v in inputs[1:5])
    return F.batch_norm(x, mean, var, scale, bias, training=False, eps=float(attrs.get("epsilon", 1e-5)))


def _instance_norm(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    return F.instance_norm(x, weight=_t(inputs[1]).to(x.dtype), bias=_t(inputs[2]).to(x.dtype), eps=float(attrs.get("epsilon", 1e-5)))


def _pool_window(attrs: Attrs) -> tuple[list[int], list[int], list[int], bool]:
    """A pooling node's kernel, strides and ONNX pads, and whether the pads are symmetric."""
    kernel = [int(k) for k in attrs["kernel_shape"]]
    dims = len(kernel)
    pads = _spatial_pads(attrs, dims)
    return kernel, [int(s) for s in attrs.get("strides", [1] * dims)], pads, pads[:dims] == pads[dims:]


def _max_pool(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    kernel, strides, pads, symmetric = _pool_window(attrs)
    dims = len(kernel)
    padding = pads[:dims]
    if not symmetric:
        x, padding = F.pad(x, _torch_pads(pads, dims), value=float("-inf")), [0] * dims
    fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[dims]
    return fn(x, kernel, strides, padding, ceil_mode=bool(attrs.get("ceil_mode", 0)))


def _average_pool(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    kernel, strides, pads, symmetric = _pool_window(attrs)
    dims = len(kernel)
    if not symmetric:
        raise ModelError("AveragePool with asymmetric pads is not supported", "re-export the model")
    fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[dims]
    return fn(x, kernel, strides, pads[:dims], ceil_mode=bool(attrs.get("ceil_mode", 0)), count_include_pad=bool(attrs.get("count_include_pad", 0)))


def _global_average_pool(inputs: list[Value], _attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    return x.mean(dim=tuple(range(2, x.dim())), keepdim=True)


def _reduce(fn: Callable[..., torch.Tensor]) -> Callable[[list[Value], Attrs, Context], Value]:
    def run(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
        x = _t(inputs[0])
        axes = _axes(attrs, inputs, 1)
        keep = bool(attrs.get("keepdims", 1))
        if axes is None:
            if attrs.get("noop_with_empty_axes", 0):
                return x
            axes = list(range(x.dim()))
        return fn(x, dim=tuple(axes), keepdim=keep)

    return run


def _gemm(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    a, b = _t(inputs[0]), _t(inputs[1]).to(_t(inputs[0]).dtype)
    if attrs.get("transA", 0):
        a = a.t()
    if attrs.get("transB", 0):
        b = b.t()
    y = float(attrs.get("alpha", 1.0)) * (a @ b)
    if len(inputs) > 2 and inputs[2] is not None:
        y = y + float(attrs.get("beta", 1.0)) * _t(inputs[2]).to(y.dtype)
    return y


def _matmul(inputs: list[Value], _attrs: Attrs, _ctx: Context) -> Value:
    a = _t(inputs[0])
    return a @ _t(inputs[1]).to(a.dtype)


# ---- shape and layout ---------------------------------------------------------------------------

def _pad(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    pads = _ints(inputs[1]) if len(inputs) > 1 and inputs[1] is not None else [int(p) for p in attrs["pads"]]
    if len(inputs) > 3 and inputs[3] is not None:
        raise ModelError("Pad with an axes input is not supported", "re-export the model at opset 17 or lower")
    value = _floats(inputs[2])[0] if len(inputs) > 2 and inputs[2] is not None else float(attrs.get("value", 0.0))
    mode = attrs.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    dims = x.dim()
    if any(p < 0 for p in pads):
        raise ModelError("Pad with negative pads is not supported", "re-export the model")
    torch_pads = _torch_pads(pads, dims)
    while len(torch_pads) > 2 and torch_pads[-2:] == [0, 0]:
        torch_pads = torch_pads[:-2]  # torch pads only the trailing axes it is given
    if mode == "constant":
        return F.pad(x, torch_pads, value=value)
    if mode in ("reflect", "edge"):
        return F.pad(x, torch_pads, mode="reflect" if mode == "reflect" else "replicate")
    raise ModelError(f"Pad mode {mode!r} is not supported", "use constant, reflect or edge padding")


def _resize(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    mode = attrs.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    transform = attrs.get("coordinate_transformation_mode", b"half_pixel")
    transform = transform.decode() if isinstance(transform, bytes) else str(transform)
    nearest_mode = attrs.get("nearest_mode", b"round_prefer_floor")
    nearest_mode = nearest_mode.decode() if isinstance(nearest_mode, bytes) else str(nearest_mode)
    # Upsample (opset 7-9) and Resize-10 take (X, scales); Resize-11+ (X, roi, scales, sizes)
    scales_input = inputs[1] if len(inputs) == 2 else (inputs[2] if len(inputs) > 2 else None)
    sizes_input = inputs[3] if len(inputs) > 3 else None
    sizes = list(attrs["sizes"]) if "sizes" in attrs else (_ints(sizes_input) if sizes_input is not None else [])
    if sizes:
        kwargs: dict[str, Any] = {"size": [int(s) for s in sizes[2:]]}
    else:
        scales = [float(s) for s in attrs["scales"]] if "scales" in attrs else _floats(scales_input)
        if scales[:2] != [1.0, 1.0]:
            raise ModelError("Resize over the batch or channel axes is not supported", "re-export the model")
        kwargs = {"scale_factor": scales[2:]}
    spatial = x.dim() - 2
    if mode == "linear":
        if transform not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            raise ModelError(f"Resize linear with {transform} coordinates is not supported", "use half_pixel or align_corners")
        torch_mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[spatial]
        return F.interpolate(x, mode=torch_mode, align_corners=transform == "align_corners", **kwargs)
    if mode == "nearest":
        if transform == "asymmetric" and nearest_mode == "floor":
            return F.interpolate(x, mode="nearest", **kwargs)
        if transform in ("half_pixel", "pytorch_half_pixel") and nearest_mode in ("round_prefer_ceil", "round_prefer_floor"):
            return F.interpolate(x, mode="nearest-exact", **kwargs)
        if transform == "asymmetric" and all(float(s).is_integer() for s in kwargs.get("scale_factor", [1.5])):
            return F.interpolate(x, mode="nearest", **kwargs)  # integer upscales: every rounding agrees
        raise ModelError(f"Resize nearest with {transform}/{nearest_mode} is not supported", "use asymmetric/floor or half_pixel")
    raise ModelError(f"Resize mode {mode!r} is not supported", "use nearest or linear")


def _reshape(inputs: list[Value], attrs: Attrs, ctx: Context) -> Value:
    x = _t(inputs[0])
    shape = _ints(inputs[1])
    if ctx.declared_batch == 1 and ctx.batch != 1 and shape and shape[0] == 1 and x.dim() > 0 and x.shape[0] == ctx.batch:
        shape[0] = ctx.batch  # a graph declared for one face, run on several: its constant shapes name batch 1
    if not attrs.get("allowzero", 0):
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return x.reshape(shape)


def _flatten(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    axis = int(attrs.get("axis", 1)) % max(x.dim(), 1)
    return x.reshape(math.prod(x.shape[:axis]), -1)


def _transpose(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    perm = [int(p) for p in attrs.get("perm", list(reversed(range(x.dim()))))]
    return x.permute(*perm)


def _unsqueeze(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    axes = _axes(attrs, inputs, 1) or []
    value = inputs[0]
    if isinstance(value, (list, int)) or (isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point() and axes == [0]):
        return _ints(value)
    x = _t(value)
    rank = x.dim() + len(axes)
    for axis in sorted(a % rank for a in axes):
        x = x.unsqueeze(axis)
    return x


def _squeeze(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    axes = _axes(attrs, inputs, 1)
    if axes is None:
        return x.squeeze()
    for axis in sorted((a % x.dim() for a in axes), reverse=True):
        x = x.squeeze(axis)
    return x


def _slice(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    if "starts" in attrs:  # opset 1-9
        starts, ends = [int(v) for v in attrs["starts"]], [int(v) for v in attrs["ends"]]
        axes = [int(v) for v in attrs.get("axes", range(len(starts)))]
        steps = [1] * len(starts)
    else:
        starts, ends = _ints(inputs[1]), _ints(inputs[2])
        axes = _ints(inputs[3]) if len(inputs) > 3 and inputs[3] is not None else list(range(len(starts)))
        steps = _ints(inputs[4]) if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    value = inputs[0]
    if isinstance(value, list):
        return value[slice(starts[0], ends[0] if ends[0] < 2**62 else None, steps[0])]
    x = _t(value)
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis %= x.dim()
        lead = (slice(None),) * axis
        if step > 0:
            x = x[lead + (slice(start, end, step),)]  # Python's clamping is ONNX's for forward steps
            continue
        size = x.shape[axis]  # torch has no negative steps: flip, then slice forward
        first = min(max(start + size if start < 0 else start, 0), size - 1)
        last = min(max(end + size if end < 0 else end, -1), size - 1)
        x = x.flip(axis)[lead + (slice(size - 1 - first, size - 1 - last, -step),)]
    return x


def _concat(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    present = [v for v in inputs if v is not None]
    if _is_shape(*present) or all(isinstance(v, list) for v in present):
        return [i for v in present for i in _ints(v)]
    tensors = [_t(v) for v in present]
    dtype = next((t.dtype for t in tensors if t.is_floating_point()), tensors[0].dtype)
    return torch.cat([t.to(dtype) for t in tensors if t.numel() or t.dim() > 1], int(attrs["axis"]))


def _split(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    axis = int(attrs.get("axis", 0))
    sizes = _ints(inputs[1]) if len(inputs) > 1 and inputs[1] is not None else [int(s) for s in attrs.get("split", [])]
    if not sizes:
        count = int(attrs["num_outputs"])
        sizes = [-(-x.shape[axis] // count)] * count
        sizes[-1] = x.shape[axis] - sum(sizes[:-1])
    return tuple(torch.split(x, sizes, dim=axis))


def _shape(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    shape = [int(s) for s in _t(inputs[0]).shape]
    return shape[int(attrs.get("start", 0)) : attrs.get("end")]


def _gather(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    data, index = inputs[0], inputs[1]
    axis = int(attrs.get("axis", 0))
    if isinstance(data, list):
        picked = _ints(index)
        scalar = isinstance(index, int) or (isinstance(index, torch.Tensor) and index.dim() == 0)
        values = [data[i] for i in picked]
        return torch.tensor(values[0]) if scalar else values
    x = _t(data)
    if isinstance(index, int):
        return x.select(axis, index)
    idx = _t(index).to(torch.int64)
    idx = torch.where(idx < 0, idx + x.shape[axis], idx)
    return torch.index_select(x, axis, idx.reshape(-1)).reshape(*x.shape[:axis], *idx.shape, *x.shape[axis + 1 :])


def _cast(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    value = inputs[0]
    if isinstance(value, (list, int, float)):
        return value
    x = _t(value)
    to = _ONNX_DTYPES.get(int(attrs["to"]))
    if to is None:
        raise ModelError(f"Cast to ONNX type {attrs['to']} is not supported", "re-export the model")
    if x.is_floating_point() and to.is_floating_point:
        return x  # float precision is the backend's choice, not the file's (FP16 files carry such casts)
    return x.to(to)


def _constant_of_shape(inputs: list[Value], attrs: Attrs, ctx: Context) -> Value:
    fill = attrs.get("value")
    fill_tensor = torch.as_tensor(fill).reshape(-1) if fill is not None else torch.zeros(1)
    shape = _ints(inputs[0])
    size = math.prod(shape) * fill_tensor.element_size()
    if any(d < 0 for d in shape) or size > MAX_TENSOR_BYTES:
        raise ModelError(f"ConstantOfShape {shape} would take {size >> 20} MiB (the limit is {MAX_TENSOR_BYTES >> 20} MiB)", "check the file; it is damaged or not a real model")
    return torch.full(shape, fill_tensor[0].item(), dtype=fill_tensor.dtype, device=ctx.device)


def _expand(inputs: list[Value], _attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    shape = _ints(inputs[1])
    rank = max(len(shape), x.dim())
    full = [1] * (rank - len(shape)) + shape
    current = [1] * (rank - x.dim()) + list(x.shape)
    return x.reshape(current).expand([max(a, b) for a, b in zip(full, current, strict=True)])


def _depth_to_space(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    block = int(attrs["blocksize"])
    mode = attrs.get("mode", b"DCR")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    n, c, h, w = x.shape
    if mode == "CRD":
        return F.pixel_shuffle(x, block)
    y = x.reshape(n, block, block, c // (block * block), h, w).permute(0, 3, 4, 1, 5, 2)
    return y.reshape(n, c // (block * block), h * block, w * block)


def _space_to_depth(inputs: list[Value], attrs: Attrs, _ctx: Context) -> Value:
    x = _t(inputs[0])
    block = int(attrs["blocksize"])
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // block, block, w // block, block).permute(0, 3, 5, 1, 2, 4)
    return y.reshape(n, c * block * block, h // block, w // block)


def _where(inputs: list[Value], _attrs: Attrs, _ctx: Context) -> Value:
    return torch.where(_t(inputs[0]).bool(), _t(inputs[1]), _t(inputs[2]))


_ONNX_DTYPES = {1: torch.float32, 2: torch.uint8, 3: torch.int8, 5: torch.int16, 6: torch.int32, 7: torch.int64, 9: torch.bool, 10: torch.float16, 11: torch.float64, 16: torch.bfloat16}

OpFunction = Callable[[list[Value], Attrs, Context], Value]
OPS: dict[str, OpFunction] = {
    **{op: _binary(op) for op in _BINARY},
    **{op: _unary(op) for op in _UNARY},
    "LeakyRelu": _leaky_relu, "PRelu": _prelu, "Clip": _clip, "Softmax": _softmax,
    "Conv": _conv, "ConvTranspose": _conv_transpose, "BatchNormalization": _batch_norm,
    "InstanceNormalization": _instance_norm, "MaxPool": _max_pool, "AveragePool": _average_pool,
    "GlobalAveragePool": _global_average_pool, "ReduceMean": _reduce(torch.mean), "ReduceSum": _reduce(torch.sum),
    "ReduceMax": _reduce(torch.amax), "ReduceL2": _reduce(lambda x, dim, keepdim: torch.linalg.vector_norm(x, dim=dim, keepdim=keepdim)), "Gemm": _gemm, "MatMul": _matmul,
    "Pad": _pad, "Resize": _resize, "Upsample": _resize, "Reshape": _reshape, "Flatten": _flatten,
    "Transpose": _transpose, "Unsqueeze": _unsqueeze, "Squeeze": _squeeze, "Slice": _slice, "Concat": _concat,
    "Split": _split, "Shape": _shape, "Gather": _gather, "Cast": _cast, "ConstantOfShape": _constant_of_shape,
    "Expand": _expand, "DepthToSpace": _depth_to_space, "SpaceToDepth": _space_to_depth, "Where": _where,
}
