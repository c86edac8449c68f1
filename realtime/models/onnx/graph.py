"""An ONNX file as a torch module: read with the ``onnx`` package (never optimised first, so an
unused initializer such as inswapper's emap is still there to read), constants folded at load
(every node whose inputs are all known is run once, on the CPU), the rest run node by node with
the torch functions of ``ops``. The module takes float inputs of any batch, compiles and exports
like any torch module, and runs in whatever precision its caller casts it to: float16 weights are
read as float32 and float casts inside the graph are dropped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from realtime.errors import ModelError
from realtime.models.onnx.ops import OPS, Context, Value
from realtime.models.weights import sha256_file

MAX_ONNX_BYTES = 2 << 30  # protobuf's own limit; larger models keep their weights in external files


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | None, ...]  # None: a dimension the file leaves open (a named or unknown one)
    dtype: str


@dataclass(frozen=True)
class OnnxInfo:
    """What a file declares and what it runs: for profile detection, logs and ``doctor``."""

    path: Path
    sha256: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    opset: int
    ops: dict[str, int]  # op type → count, after folding: what runs per call
    unused_initializers: tuple[str, ...]
    last_initializer: str | None
    producer: str = ""
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)  # the unused initializers' values


@dataclass(frozen=True)
class Node:
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]


class OnnxModule(nn.Module):
    """Runs the folded graph. ``forward(*inputs)`` takes the graph's inputs in file order and
    returns its outputs in file order (one tensor when there is one)."""

    def __init__(self, nodes: list[Node], constants: dict[str, torch.Tensor], input_names: list[str], output_names: list[str], declared_batch: int | None) -> None:
        super().__init__()
        self.nodes = nodes
        self.input_names, self.output_names = input_names, output_names
        self.declared_batch = declared_batch
        # Scalars and short integer lists (pads, axes, shapes) stay Python values: exporting and
        # compiling then see numbers, never a tensor read back from the device.
        self.python_constants: dict[str, Value] = {}
        tensors: dict[str, torch.Tensor] = {}
        for name, value in constants.items():
            if value.dim() == 0 and value.dtype != torch.bool:
                self.python_constants[name] = float(value.item()) if value.is_floating_point() else int(value.item())
            elif not value.is_floating_point() and value.dim() == 1 and value.numel() <= 64 and value.dtype != torch.bool:
                self.python_constants[name] = [int(v) for v in value.tolist()]
            else:
                tensors[name] = value
        self.constant_names = {name: f"c{i}" for i, name in enumerate(tensors)}
        for name, value in tensors.items():
            self.register_buffer(self.constant_names[name], value, persistent=False)

    def _constant(self, name: str) -> Value:
        if name in self.python_constants:
            return self.python_constants[name]
        return getattr(self, self.constant_names[name])  # type: ignore[no-any-return]

    def forward(self, *inputs: torch.Tensor) -> Any:
        values: dict[str, Value] = dict(zip(self.input_names, inputs, strict=True))
        ctx = Context(batch=int(inputs[0].shape[0]) if inputs and inputs[0].dim() else 1, declared_batch=self.declared_batch)
        for node in self.nodes:
            args = [None if not name else values[name] if name in values else self._constant(name) for name in node.inputs]
            result = run_node(node, args, ctx)
            if isinstance(result, tuple):
                values.update(zip(node.outputs, result, strict=False))
            else:
                values[node.outputs[0]] = result
        outputs = tuple(values[name] if name in values else self._constant(name) for name in self.output_names)
        return outputs[0] if len(outputs) == 1 else outputs


def run_node(node: Node, args: list[Value], ctx: Context) -> Value:
    return OPS[node.op](args, node.attrs, ctx)


def read_model(path: Path, what: str = "model") -> Any:
    """The file's ModelProto; ModelError with a fix when it is missing, not ONNX or cut short."""
    try:
        import onnx
    except ImportError:
        raise ModelError(f"reading ONNX {what}s needs the onnx package", "pip install onnx (or pip install -e '.[onnx]')") from None
    if not path.is_file():
        raise ModelError(f"{what} {path} does not exist", "check the path")
    size = path.stat().st_size
    if size > MAX_ONNX_BYTES:
        raise ModelError(f"{path} is {size >> 20} MiB, more than one ONNX file can hold", "use the model's single-file export")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several kinds for bad or truncated files
        raise ModelError(f"{path} is not a readable ONNX file ({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})", "check that the download or copy is complete") from None
    if not model.graph.node or not model.graph.input:
        raise ModelError(f"{path} holds no ONNX graph (empty or cut short)", "check that the download or copy is complete")
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise ModelError(f"{path} keeps its weights in external files", "use the model's single-file export")
    return model


def _tensor_info(value: Any) -> TensorInfo:
    import onnx

    tensor_type = value.type.tensor_type
    shape = tuple((d.dim_value if d.HasField("dim_value") else None) for d in tensor_type.shape.dim)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name if tensor_type.elem_type else "unknown"
    return TensorInfo(value.name, shape, dtype)


def _array(tensor: Any) -> np.ndarray:
    from onnx import numpy_helper

    array = numpy_helper.to_array(tensor)
    return array.astype(np.float32) if array.dtype in (np.float16, np.float64) else array


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    attrs: dict[str, Any] = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        if isinstance(value, onnx.TensorProto):
            value = _array(value)
        attrs[attribute.name] = value
    return attrs


def _flat(value: Value) -> list[float]:
    if isinstance(value, torch.Tensor):
        return [float(v) for v in value.reshape(-1).tolist()]
    if isinstance(value, list):
        return [float(v) for v in value]
    return [] if value is None or isinstance(value, tuple) else [float(value)]


def _declared(model: Any, path: Path, ops: dict[str, int]) -> OnnxInfo:
    """What a file declares: inputs, outputs, op set, unused initializers (with their values)."""
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    used = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    unused = tuple(name for name in initializers if name not in used)
    return OnnxInfo(
        path=path,
        sha256=sha256_file(path),
        inputs=tuple(_tensor_info(v) for v in graph.input if v.name not in initializers),
        outputs=tuple(_tensor_info(v) for v in graph.output),
        opset=max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0),
        ops=ops,
        unused_initializers=unused,
        last_initializer=graph.initializer[-1].name if graph.initializer else None,
        producer=model.producer_name,
        arrays={name: _array(initializers[name]) for name in unused},
    )


def inspect_onnx(path: Path, what: str = "model") -> OnnxInfo:
    """What ``path`` declares, without building or folding its graph (``ops``: as stored)."""
    model = read_model(path, what)
    return _declared(model, path, dict(Counter(n.op_type for n in model.graph.node)))


def load_onnx(path: Path, what: str = "model") -> tuple[OnnxModule, OnnxInfo]:
    """The graph of ``path`` as an FP32 CPU module in eval mode, and what the file declares
    (``ops``: what runs after folding). ModelError names every op the file uses that is not implemented."""
    model = read_model(path, what)
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    inputs = [_tensor_info(v) for v in graph.input if v.name not in initializers]
    outputs = [_tensor_info(v) for v in graph.output]
    unknown = sorted({n.op_type for n in graph.node if n.op_type not in OPS and n.op_type != "Constant"} | {n.domain for n in graph.node if n.domain not in ("", "ai.onnx")})
    if unknown:
        raise ModelError(f"{path} uses ONNX ops {', '.join(unknown)}, which realtime does not run", "use a model built from standard ONNX ops, or report the model")
    used = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    constants: dict[str, torch.Tensor] = {name: torch.from_numpy(np.array(_array(t))) for name, t in initializers.items() if name in used}
    nodes: list[Node] = []
    known: dict[str, Value] = dict(constants)
    for proto in graph.node:
        attrs = _attrs(proto)
        if proto.op_type == "Constant":
            value = attrs.get("value")
            if value is None:
                value = np.array(next(v for k, v in attrs.items() if k.startswith("value_")))
            known[proto.output[0]] = torch.from_numpy(np.array(value))
            continue
        inputs_of = list(proto.input)
        if proto.op_type == "Split" and "num_outputs" not in attrs:
            attrs["num_outputs"] = len(proto.output)  # equal parts, as many as the node has outputs
        if proto.op_type in ("Resize", "Upsample"):
            # constant scales and sizes become attributes: Python numbers, never a tensor to read back
            scale_at = 1 if proto.op_type == "Upsample" or len(inputs_of) == 2 else 2
            for index, key in ((scale_at, "scales"), (3, "sizes")):
                if index < len(inputs_of) and inputs_of[index] in known and not (key == "scales" and index == 1 and proto.op_type == "Resize" and len(inputs_of) > 2):
                    value = _flat(known[inputs_of[index]])
                    if value:
                        attrs[key] = value
                    inputs_of[index] = ""
        node = Node(proto.op_type, tuple(inputs_of), tuple(proto.output), attrs)
        if all((not name) or name in known for name in node.inputs):
            try:
                with torch.no_grad():
                    result = run_node(node, [known[n] if n else None for n in node.inputs], Context(1, None))
            except ModelError:
                raise
            except Exception as exc:  # noqa: BLE001 - a malformed constant subgraph
                raise ModelError(f"{path}: node {proto.name or proto.op_type} cannot be evaluated ({exc})", "check the file; re-export the model") from None
            if isinstance(result, tuple):
                known.update(zip(node.outputs, result, strict=False))
            else:
                known[node.outputs[0]] = result
            continue
        nodes.append(node)
    needed = {name for n in nodes for name in n.inputs} | {o.name for o in outputs}
    folded = {name: (value if isinstance(value, torch.Tensor) else torch.tensor(value, dtype=torch.int64)) for name, value in known.items() if name in needed and value is not None}
    declared = inputs[0].shape[0] if inputs and inputs[0].shape else None
    module = OnnxModule(nodes, folded, [i.name for i in inputs], [o.name for o in outputs], declared).eval()
    info = _declared(model, path, dict(Counter(n.op for n in nodes)))
    return module, info
