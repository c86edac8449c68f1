"""ONNX stand-ins for users' models, made here from the published architectures with random
weights (nothing third-party): the inswapper architecture with its latent map appended last
(``base`` 128 is the full-size model, 138 M parameters), an ArcFace-like encoder, a DFM-shaped
graph; and our own trained models exported behind those conventions, so the adapter is checked
with weights that really swap. Used by the tests and the GPU benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np


def _helpers() -> tuple[Any, Any, Any]:
    import onnx
    from onnx import helper, numpy_helper

    return onnx, helper, numpy_helper


class _Graph:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[Any] = []
        self.inits: list[tuple[str, np.ndarray]] = []
        self.count = 0

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, value: np.ndarray, stem: str = "c") -> str:
        name = self.name(stem)
        self.inits.append((name, np.asarray(value)))
        return name

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        _, helper, _ = _helpers()
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int, stride: int = 1, pad: int | None = None) -> str:
        weight = (self.rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
        bias = (self.rng.standard_normal(cout) * 0.01).astype(np.float32)
        p = k // 2 if pad is None else pad
        return self.node("Conv", [x, self.const(weight, "w"), self.const(bias, "b")], kernel_shape=[k, k], strides=[stride, stride], pads=[p] * 4)

    def reflect(self, x: str, p: int) -> str:
        return self.node("Pad", [x, self.const(np.array([0, 0, p, p, 0, 0, p, p], np.int64), "pads")], mode="reflect")


def _adain(g: _Graph, x: str, source: str, channels: int, id_dim: int) -> str:
    """Instance norm as inswapper's export spells it (ε 1e-8), then scale/shift from a Gemm."""
    mean = g.node("ReduceMean", [x], axes=[2, 3], keepdims=1)
    centred = g.node("Sub", [x, mean])
    var = g.node("ReduceMean", [g.node("Pow", [centred, g.const(np.array(2.0, np.float32))])], axes=[2, 3], keepdims=1)
    inv = g.node("Reciprocal", [g.node("Sqrt", [g.node("Add", [var, g.const(np.array(1e-8, np.float32))])])])
    normed = g.node("Mul", [centred, inv])
    weight = (g.rng.standard_normal((2 * channels, id_dim)) / np.sqrt(id_dim)).astype(np.float32)
    bias = np.concatenate([np.ones(channels), np.zeros(channels)]).astype(np.float32)
    style = g.node("Unsqueeze", [g.node("Gemm", [source, g.const(weight, "gw"), g.const(bias, "gb")], transB=1)], axes=[2, 3])
    one = g.const(np.array([1], np.int64))
    scale = g.node("Slice", [style, g.const(np.array([0], np.int64)), g.const(np.array([channels], np.int64)), one])
    shift = g.node("Slice", [style, g.const(np.array([channels], np.int64)), g.const(np.array([2 * channels], np.int64)), one])
    return g.node("Add", [g.node("Mul", [normed, scale]), shift])


def make_inswapper_standin(path: Path, *, base: int = 8, blocks: int = 6, seed: int = 0, emap: bool = True, fp16: bool = False, size: int = 128) -> Path:
    """The inswapper_128 architecture (shared/BYO-MODELS.md §1.2) at channel width ``base``
    (128: the real model's size), opset 11, batch 1 declared, ``buff2fs`` appended last."""
    onnx, helper, numpy_helper = _helpers()
    g = _Graph(seed)
    c1, c2, c3, c4 = base, 2 * base, 4 * base, 8 * base
    x = g.node("LeakyRelu", [g.conv(g.reflect("target", 3), 3, c1, 7, pad=0)], alpha=0.2)
    x = g.node("LeakyRelu", [g.conv(x, c1, c2, 3)], alpha=0.2)
    x = g.node("LeakyRelu", [g.conv(x, c2, c3, 3, stride=2)], alpha=0.2)
    x = g.node("LeakyRelu", [g.conv(x, c3, c4, 3, stride=2)], alpha=0.2)
    for _ in range(blocks):
        a = g.node("Relu", [_adain(g, g.conv(g.reflect(x, 1), c4, c4, 3, pad=0), "source", c4, 512)])
        b = _adain(g, g.conv(g.reflect(a, 1), c4, c4, 3, pad=0), "source", c4, 512)
        x = g.node("Add", [x, b])
    scales = g.const(np.array([1, 1, 2, 2], np.float32))
    x = g.node("Resize", [x, g.const(np.zeros(0, np.float32)), scales], mode="linear", coordinate_transformation_mode="half_pixel")
    x = g.node("LeakyRelu", [g.conv(x, c4, c3, 3)], alpha=0.2)
    x = g.node("Resize", [x, g.const(np.zeros(0, np.float32)), scales], mode="linear", coordinate_transformation_mode="half_pixel")
    x = g.node("LeakyRelu", [g.conv(x, c3, c2, 3)], alpha=0.2)
    x = g.node("LeakyRelu", [g.conv(x, c2, c1, 3)], alpha=0.2)
    y = g.node("Tanh", [g.conv(g.reflect(x, 3), c1, 3, 7, pad=0)])
    out = g.node("Div", [g.node("Add", [y, g.const(np.array(1.0, np.float32))]), g.const(np.array(2.0, np.float32))])
    g.nodes.append(helper.make_node("Identity", [out], ["output"]))
    if emap:
        q, _ = np.linalg.qr(g.rng.standard_normal((512, 512)))
        g.inits.append(("buff2fs", q.astype(np.float32)))
    return _save(path, g, [("target", [1, 3, size, size]), ("source", [1, 512])], [("output", [1, 3, size, size])], opset=11, fp16=fp16)


def _save(path: Path, g: _Graph, inputs: list[tuple[str, list[Any]]], outputs: list[tuple[str, list[Any]]], *, opset: int, fp16: bool = False) -> Path:
    onnx, helper, numpy_helper = _helpers()
    nodes = list(g.nodes)
    inits = [(n, v.astype(np.float16) if fp16 and v.dtype == np.float32 and v.ndim >= 2 and not n.startswith("buff2fs") else v) for n, v in g.inits]
    if fp16:  # what keep_io_types conversions leave: float16 weights behind Casts
        casted = {n for n, v in inits if v.dtype == np.float16}
        for node in nodes:
            for i, name in enumerate(node.input):
                if name in casted:
                    node.input[i] = name + "_f32"
        nodes = [helper.make_node("Cast", [n], [n + "_f32"], to=onnx.TensorProto.FLOAT) for n in sorted(casted)] + nodes
    graph = helper.make_graph(
        nodes, "standin",
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(v, n) for n, v in inits],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="realtime stand-in")
    model.ir_version = 7
    onnx.save(model, str(path))
    return path


def make_arcface_standin(path: Path, *, width: int = 8, seed: int = 1) -> Path:
    """A small iresnet-like encoder: [N,3,112,112] → 512 (Conv, BN, PRelu, Add, Flatten, Gemm)."""
    g = _Graph(seed)
    x = g.conv("input", 3, width, 3, stride=2)
    for _ in range(2):
        ch = width
        bn = g.node("BatchNormalization", [x, g.const(np.ones(ch, np.float32)), g.const(np.zeros(ch, np.float32)), g.const(np.zeros(ch, np.float32)), g.const(np.ones(ch, np.float32))])
        y = g.node("PRelu", [g.conv(bn, ch, ch, 3), g.const(np.full((ch, 1, 1), 0.25, np.float32))])
        x = g.node("Add", [x, g.conv(y, ch, ch, 3)])
    x = g.node("MaxPool", [x], kernel_shape=[4, 4], strides=[4, 4])
    flat = g.node("Flatten", [x], axis=1)
    features = width * 14 * 14
    weight = (g.rng.standard_normal((512, features)) / np.sqrt(features)).astype(np.float32)
    out = g.node("Gemm", [flat, g.const(weight), g.const(np.zeros(512, np.float32))], transB=1)
    _, helper, _ = _helpers()
    g.nodes.append(helper.make_node("Identity", [out], ["embedding"]))
    return _save(path, g, [("input", ["None", 3, 112, 112])], [("embedding", ["None", 512])], opset=11)


def make_dfm_standin(path: Path, *, size: int = 64, seed: int = 2) -> Path:
    """A DFM-shaped graph: in_face:0 NHWC BGR [0,1] and morph_value:0 → (face_mask, celeb_face,
    celeb_mask) NHWC in [0,1], with DepthToSpace upsampling as DeepFaceLab's decoders use."""
    g = _Graph(seed)
    x = g.node("Transpose", ["in_face:0"], perm=[0, 3, 1, 2])
    x = g.node("LeakyRelu", [g.conv(x, 3, 16, 3, stride=2)], alpha=0.1)
    x = g.node("DepthToSpace", [g.conv(x, 16, 16, 3)], blocksize=2, mode="DCR")  # 16 → 4 channels, back to size
    face = g.node("Sigmoid", [g.node("Mul", [g.conv(x, 4, 3, 3), "morph_value:0"])])
    mask = g.node("Sigmoid", [g.conv(x, 4, 1, 3)])
    _, helper, _ = _helpers()
    g.nodes += [
        helper.make_node("Transpose", [mask], ["face_mask:0"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", [face], ["celeb_face:0"], perm=[0, 2, 3, 1]),
        helper.make_node("Transpose", [mask], ["celeb_mask:0"], perm=[0, 2, 3, 1]),
    ]
    return _save(path, g, [("in_face:0", [1, size, size, 3]), ("morph_value:0", [1])], [("face_mask:0", [1, size, size, 1]), ("celeb_face:0", [1, size, size, 3]), ("celeb_mask:0", [1, size, size, 1])], opset=13)


def export_aei_as_inswapper(checkpoint: Path, encoder_checkpoint: Path, generator_path: Path, encoder_path: Path, *, seed: int = 0) -> tuple[Path, Path]:
    """Our AEI-Net and identity encoder, exported behind insightface's conventions: the encoder
    gives a 512-D 'ArcFace' vector (ours, zero-padded), the generator takes target RGB in [0, 1] and
    source = normalize(normalize(embedding) @ emap), with the emap (a random rotation) its last,
    unused initializer; inside, the rotation is undone and our embedding recovered exactly."""
    import onnx
    import torch
    import torch.nn.functional as F
    from onnx import numpy_helper

    from realtime.models.checkpoint import load_checkpoint

    generator, info = load_checkpoint(checkpoint, expect="aei_net")
    encoder, _ = load_checkpoint(encoder_checkpoint, expect="identity_encoder")
    id_dim = int(info.hyperparameters.get("id_dim", 128))
    size = int(info.hyperparameters.get("crop_size", 128))
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((512, 512)))
    emap = torch.from_numpy(q.astype(np.float32))

    class Generator(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.generator = generator.float()
            self.unmap = torch.nn.Parameter(emap.t().contiguous(), requires_grad=False)

        def forward(self, target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
            embedding = F.normalize((source @ self.unmap)[:, :id_dim], dim=-1)
            out = self.generator(target * 2 - 1, embedding)
            return (out[0] if isinstance(out, tuple) else out) * 0.5 + 0.5

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder.float()

        def forward(self, crops: torch.Tensor) -> torch.Tensor:
            return F.pad(self.encoder(crops), (0, 512 - id_dim))

    height, width = cast("tuple[int, int]", encoder.input_size)
    torch.onnx.export(Generator().eval(), (torch.rand(1, 3, size, size), torch.rand(1, 512)), str(generator_path), input_names=["target", "source"], output_names=["output"], opset_version=17, dynamo=False)
    torch.onnx.export(Encoder().eval(), (torch.rand(1, 3, height, width),), str(encoder_path), input_names=["input"], output_names=["embedding"], opset_version=17, dynamo=False, dynamic_axes={"input": {0: "None"}, "embedding": {0: "None"}})
    model = onnx.load(str(generator_path))
    model.graph.initializer.append(numpy_helper.from_array(q.astype(np.float32), "buff2fs"))
    onnx.save(model, str(generator_path))
    return generator_path, encoder_path


def export_target_as_dfm(checkpoint: Path, path: Path, *, target_identity: int = 0) -> Path:
    """Our per-target model exported behind DeepFaceLive's DFM conventions: ``in_face:0`` NHWC BGR
    in [0, 1] and ``morph_value:0``; outputs (face_mask, celeb_face, celeb_mask), NHWC in [0, 1]
    (the morph factor is taken and, as for a model trained without morphing, does not change it)."""
    import torch

    from realtime.models.checkpoint import load_checkpoint
    from realtime.models.target_autoencoder import TargetSwapper

    model, info = load_checkpoint(checkpoint, expect="target_autoencoder")
    swapper = TargetSwapper(model.float(), target_identity).eval()  # type: ignore[arg-type]
    size = int(info.hyperparameters.get("crop_size", 128))

    class Dfm(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.swapper = swapper

        def forward(self, face: torch.Tensor, morph: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            rgb = face.flip(-1).permute(0, 3, 1, 2) * 2 - 1
            out, mask = self.swapper(rgb + 0 * morph.reshape(1, 1, 1, 1))
            bgr = ((out + 1) / 2).flip(1).permute(0, 2, 3, 1)
            mask_nhwc = mask.permute(0, 2, 3, 1)
            return mask_nhwc, bgr, mask_nhwc

    torch.onnx.export(
        Dfm().eval(), (torch.rand(1, size, size, 3), torch.tensor([0.75])), str(path),
        input_names=["in_face:0", "morph_value:0"], output_names=["face_mask:0", "celeb_face:0", "celeb_mask:0"], opset_version=17, dynamo=False,
    )
    return path
