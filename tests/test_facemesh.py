"""FaceMesh in torch (through the ONNX converter, whose ops test_onnx_ops.py checks): the crop rule, bad
files refused, and agreement with MediaPipe's FaceLandmarker on a real clip."""

from pathlib import Path

import numpy as np
import pytest

from realtime.errors import ModelError
from realtime.models.facemesh import (
    LEFT_EYE_OUTER,
    MESH_SIZE,
    RIGHT_EYE_OUTER,
    load_facemesh,
    mesh_crop_from_frame,
)
from realtime.vision.align import apply_affine


def test_mesh_crop_levels_the_eyes_and_centres_the_face():
    from realtime.testing import make_face_landmarks

    landmarks = make_face_landmarks((300.0, 200.0), 60.0)
    angle = np.deg2rad(20)
    rotate = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    turned = (landmarks - [300, 200]) @ rotate.T + [300, 200]
    crop_from_frame = mesh_crop_from_frame(turned)
    in_crop = apply_affine(crop_from_frame, turned)
    eyes = in_crop[[RIGHT_EYE_OUTER, LEFT_EYE_OUTER]]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-6 and eyes[0, 0] < eyes[1, 0]  # level, not mirrored
    box_centre = (turned.min(axis=0) + turned.max(axis=0)) / 2
    assert np.allclose(apply_affine(crop_from_frame, box_centre[None])[0], [MESH_SIZE / 2, MESH_SIZE / 2])
    assert 0 < in_crop.min() and in_crop.max() < MESH_SIZE  # the 1.5× margin keeps the face inside


def test_bad_model_files_are_refused(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        load_facemesh(tmp_path / "missing.onnx")
    pytest.importorskip("onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a readable ONNX file|holds no ONNX graph|not the FaceMesh network"):
        load_facemesh(junk)


@pytest.mark.shared
def test_facemesh_agrees_with_the_face_landmarker_on_a_real_clip(shared: Path):
    pytest.importorskip("onnx")
    from conftest import has_face_model

    if not has_face_model():
        pytest.skip("no face_landmarker.task available offline")
    from realtime.eval.facemesh import check_clip

    net = load_facemesh(shared / "models" / "facemesh_468_192.onnx")
    result = check_clip(net, shared / "data" / "videos" / "dfl_Obama_speaking.mp4", 30)
    assert result["frames"] >= 25 and result["nme_mean"] < 0.05  # measured 0.030 (BENCHMARKS-HISTORY §9c)
