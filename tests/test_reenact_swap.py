"""The face report's reenactment baseline: the swap stage with the generator replaced by the
source photo warped onto each face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_swap import AEI, ENCODER, _faces

from realtime.bundle import FrameBundle
from realtime.config import DetectConfig, SwapConfig, TrackConfig
from realtime.eval.reenact_swap import ReenactSwapStage, swap_stage_replaced_by_reenactment
from realtime.models.aei_net import AEINet
from realtime.models.checkpoint import save_checkpoint
from realtime.models.identity import IdentityEncoder
from realtime.testing import make_ground_truth_frame
from realtime.vision.align import apply_affine
from realtime.vision.reenact import reenact


def test_each_face_wears_the_source_photo_warped_onto_its_landmarks(tmp_path: Path) -> None:
    from conftest import has_face_model

    if not has_face_model():
        pytest.skip("needs face_landmarker.task (run `make demo` once, or put it in ../shared/models)")
    save_checkpoint(tmp_path / "aei.safetensors", AEINet(**AEI), architecture="aei_net", hyperparameters=AEI)
    save_checkpoint(tmp_path / "enc.safetensors", IdentityEncoder(**ENCODER), architecture="identity_encoder", hyperparameters=ENCODER)
    swap = SwapConfig(generator=str(tmp_path / "aei.safetensors"), identity_encoder=str(tmp_path / "enc.safetensors"), source="demo", backends=("cpu",), steady=0.0)
    stage = ReenactSwapStage(swap, TrackConfig(crop_size=128), DetectConfig())
    stage.setup()
    frame = make_ground_truth_frame(0)
    bundle = FrameBundle(0, 0, frame.copy(), 0.0)
    bundle.faces = _faces(frame)
    stage.process(bundle)
    face = bundle.faces[0]
    assert face.swapped is not None and face.swapped.mask is not None
    expected, mask = reenact(stage.source_image, stage.source_landmarks, apply_affine(face.crop_from_frame, face.landmarks), 128)
    assert np.array_equal(face.swapped.host().crop, expected)
    assert np.array_equal(face.swapped.host().mask, mask)


def test_the_pipeline_builds_the_reenactment_stage_only_inside_the_context() -> None:
    import realtime.stages.swap as package

    original = package.SwapStage
    with swap_stage_replaced_by_reenactment():
        from realtime.stages.swap import SwapStage as built

        assert built is ReenactSwapStage
    assert package.SwapStage is original
    with pytest.raises(RuntimeError), swap_stage_replaced_by_reenactment():
        raise RuntimeError("a failed run")
    assert package.SwapStage is original


def test_a_refiner_checkpoint_is_worn_by_the_swap_stage_as_the_source_photo_warped(tmp_path: Path) -> None:
    """An untrained refiner is the warp itself: the swap stage feeds it each face's landmarks
    and the --source photo's crop, and the face it returns is that photo carried onto the face."""
    from conftest import has_face_model

    from realtime.errors import ConfigError
    from realtime.models.reenact_refiner import ReenactRefiner
    from realtime.stages.swap import SwapStage
    from realtime.stages.swap.faces import SourceFaces

    if not has_face_model():
        pytest.skip("needs face_landmarker.task (run `make demo` once, or put it in ../shared/models)")
    hyper = {"crop_size": 128, "width": 4, "levels": 3, "max_mult": 2}
    save_checkpoint(tmp_path / "refiner.safetensors", ReenactRefiner(**hyper), architecture="reenact_refiner", hyperparameters=hyper)
    swap = SwapConfig(generator=str(tmp_path / "refiner.safetensors"), source="demo", backends=("cpu",), steady=0.0)
    stage = SwapStage(swap, TrackConfig(crop_size=128), DetectConfig())
    stage.setup()  # no --identity-encoder: the refiner wears pixels, not an embedding
    frame = make_ground_truth_frame(0)
    bundle = FrameBundle(0, 0, frame.copy(), 0.0)
    bundle.faces = _faces(frame)
    stage.process(bundle)
    face = bundle.faces[0]
    assert face.swapped is not None
    assert stage.spec is not None
    image, landmarks = stage.sources.photo("test")
    source_crop, source_points = SourceFaces.crop_and_points(image, landmarks, stage.spec)
    points = apply_affine(face.crop_from_frame, face.landmarks)
    expected, inside = reenact(source_crop, source_points, points, 128)
    from realtime.vision.reenact_torch import region_masks

    outline = region_masks(torch.from_numpy(points).float()[None], 128)[0][0, 0].numpy()
    core = (inside > 0) & (outline > 0.99)
    assert core.sum() > 500
    assert np.abs(face.swapped.host().crop.astype(int) - expected.astype(int))[core].mean() < 2.0
    with pytest.raises(ConfigError, match="photo's own pixels"):
        stage.embedding_of_face(frame, face.landmarks)
