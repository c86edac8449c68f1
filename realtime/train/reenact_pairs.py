"""What the reenactment refiner trains on beyond what it sees live (``vision.reenact_torch``: the
warp, each face's regions, the target's context): synthetic second views of a single photo (a
random head motion and a different light), so a person with one photo still gives a pair whose
answer is known.

All (B, …) tensors; landmarks are (B, 478, 2) pixels of the crops they belong to."""

from __future__ import annotations

import math

import torch

from realtime.vision.reenact_torch import reenact


def random_motion(landmarks: torch.Tensor, size: int, generator: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """The landmarks moved as a head moves between two photos: a turn of up to 8°, a scale of
    ±6 %, a shift of up to 4 % of the crop about the face's centre, and a smooth bend (one Gaussian
    bump of up to 3 % of the crop) for expression and yaw."""
    batch = landmarks.shape[0]
    rand = lambda *shape: torch.rand(batch, *shape, generator=generator, device=generator.device).to(landmarks)  # noqa: E731
    angle = (rand(1) * 2 - 1) * math.radians(8) * strength
    scale = 1 + (rand(1) * 2 - 1) * 0.06 * strength
    shift = (rand(2) * 2 - 1) * 0.04 * size * strength
    centre = landmarks.mean(dim=1, keepdim=True)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    rotation = torch.stack([torch.cat([cos, -sin], 1), torch.cat([sin, cos], 1)], dim=1)  # (B, 2, 2)
    moved = (landmarks - centre) @ rotation.transpose(1, 2) + centre + shift[:, None, :]
    bump_at = centre[:, 0] + (rand(2) * 2 - 1) * 0.2 * size
    push = (rand(2) * 2 - 1) * 0.03 * size * strength
    weight = torch.exp(-((moved - bump_at[:, None]) ** 2).sum(-1, keepdim=True) / (2 * (0.15 * size) ** 2))
    return moved + weight * push[:, None, :]


def relight(images: torch.Tensor, generator: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """A different light on (B, 3, S, S) faces in [-1, 1]: a gain per channel (white balance), a
    gamma, and a brightness ramp across the face from a random side."""
    batch = images.shape[0]
    rand = lambda *shape: torch.rand(batch, *shape, generator=generator, device=generator.device).to(images)  # noqa: E731
    gain = 1 + (rand(3, 1, 1) * 2 - 1) * 0.12 * strength
    gamma = torch.exp((rand(1, 1, 1) * 2 - 1) * 0.3 * strength)
    angle = rand(1, 1) * 2 * math.pi
    axis = torch.linspace(-1, 1, images.shape[-1], device=images.device, dtype=images.dtype)
    ramp = torch.cos(angle)[..., None] * axis[None, None, None, :] + torch.sin(angle)[..., None] * axis[None, None, :, None]
    light = 1 + ramp * rand(1, 1, 1) * 0.35 * strength
    unit = ((images + 1) / 2).clamp(0, 1)
    return (((unit**gamma) * gain * light).clamp(0, 1) * 2 - 1)


def second_view(faces: torch.Tensor, landmarks: torch.Tensor, generator: torch.Generator, strength: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Each face seen again with its head moved and in another light: (images, their landmarks).
    Warping it back onto the original landmarks must give the original: a pair with an answer."""
    moved = random_motion(landmarks, faces.shape[-1], generator, strength)
    warped, _ = reenact(faces, landmarks, moved, faces.shape[-1])
    return relight(warped, generator, strength), moved
