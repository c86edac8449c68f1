"""The face-safety rules on real footage from ../shared: hard cuts between two people framed left
and right, two people side by side under --max-faces 1, a camera flash. The real landmarker finds
the faces (its results in the frame, and one frame late as live); where each face truly is comes
from the clips on their own. A small generator stands in for the shipped one (what is judged is
what reaches the viewer, not the swap's looks; bench/face_safety.py runs the shipped model)."""

from pathlib import Path

import numpy as np
import pytest

from realtime.app import Plan, face_stages
from realtime.bundle import FrameBundle
from realtime.config import build_config
from realtime.eval.safety_footage import (
    clip_faces,
    cut_montage,
    faces_of,
    flash_burst,
    read_clip,
    read_face,
    run_frames,
    side_by_side,
)

SIZE = 256  # the clips halved: the same faces, a quarter of the work on a 2-core machine


@pytest.fixture(scope="module")
def footage() -> dict[str, object]:
    from tests.conftest import offline_face_landmarker, shared_dir

    shared, landmarker = shared_dir(), offline_face_landmarker()
    if shared is None or landmarker is None:
        pytest.skip("needs ../shared's clips and the face landmarker (REALTIME_SHARED, make demo)")
    a, fps = read_clip(shared / "data" / "videos" / "liveportrait_d3.mp4", 16, SIZE)
    b, _ = read_clip(shared / "data" / "videos" / "liveportrait_d10.mp4", 16, SIZE)
    return {"a": a, "b": b, "fps": fps, "landmarker": landmarker, "truth_a": clip_faces(a, landmarker), "truth_b": clip_faces(b, landmarker)}


def _stages(generator: Path, landmarker: Path, colour: str = "off"):  # type: ignore[no-untyped-def]
    config = build_config(overrides={
        "generator": str(generator), "target_identity": 1, "crop_size": 128, "blend_device": "cpu", "backends": ("cpu",),
        "face_safety": "hold", "detect_mode": "sync", "landmarker_model": str(landmarker), "max_faces": 1, "colour": colour,
    })
    stages = face_stages(config, Plan(paced=False, policy="block", sink_policies=("block",)))
    for stage in stages:
        stage.setup()
    detect, rest = stages[0], stages[1:]

    def through(bundle: FrameBundle) -> FrameBundle:
        for stage in rest:
            bundle = stage.process(bundle)
        return bundle

    return (lambda frame, t: detect.process(FrameBundle(0, 0, frame, t)).detections or []), through, stages


def _framed(frames: list[np.ndarray], right: bool) -> list[np.ndarray]:
    blank = [np.full_like(frame, int(frame.mean())) for frame in frames]
    return [np.ascontiguousarray(np.concatenate([e, f] if right else [f, e], axis=1)) for f, e in zip(frames, blank, strict=True)]


def _verdicts(frames, truth, results) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    seen = []
    for result, landmarks in zip(results, truth, strict=True):
        for box in faces_of(landmarks):
            swapped = any(abs(box[0] - s[0]) < 0.3 * (box[2] - box[0]) for s in result.swapped_boxes)
            seen.append((result.index, read_face(frames[result.index], result.output, box, swapped=swapped).verdict))
    return seen


@pytest.mark.parametrize("lag", [0, 1])
def test_no_real_face_at_any_cut_of_a_montage(footage, target_checkpoint, lag):
    montage, which, index = cut_montage(_framed(footage["a"], right=False), _framed(footage["b"], right=True), shot=4)
    truth = [footage["truth_a"][i] if w == 0 else [p + [SIZE, 0] for p in footage["truth_b"][i]] for w, i in zip(which, index, strict=True)]
    detect, through, stages = _stages(target_checkpoint, footage["landmarker"])
    results = run_frames(montage, footage["fps"], detect, through, detect_lag=lag)
    real = [(i, v) for i, v in _verdicts(montage, truth, results) if v in ("real", "partly real")]
    assert real == [], f"the real face reached the output (frame, verdict): {real}"
    assert sum(r.scene_cut for r in results) == 7  # eight shots of four frames
    assert sum(v == "swapped" for _, v in _verdicts(montage, truth, results)) > len(montage) // 3  # and swaps do happen


def test_a_second_person_past_max_faces_is_covered_on_every_frame(footage, target_checkpoint):
    pair = side_by_side(footage["a"][:6], footage["b"][:6])
    truth = [footage["truth_a"][i] + [p + [SIZE, 0] for p in footage["truth_b"][i]] for i in range(len(pair))]
    detect, through, stages = _stages(target_checkpoint, footage["landmarker"])
    results = run_frames(pair, footage["fps"], detect, through, detect_lag=1)
    assert not [(i, v) for i, v in _verdicts(pair, truth, results) if v in ("real", "partly real")]
    assert stages[-1].describe()["others_covered"] > 0


def test_a_flashed_face_is_painted_in_the_flash_not_dark(footage, target_checkpoint):
    frames = flash_burst(footage["a"][:10], 5, 3)
    detect, through, _ = _stages(target_checkpoint, footage["landmarker"], colour="smoothed")
    results = run_frames(frames, footage["fps"], detect, through, detect_lag=0)
    box = faces_of(footage["truth_a"][5])[0]
    x0, y0, x1, y1 = (int(v) for v in box)
    inside_in = frames[5][y0:y1, x0:x1].mean()
    inside_out = results[5].output[y0:y1, x0:x1].mean()
    assert abs(inside_out - inside_in) < 25, f"the flashed face was painted at {inside_out:.0f}, the frame's face at {inside_in:.0f}"
