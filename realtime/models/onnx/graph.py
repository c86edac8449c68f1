"""An ONNX file as a torch module: read with the ``onnx`` package (never optimised first, so an
unused initializer such as inswapper's emap is still there to read), constants folded at load
(every node whose inputs are all known is run once, on the CPU), the rest run node by node with
the torch functions of ``ops``. The module takes float inputs of any batch, compiles and exports
like any torch module, and runs in whatever precision its caller casts it to: float16 weights are
read as float32 and float casts inside the graph are dropped."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from realtime.errors import ModelError
from realtime.models.formats import sniff_model_format
from realtime.models.onnx.ops import MAX_TENSOR_BYTES, OPS, Context, Value
from realtime.models.weights import sha256_file

MAX_ONNX_BYTES = 2 << 30  # protobuf's own limit; larger models keep their weights in external files
# All of a graph's constants together (initializers read as float32, Constant nodes, folded
# results) may take this many times the file's size: float16 weights read as float32 take twice
# theirs, and a folded weight (a transpose, a scale) is one more copy. The floor lets a small
# graph fold a mask or a grid larger than itself.
MAX_CONSTANTS_PER_FILE_BYTE = 4
MIN_CONSTANTS_BYTES = 64 << 20


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
    """The file's ModelProto; ModelError with a fix when it is missing, not ONNX, cut short, keeps
    any tensor's data in another file, or holds a tensor whose data does not fill its dims."""
    try:
        import onnx
    except ImportError:
        raise ModelError(f"reading ONNX {what}s needs the onnx package", "pip install onnx (or pip install -e '.[onnx]')") from None
    if not path.is_file():
        raise ModelError(f"{what} {path} does not exist", "check the path")
    size = path.stat().st_size
    if size > MAX_ONNX_BYTES:
        raise ModelError(f"{path} is {size >> 20} MiB, more than one ONNX file can hold", "use the model's single-file export")
    found = sniff_model_format(path)  # a few bytes: nothing else is read into memory unless it is ONNX
    if found == "safetensors":
        raise ModelError(f"{what} {path} is a realtime checkpoint (safetensors), not an ONNX model", "pass it to --generator or --identity-encoder, which read checkpoints")
    if found is None:
        raise ModelError(f"{path} is not a readable ONNX file (its bytes are not an ONNX model's fields, or it is cut short)", "check that the download or copy is complete")
    try:
        model = onnx.load(str(path), load_external_data=False)  # reads this one file, nothing beside it
    except Exception as exc:  # noqa: BLE001 - protobuf raises several kinds for bad or truncated files
        raise ModelError(f"{path} is not a readable ONNX file ({str(exc).splitlines()[0][:80] if str(exc) else type(exc).__name__})", "check that the download or copy is complete") from None
    if not model.graph.node or not model.graph.input:
        raise ModelError(f"{path} holds no ONNX graph (empty or cut short)", "check that the download or copy is complete")
    for where, tensor in every_tensor(model):
        _check_tensor(path, where, tensor)
    return model


def every_tensor(model: Any) -> Iterator[tuple[str, Any]]:
    """Every TensorProto ``model`` holds, with where it sits: initializers, sparse initializers'
    values and indices, node attributes (a Constant's value, ConstantOfShape's fill, any tensor or
    sparse tensor attribute) and the same inside every subgraph (If, Loop, Scan: any depth),
    local function and training graph. Iterative, so a deeply nested file cannot exhaust the stack."""
    graphs: list[tuple[str, Any]] = [("", model.graph)]
    graphs += [(f"training graph {i} ", g) for i, info in enumerate(model.training_info) for g in (info.initialization, info.algorithm)]
    node_lists: list[tuple[str, Any]] = [(f"function {f.name}: ", f.node) for f in model.functions]
    while graphs or node_lists:
        if graphs:
            prefix, graph = graphs.pop()
            for tensor in graph.initializer:
                yield f"{prefix}initializer {tensor.name!r}", tensor
            for sparse in graph.sparse_initializer:
                yield f"{prefix}sparse initializer {sparse.values.name!r}", sparse.values
                yield f"{prefix}sparse initializer {sparse.values.name!r} (indices)", sparse.indices
            node_lists.append((prefix, graph.node))
            continue
        prefix, nodes = node_lists.pop()
        for node in nodes:
            here = f"{prefix}node {node.name or node.op_type!r} attribute"
            for attribute in node.attribute:
                tensors = ([attribute.t] if attribute.HasField("t") else []) + list(attribute.tensors)
                for sparse in ([attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []) + list(attribute.sparse_tensors):
                    tensors += [sparse.values, sparse.indices]
                for tensor in tensors:
                    yield f"{here} {attribute.name!r}", tensor
                subgraphs = ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs)
                graphs += [(f"{prefix}subgraph {attribute.name!r} of node {node.name or node.op_type!r}: ", g) for g in subgraphs]


_PACKED_BITS = {"INT4": 4, "UINT4": 4, "FLOAT4E2M1": 4, "INT2": 2, "UINT2": 2}
_UNREADABLE_TYPES = {"UNDEFINED", "FLOAT6E2M3", "FLOAT6E3M2"}


def _check_tensor(path: Path, where: str, tensor: Any) -> None:
    """Refuse a tensor whose data lives in another file (ONNX resolves such a location against
    the current folder: a file could read any file beside the user) or does not fill its dims
    (numpy would fail on it later, without naming the file or the tensor)."""
    import onnx

    if tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data):
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "?")
        raise ModelError(f"{path}: {where} keeps its data in another file ({location[:80]!r}), which realtime never opens", "use a single-file export of the model (weights inside the .onnx file)")
    type_name = onnx.TensorProto.DataType.Name(tensor.data_type) if tensor.data_type in onnx.TensorProto.DataType.values() else str(tensor.data_type)
    if type_name in _UNREADABLE_TYPES or not type_name.isupper():
        raise ModelError(f"{path}: {where} has data type {type_name}, which realtime does not read", "check the file; re-export the model")
    if any(d < 0 for d in tensor.dims):
        raise ModelError(f"{path}: {where} has negative dims {list(tensor.dims)}", "the file is damaged: re-download or re-export it")
    count = 1
    for d in tensor.dims:
        count *= d
    if type_name in _PACKED_BITS:
        raw_bytes = typed = -(-count * _PACKED_BITS[type_name] // 8)
    else:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
        raw_bytes = count * itemsize if type_name != "STRING" else -1
        typed = count * (2 if type_name.startswith("COMPLEX") else 1)
    field_name = onnx.helper.tensor_dtype_to_field(tensor.data_type)
    held_raw, held_typed = len(tensor.raw_data), len(getattr(tensor, field_name))
    if (held_raw == raw_bytes and not held_typed) or (held_typed == typed and not held_raw) or (count == 0 and not held_raw and not held_typed):
        return
    held = f"{held_raw} bytes" if held_raw else f"{held_typed} values"
    raise ModelError(
        f"{path}: {where} declares {type_name} {list(tensor.dims)} but holds {held}",
        "the file is damaged or was edited: re-download or re-export it",
    )


def _tensor_info(value: Any) -> TensorInfo:
    import onnx

    tensor_type = value.type.tensor_type
    shape = tuple((d.dim_value if d.HasField("dim_value") else None) for d in tensor_type.shape.dim)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name if tensor_type.elem_type else "unknown"
    return TensorInfo(value.name, shape, dtype)


def _array(tensor: Any, path: Path, where: str) -> np.ndarray:
    """A checked tensor (``read_model``) as an array (float16 and float64 as float32)."""
    from onnx import numpy_helper

    try:
        array = numpy_helper.to_array(tensor)
    except Exception as exc:  # noqa: BLE001 - numpy and onnx raise several kinds for odd tensors
        raise ModelError(f"{path}: {where} cannot be read ({type(exc).__name__}: {str(exc)[:80]})", "check the file; re-export the model") from None
    return array.astype(np.float32) if array.dtype in (np.float16, np.float64) else array


def _attrs(node: Any, path: Path) -> dict[str, Any]:
    import onnx

    attrs: dict[str, Any] = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        if isinstance(value, onnx.TensorProto):
            value = _array(value, path, f"node {node.name or node.op_type!r} attribute {attribute.name!r}")
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
        arrays={name: _array(initializers[name], path, f"initializer {name!r}") for name in unused},
    )


def inspect_onnx(path: Path, what: str = "model") -> OnnxInfo:
    """What ``path`` declares, without building or folding its graph (``ops``: as stored)."""
    model = read_model(path, what)
    return _declared(model, path, dict(Counter(n.op_type for n in model.graph.node)))


class _ConstantBudget:
    """The bytes a graph's constants may take: no folded or Constant tensor over
    ``MAX_TENSOR_BYTES`` (checked on a meta-tensor dry run, before the node runs), and all of them
    (initializers included, each storage counted once: a no-op Cast, a Reshape or a Transpose is a
    view) within ``limit``, checked as each is made."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path, self.limit, self.used = path, limit, 0
        self.storages: set[int] = set()

    def check_each(self, where: str, sizes: list[int]) -> None:
        largest = max(sizes, default=0)
        if largest > MAX_TENSOR_BYTES:
            raise ModelError(f"{self.path}: {where} makes a {largest >> 20} MiB constant (the limit is {MAX_TENSOR_BYTES >> 20} MiB)", "check the file; it is damaged or not a face model realtime can run")

    def charge(self, where: str, value: Value, *, per_tensor: bool = True) -> None:
        if per_tensor:
            self.check_each(where, _byte_sizes(value))
        for tensor in value if isinstance(value, tuple) else (value,):
            if not isinstance(tensor, torch.Tensor):
                continue
            storage = tensor.untyped_storage()
            if storage.data_ptr() in self.storages:
                continue  # a view of a constant already counted
            self.storages.add(storage.data_ptr())
            self.used += storage.nbytes()
        if self.used > self.limit:
            raise ModelError(
                f"{self.path}: {where} brings the graph's constants to {self.used >> 20} MiB, more than the file's size allows ({self.limit >> 20} MiB)",
                "check the file; it is damaged or not a face model realtime can run",
            )


def _byte_sizes(value: Value) -> list[int]:
    tensors = value if isinstance(value, tuple) else (value,)
    return [t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor)]


def _as_run_sees_it(value: Value) -> Value:
    """A folded value as a sizes-only stand-in for a dry run: what ``OnnxModule`` keeps as Python
    numbers stays a number (ops read their values), every other tensor becomes a meta tensor."""
    if isinstance(value, tuple):
        return tuple(_as_run_sees_it(v) for v in value)  # type: ignore[misc]
    if not isinstance(value, torch.Tensor) or value.dtype == torch.bool:
        return value.to("meta") if isinstance(value, torch.Tensor) else value
    if value.dim() == 0:
        return float(value.item()) if value.is_floating_point() else int(value.item())
    if not value.is_floating_point() and value.dim() == 1 and value.numel() <= 64:
        return [int(v) for v in value.tolist()]
    return torch.empty(value.shape, dtype=value.dtype, device="meta")


def _predicted_sizes(node: Node, args: list[Value]) -> list[int] | None:
    """The bytes each output of ``node`` would take, from a run on meta tensors (nothing is
    allocated); None when an op cannot run on meta tensors (the real result is checked instead)."""
    try:
        with torch.no_grad():
            result = run_node(node, [_as_run_sees_it(a) for a in args], Context(1, None, torch.device("meta")))
    except ModelError:
        raise
    except Exception:  # noqa: BLE001 - an op that needs values: the real run says what is wrong
        return None
    return _byte_sizes(result)


def load_onnx(path: Path, what: str = "model") -> tuple[OnnxModule, OnnxInfo]:
    """The graph of ``path`` as an FP32 CPU module in eval mode, and what the file declares
    (``ops``: what runs after folding). ModelError names every op the file uses that is not
    implemented, and the node whose constant would be too large (``MAX_TENSOR_BYTES`` each, before
    it is made) or would bring all of them over ``MAX_CONSTANTS_PER_FILE_BYTE`` × the file's size."""
    model = read_model(path, what)
    graph = model.graph
    initializers = {t.name: t for t in graph.initializer}
    inputs = [_tensor_info(v) for v in graph.input if v.name not in initializers]
    outputs = [_tensor_info(v) for v in graph.output]
    unknown = sorted({n.op_type for n in graph.node if n.op_type not in OPS and n.op_type != "Constant"} | {n.domain for n in graph.node if n.domain not in ("", "ai.onnx")})
    if unknown:
        raise ModelError(f"{path} uses ONNX ops {', '.join(unknown)}, which realtime does not run", "use a model built from standard ONNX ops, or report the model")
    budget = _ConstantBudget(path, max(MIN_CONSTANTS_BYTES, MAX_CONSTANTS_PER_FILE_BYTE * path.stat().st_size))
    used = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    known: dict[str, Value] = {}
    for name, tensor in initializers.items():
        if name in used:
            known[name] = torch.from_numpy(np.array(_array(tensor, path, f"initializer {name!r}")))
            budget.charge(f"initializer {name!r}", known[name], per_tensor=False)  # the file's own data
    nodes: list[Node] = []
    for proto in graph.node:
        where = f"node {proto.name or proto.op_type!r} ({proto.op_type})"
        attrs = _attrs(proto, path)
        if proto.op_type == "Constant":
            value = attrs.get("value")
            if value is None:
                value = next((np.array(v) for k, v in attrs.items() if k.startswith("value_")), None)
            if value is None:
                raise ModelError(f"{path}: {where} holds no value realtime reads (sparse constants are not supported)", "re-export the model with dense constants")
            known[proto.output[0]] = torch.from_numpy(np.array(value))
            budget.charge(where, known[proto.output[0]])
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
            args = [known[n] if n else None for n in node.inputs]
            try:
                predicted = _predicted_sizes(node, args)
                if predicted is not None:
                    budget.check_each(where, predicted)
                with torch.no_grad():
                    result = run_node(node, args, Context(1, None))
            except ModelError as exc:
                raise ModelError(exc.problem if str(path) in exc.problem else f"{path}: {where}: {exc.problem}", exc.fix) from None
            except Exception as exc:  # noqa: BLE001 - a malformed constant subgraph
                raise ModelError(f"{path}: node {proto.name or proto.op_type} cannot be evaluated ({exc})", "check the file; re-export the model") from None
            budget.charge(where, result)
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
