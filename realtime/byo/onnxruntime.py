"""Users' ONNX swappers run by onnxruntime instead of our converter: the ``onnxruntime`` backend,
for users who have onnxruntime (CPU, or onnxruntime-gpu's CUDA provider) and as a reference for
our converter. The same adapter (crop ranges, colour order, identity, outputs) wraps the session,
so only the engine differs. Not in the default backend order: our compiled engines are faster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from realtime.byo.profiles import Binding
from realtime.byo.swapper import OnnxSwapper
from realtime.errors import ModelError


class OrtNetwork(nn.Module):
    """An onnxruntime session as a module: tensors in, tensors out on the inputs' device. A file
    declared for one face runs a batch face by face."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        try:
            import onnxruntime
        except ImportError:
            raise ModelError("the onnxruntime backend needs onnxruntime", "pip install onnxruntime (or onnxruntime-gpu)") from None
        from realtime.models.onnx.graph import read_model

        read_model(path, "generator")  # onnxruntime would follow external data: the same refusals as ours first
        available = onnxruntime.get_available_providers()
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # inswapper's unused emap is expected
        self.session = onnxruntime.InferenceSession(str(path), options, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        first = self.session.get_inputs()[0].shape
        self.one_at_a_time = bool(first) and first[0] == 1
        self.provider = self.session.get_providers()[0]

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return list(self.session.run(self.output_names, dict(zip(self.input_names, arrays, strict=True))))

    def forward(self, *inputs: torch.Tensor) -> Any:
        arrays = [t.detach().float().cpu().numpy() for t in inputs]
        batch = arrays[0].shape[0]
        if self.one_at_a_time and batch > 1:
            per_face = [self._run([a[i : i + 1] if a.shape[0] == batch else a for a in arrays]) for i in range(batch)]
            outputs = [np.concatenate([face[k] for face in per_face]) for k in range(len(self.output_names))]
        else:
            outputs = self._run(arrays)
        tensors = tuple(torch.from_numpy(o).to(inputs[0].device) for o in outputs)
        return tensors[0] if len(tensors) == 1 else tensors


def onnxruntime_swapper(path: Path, binding: Binding) -> nn.Module:
    return OnnxSwapper(OrtNetwork(path), binding).eval()  # type: ignore[arg-type]
