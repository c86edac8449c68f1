"""The training-time teacher: MobileFaceNet (Chen et al. 2018) as the reference checkpoint in
``../shared/models`` stores it, so its state dict loads key for key. Never shipped, never run by
the live pipeline: it only supervises our own ``IdentityEncoder`` (distillation) and measures it.

Its input is 112×96 (H×W), (x − 127.5) / 128, aligned to the SphereFace template, which is the
ArcFace 112×112 template shifted 8 px left: so columns 8..104 of our 112² ArcFace crop are exactly
the teacher's crop (``teacher_view``), and one prepared dataset serves both networks.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from realtime.errors import ModelError

# (expansion, channels, repeats, first stride), the paper's bottleneck table
_SETTINGS = ((2, 64, 5, 2), (4, 128, 1, 2), (2, 128, 6, 1), (4, 128, 1, 2), (2, 128, 2, 1))


class _ConvBlock(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1, padding: int = 0, groups: int = 1, *, prelu: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.prelu = nn.PReLU(cout) if prelu else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.prelu(x) if self.prelu is not None else x


class _Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        self.residual = stride == 1 and cin == cout
        self.conv = nn.Sequential(
            nn.Conv2d(cin, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.PReLU(hidden),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden), nn.PReLU(hidden),
            nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class TeacherMobileFaceNet(nn.Module):
    """(B, 3, 112, 96) in [-1, 1]-ish → (B, 128), L2-normalised."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _ConvBlock(3, 64, 3, 2, 1)
        self.dw_conv1 = _ConvBlock(64, 64, 3, 1, 1, groups=64)
        blocks: list[nn.Module] = []
        channels = 64
        for expansion, out, repeats, stride in _SETTINGS:
            for index in range(repeats):
                blocks.append(_Bottleneck(channels, out, stride if index == 0 else 1, expansion))
                channels = out
        self.blocks = nn.Sequential(*blocks)
        self.conv2 = _ConvBlock(128, 512, 1)
        self.linear7 = _ConvBlock(512, 512, (7, 6), groups=512, prelu=False)
        self.linear1 = _ConvBlock(512, 128, 1, prelu=False)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        x = self.linear1(self.linear7(self.conv2(self.blocks(self.dw_conv1(self.conv1(faces))))))
        return F.normalize(x.flatten(1), dim=1)


def load_teacher(path: Path) -> TeacherMobileFaceNet:
    """The reference checkpoint, in eval mode; a ModelError says what is wrong with a bad file."""
    if not path.is_file():
        raise ModelError(f"teacher checkpoint {path} not found", "pass --teacher ../shared/models/teacher_mobilefacenet_casia_112x96.ckpt")
    try:
        # a pickle: only tensors and plain values are unpickled, never code (weights_only)
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        state = checkpoint["net_state_dict"] if isinstance(checkpoint, dict) and "net_state_dict" in checkpoint else checkpoint
        model = TeacherMobileFaceNet()
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - any unreadable or mismatched file is one error
        raise ModelError(f"{path} is not the MobileFaceNet teacher checkpoint ({type(exc).__name__})", "use teacher_mobilefacenet_casia_112x96.ckpt from ../shared/models") from None
    return model.eval()


def teacher_view(faces_112: torch.Tensor) -> torch.Tensor:
    """The teacher's 112×96 input from our 112² ArcFace-aligned batch, (B, 3, 112, 112) in [0, 255]
    (or already normalised to [-1, 1]: the crop is all this does)."""
    return faces_112[..., 8:104]
