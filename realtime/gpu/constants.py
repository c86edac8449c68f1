"""What a CUDA graph may read: a captured graph cannot copy from the host, so every constant tensor
of the maths it replays must already sit on the device. ``graph_constant`` makes each one once per
device; the eager call before a capture (or a compile) puts them there.

Its own module, not ``graphs.py``: the fused blend's saved kernels are fingerprinted by the source
of every module their maths import, and this rule is part of that maths; ``GraphReplay`` is not."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import torch

_ON_DEVICE: dict[tuple[Hashable, str], torch.Tensor] = {}


def graph_constant(name: Hashable, device: torch.device, make: Callable[[], Any]) -> torch.Tensor:
    """The constant ``make()`` as a tensor on ``device``, made once per ``name`` and device."""
    key = (name, str(device))
    if key not in _ON_DEVICE:
        _ON_DEVICE[key] = torch.as_tensor(make()).to(device)
    return _ON_DEVICE[key]
