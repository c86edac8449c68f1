"""MediaPipe's FaceMesh network (468 landmarks from a 192² face crop) as a torch module, so the
landmarks can run on the GPU next to the generator, compiled like it.

The user supplies the ONNX file (the project ships no third-party weights); ``load_facemesh``
reads it with the ``onnx`` package and runs its graph with torch operations. Only the seven
operations this network uses are implemented, and any other graph is refused. Input: (B, 192,
192, 3) RGB in [0, 1] (NHWC, as the file expects); output: (B, 1404) = 468 × (x, y, z), x and y in
crop pixels.

``mesh_crop_from_frame`` gives the crop the network expects from the previous frame's landmarks
(MediaPipe's own tracking rule: the landmarks' box, turned so the eyes are level, squared on its
long side and grown 1.5×).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from realtime.errors import ModelError

MESH_SIZE = 192
SUPPORTED = {"Conv", "PRelu", "Add", "MaxPool", "Pad", "Transpose", "Reshape"}
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # as seen in the image: the subject's right eye is on the left


class OnnxGraphModule(nn.Module):
    """Runs a small ONNX graph (the ops in ``SUPPORTED``) node by node with torch."""

    def __init__(self, nodes: list[tuple[str, list[str], list[str], dict[str, object]]], weights: dict[str, np.ndarray], input_name: str, output_name: str) -> None:
        super().__init__()
        self.nodes = nodes
        self.input_name, self.output_name = input_name, output_name
        self.names = {name: f"w{i}" for i, name in enumerate(weights)}
        for name, array in weights.items():
            self.register_buffer(self.names[name], torch.from_numpy(np.array(array)))

    def _value(self, values: dict[str, torch.Tensor], name: str) -> torch.Tensor:
        return values[name] if name in values else getattr(self, self.names[name])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {self.input_name: x}
        for op, inputs, outputs, attrs in self.nodes:
            args = [self._value(values, name) for name in inputs]
            values[outputs[0]] = _run(op, args, attrs)
        return values[self.output_name]


def _run(op: str, args: list[torch.Tensor], attrs: dict[str, object]) -> torch.Tensor:
    if op == "Conv":
        top, left, bottom, right = (int(v) for v in cast("list[int]", attrs.get("pads", [0, 0, 0, 0])))
        x = F.pad(args[0], (left, right, top, bottom)) if (top, left, bottom, right) != (0, 0, 0, 0) else args[0]
        bias = args[2] if len(args) > 2 else None
        stride = tuple(cast("list[int]", attrs.get("strides", [1, 1])))
        return F.conv2d(x, args[1].to(x.dtype), None if bias is None else bias.to(x.dtype), stride=stride, groups=int(cast(int, attrs.get("group", 1))))
    if op == "PRelu":
        slope = args[1].to(args[0].dtype).reshape(1, -1, 1, 1)
        return torch.where(args[0] >= 0, args[0], args[0] * slope)
    if op == "Add":
        return args[0] + args[1]
    if op == "MaxPool":
        return F.max_pool2d(args[0], cast("list[int]", attrs["kernel_shape"]), cast("list[int] | None", attrs.get("strides")))
    if op == "Pad":
        pads = list(attrs["pads"])  # type: ignore[call-overload]
        half = len(pads) // 2
        torch_pads: list[int] = []
        for axis in reversed(range(half)):  # torch pads the last axis first
            torch_pads += [pads[axis], pads[axis + half]]
        return F.pad(args[0], torch_pads)
    if op == "Transpose":
        return args[0].permute(*attrs["perm"])  # type: ignore[misc]
    if op == "Reshape":
        return args[0].reshape([int(v) for v in args[1].tolist()])
    raise ModelError(f"ONNX operation {op} is not supported", "use MediaPipe's facemesh_468_192.onnx")


def load_facemesh(path: Path) -> OnnxGraphModule:
    """The FaceMesh network from its ONNX file (eval mode, FP32, CPU); ModelError when the file is
    missing, unreadable or another network."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise ModelError("reading the FaceMesh ONNX file needs the onnx package", "pip install onnx") from None
    if not path.is_file():
        raise ModelError(f"FaceMesh model {path} does not exist", "pass the path of facemesh_468_192.onnx")
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # noqa: BLE001 - onnx raises several kinds for bad files
        raise ModelError(f"{path} is not an ONNX model ({str(exc).splitlines()[0][:80]})", "pass facemesh_468_192.onnx") from None
    unknown = sorted({n.op_type for n in graph.node} - SUPPORTED)
    shape = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] if graph.input else []
    if unknown or shape[1:] != [MESH_SIZE, MESH_SIZE, 3]:
        raise ModelError(f"{path} is not the FaceMesh network this code runs (operations {unknown or 'ok'}, input {shape})", "pass MediaPipe's facemesh_468_192.onnx")
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes = [(n.op_type, list(n.input), list(n.output), {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}) for n in graph.node]
    return OnnxGraphModule(nodes, weights, graph.input[0].name, graph.output[0].name).eval()


def mesh_crop_from_frame(landmarks: np.ndarray, size: int = MESH_SIZE, scale: float = 1.5) -> np.ndarray:
    """The 2×3 ``crop_from_frame`` of the network's input crop, from a face's landmarks (N ≥ 468,
    frame pixels): centred on their box, rotated so the outer eye corners are level, the long side
    of the box times ``scale`` across."""
    left, top = landmarks.min(axis=0)
    right, bottom = landmarks.max(axis=0)
    centre = np.array([(left + right) / 2, (top + bottom) / 2])
    eye_line = landmarks[LEFT_EYE_OUTER] - landmarks[RIGHT_EYE_OUTER]
    angle = float(np.arctan2(eye_line[1], eye_line[0]))
    side = scale * max(right - left, bottom - top)
    zoom = size / side
    cos, sin = np.cos(-angle) * zoom, np.sin(-angle) * zoom
    rotate = np.array([[cos, -sin], [sin, cos]])
    return np.hstack([rotate, (np.array([size / 2, size / 2]) - rotate @ centre)[:, None]])
