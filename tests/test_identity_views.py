"""Random views of the swap for the identity losses: strength 0 is the identity, each step matches
what it imitates (torch's antialiased resize, libjpeg through OpenCV), gradients reach the input
through every step, and draws differ between generators and between the samples of a batch."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from realtime.train.identity_views import (
    apply_view,
    blur_and_rescale,
    compress_jpeg,
    draw_view_parameters,
    jitter_colour,
    random_view,
    warp_view,
)


def _faces(batch: int = 4, seed: int = 0) -> torch.Tensor:
    """Smooth random images in [-1, 1] (blurred noise: JPEG and blur have structure to act on)."""
    noise = torch.rand(batch, 3, 112, 112, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return F.avg_pool2d(noise, 5, stride=1, padding=2, count_include_pad=False).clamp(-1, 1)


def test_strength_zero_returns_the_input_exactly_and_draws_nothing():
    faces = _faces()
    generator = torch.Generator().manual_seed(3)
    before = generator.get_state()
    assert random_view(faces, 0.0, generator) is faces
    assert torch.equal(generator.get_state(), before)
    # every drawn parameter is the identity's at strength 0, so the steps that are exact stay exact
    view = draw_view_parameters(4, 0.0, torch.Generator().manual_seed(1))
    assert torch.equal(view.blur_sigma_px, torch.zeros(4)) and torch.equal(view.size_px, torch.full((4,), 112.0))
    assert torch.allclose(view.image_from_view, torch.eye(2, 3).expand(4, 2, 3))
    assert torch.allclose(view.colour, torch.eye(3).expand(4, 3, 3)) and torch.equal(view.jpeg_quality, torch.full((4,), 100.0))
    assert torch.equal(blur_and_rescale(faces, view.blur_sigma_px, view.size_px), faces)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        draw_view_parameters(4, 1.5, generator)


def test_a_view_keeps_shape_and_range_and_changes_the_image():
    faces = (_faces(8) * 4).clamp(-1, 1)  # many pixels at ±1: JPEG's ringing overshoots them
    seen = random_view(faces, 1.0, torch.Generator().manual_seed(0))
    assert seen.shape == faces.shape and seen.dtype == torch.float32
    assert seen.min() >= -1 and seen.max() <= 1
    assert (seen - faces).abs().mean() > 0.01
    with pytest.raises(ValueError, match="multiple of 16"):
        apply_view(torch.zeros(1, 3, 100, 100), draw_view_parameters(1, 1.0, torch.Generator()))


def test_gradients_reach_the_input_through_every_step():
    view = draw_view_parameters(2, 1.0, torch.Generator().manual_seed(0))
    steps = {
        "warp": lambda x: warp_view(x, view.image_from_view),
        "blur and rescale": lambda x: blur_and_rescale(x, view.blur_sigma_px, view.size_px),
        "colour": lambda x: jitter_colour(x, view.brightness, view.contrast, view.colour),
        "jpeg": lambda x: compress_jpeg(x, torch.tensor([30.0, 60.0])),
        "whole view": lambda x: apply_view(x, view),
    }
    for name, step in steps.items():
        faces = (_faces(2) * 0.8).requires_grad_(True)  # inside (-1, 1): no clamp cuts the gradient
        step(faces).mul(torch.randn(2, 3, 112, 112, generator=torch.Generator().manual_seed(1))).sum().backward()
        assert faces.grad is not None and faces.grad.abs().sum() > 0 and torch.isfinite(faces.grad).all(), name
        for sample in range(2):  # each sample's own view passes its gradient
            assert faces.grad[sample].abs().sum() > 0, (name, sample)


def test_jpeg_rounds_straight_through():
    """Forward: coarser at lower quality; backward: the rounding passes the gradient unchanged, so
    the gradient equals that of the same chain without quantisation (quality 100 rounds to 1)."""
    faces = (_faces(1) * 0.8).requires_grad_(True)
    weights = torch.randn(1, 3, 112, 112, generator=torch.Generator().manual_seed(2))
    (compress_jpeg(faces, torch.tensor([30.0])) * weights).sum().backward()
    coarse = faces.grad.clone()
    faces.grad = None
    (compress_jpeg(faces, torch.tensor([100.0])) * weights).sum().backward()
    # the steps differ (table × scale), and the straight-through gradient of round(c/s)·s is 1
    assert torch.allclose(coarse, faces.grad, atol=1e-5)
    error = [(compress_jpeg(faces.detach(), torch.tensor([q])) - faces.detach()).abs().mean().item() for q in (95.0, 60.0, 20.0)]
    assert error[0] < error[1] < error[2]


def test_jpeg_is_close_to_libjpeg():
    """Against OpenCV's libjpeg at the same quality: much nearer to it than to the input."""
    cv2 = pytest.importorskip("cv2")
    faces = ((_faces(1, seed=5) + 1) * 127.5).round().clamp(0, 255)
    image = faces[0].permute(1, 2, 0).numpy().astype(np.uint8)
    for quality in (30, 75):
        _, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        libjpeg = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(np.float32)
        ours = ((compress_jpeg(faces / 127.5 - 1, torch.tensor([float(quality)])) + 1) * 127.5)[0].permute(1, 2, 0).numpy()
        assert np.abs(ours - libjpeg).mean() < 0.5 * np.abs(image - libjpeg).mean(), quality
        assert np.abs(ours - libjpeg).mean() < 1.5, quality


def test_the_rescale_is_torchs_antialiased_shrink_and_bilinear_restore():
    faces = _faces(3)
    for size in (40, 57, 100):
        ours = blur_and_rescale(faces, torch.zeros(3), torch.full((3,), float(size)))
        shrunk = F.interpolate(faces, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        reference = F.interpolate(shrunk, size=(112, 112), mode="bilinear", align_corners=False)
        assert torch.allclose(ours, reference, atol=1e-5), size
    blurred = blur_and_rescale(faces, torch.full((3,), 1.5), torch.full((3,), 112.0))
    assert blurred.diff(dim=-1).abs().mean() < 0.8 * faces.diff(dim=-1).abs().mean()  # smoother


def test_draws_differ_between_generators_and_between_samples():
    faces = _faces(1).expand(6, 3, 112, 112)  # one image six times: any difference is the view's
    a = random_view(faces, 1.0, torch.Generator().manual_seed(0))
    b = random_view(faces, 1.0, torch.Generator().manual_seed(1))
    again = random_view(faces, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(a, again) and not torch.allclose(a, b, atol=1e-3)
    for i in range(6):
        for j in range(i + 1, 6):
            assert not torch.allclose(a[i], a[j], atol=1e-3), (i, j)
    view = draw_view_parameters(6, 1.0, torch.Generator().manual_seed(0))
    for name, field in view._asdict().items():  # every parameter drawn per sample (sizes are whole pixels: may repeat)
        assert len(torch.unique(field.reshape(6, -1), dim=0)) >= (2 if name == "size_px" else 6), name
