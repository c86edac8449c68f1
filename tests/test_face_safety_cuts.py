"""The real face never on air at a cut, past --max-faces or at a flash: the rules on made-up
frames (these run everywhere), then the same on real footage cut and stacked from ../shared."""

from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.bundle import Detection, Face, FrameBundle, HostSwapped
from realtime.config import BlendConfig, DetectConfig, SwapConfig, TrackConfig, build_config, resolve_others
from realtime.errors import ConfigError
from realtime.live import LiveSettings
from realtime.stages.blend import BlendStage
from realtime.stages.blend.cpu import CpuBlender
from realtime.stages.blend.guard import FaceGuard
from realtime.stages.detect import DetectStage
from realtime.stages.swap import SwapStage, others_of
from realtime.stages.track import TrackStage
from realtime.testing import make_face_landmarks
from realtime.vision.colour import EXPOSURE_JUMP_L, ColourSmoother, ColourStats, exposure_jumped
from realtime.vision.cover import cover_frame
from realtime.vision.landmarks import box_from_landmarks

LEFT, RIGHT = make_face_landmarks((180, 240), 60), make_face_landmarks((470, 240), 60)


def _checkerboard(height: int = 480, width: int = 640) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.repeat((((ys + xs) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)


def _shot(which: int) -> np.ndarray:
    """Two shots (a cut: the light runs left to right in one, top to bottom in the other), each
    with one 'face' no cover can reproduce (1-px checks): on the left in A, on the right in B."""
    ys, xs = np.mgrid[0:480, 0:640].astype(np.float32)
    frame = np.repeat(((xs / 640 if which == 0 else ys / 480) * 255).astype(np.uint8)[..., None], 3, axis=2)
    x0, y0, x1, y1 = (int(round(v)) for v in box_from_landmarks(LEFT if which == 0 else RIGHT))
    frame[y0:y1, x0:x1] = _checkerboard()[y0:y1, x0:x1]
    return frame


def _real_pixels(before: np.ndarray, after: np.ndarray, landmarks: np.ndarray) -> int:
    """How many pixels of the face's middle (eyes, nose, mouth: inside any swap's mask) came
    through unchanged: the real face, on air."""
    bx0, by0, bx1, by1 = box_from_landmarks(landmarks)
    w, h = bx1 - bx0, by1 - by0
    x0, y0, x1, y1 = int(bx0 + 0.25 * w), int(by0 + 0.25 * h), int(bx1 - 0.25 * w), int(by1 - 0.2 * h)
    return int(np.sum(np.all(before[y0:y1, x0:x1] == after[y0:y1, x0:x1], axis=-1)))


def _blend(policy: str, others: str = "cover") -> BlendStage:
    return BlendStage(LiveSettings(BlendConfig(colour="off")), crop_size=128, face_safety=policy, hold_s=1.0, others=others)


def _swap_green(bundle: FrameBundle) -> None:
    for face in bundle.faces:
        if face.alpha > 0 and not face.other:
            face.swapped = HostSwapped(np.full((face.crop_size, face.crop_size, 3), (0, 255, 0), np.uint8))


def _montage(policy: str, lag: int) -> list[tuple[int, FrameBundle, np.ndarray]]:
    """Shot A (a face on the left) for 8 frames, a cut, shot B (a face on the right). The detector
    finds each shot's face on every frame; its results arrive ``lag`` frames late (1: the
    asynchronous landmarker)."""
    track, blend = TrackStage(TrackConfig(birth_hits=2, crop_size=128), cover_lost_s=1.0 if policy != "reveal" else None), _blend(policy)
    seen: list[tuple[list[Detection], float]] = []
    out = []
    for index in range(16):
        t = index / 25
        shot = 0 if index < 8 else 1
        seen.append(([Detection(LEFT if shot == 0 else RIGHT)], t))
        frame = _shot(shot)
        bundle = FrameBundle(index, 0, frame.copy(), t)
        if len(seen) > lag:
            bundle.detections, bundle.detections_media_time_s = seen.pop(0)
        track.process(bundle)
        _swap_green(bundle)
        blend.process(bundle)
        out.append((shot, bundle, frame))
    return out


@pytest.mark.parametrize("lag", [0, 1, 2])
@pytest.mark.parametrize("policy", ["hold", "blur", "pixelate"])
def test_no_real_face_on_any_frame_of_a_cut_whenever_the_detector_reports(policy, lag):
    """Before the detector has reported on the new shot nobody knows where its face is: the frame
    of the cut (and, with a late detector, the one or two after it) is covered whole."""
    for shot, bundle, frame in _montage(policy, lag):
        landmarks = LEFT if shot == 0 else RIGHT
        assert _real_pixels(frame, bundle.frame, landmarks) == 0, f"frame {bundle.frame_id} ({policy}, lag {lag}): the real face is on air"


def test_the_whole_frame_is_covered_only_until_the_detector_reports_on_the_new_shot():
    frames = _montage("hold", lag=1)
    blind = [bundle.frame_id for _, bundle, _ in frames if bundle.blind]
    assert blind == [0, 8]  # the first frame (nothing detected yet) and the cut's frame, not later ones
    in_sync = [bundle.frame_id for _, bundle, _ in _montage("hold", lag=0) if bundle.blind]
    assert in_sync == []  # in the frame's path the detector has always looked at the frame itself


def test_reveal_shows_the_new_shot_as_it_comes():
    """The control: with 'reveal' nothing is covered whole, so the checks above can fail."""
    frames = _montage("reveal", lag=1)
    assert not any(bundle.blind for _, bundle, _ in frames)
    assert _real_pixels(frames[8][2], frames[8][1].frame, RIGHT) > 0


def test_cover_frame_leaves_no_pixel_of_the_picture():
    for mode in ("blur", "pixelate"):
        frame = _checkerboard(1080, 1920)
        cover_frame(frame, mode)  # type: ignore[arg-type]
        assert np.all(np.abs(frame.astype(int) - _checkerboard(1080, 1920)) >= 40)




# --- faces past --max-faces ------------------------------------------------------------------------


def test_the_landmarker_looks_for_more_faces_than_are_swapped():
    assert DetectStage(DetectConfig(max_faces=1), asynchronous=False).options.max_faces == 3
    assert DetectStage(DetectConfig(max_faces=4), asynchronous=False).options.max_faces == 6


def _face(track_id: int, size: float, state: str = "live", confirmed_for_s: float = 1.0, x: float = 0.0) -> Face:
    eye = np.eye(2, 3)
    return Face(track_id, np.zeros((478, 2)), None, (x, 0.0, x + size, size), 1.0, eye, eye, 128, state=state, confirmed_for_s=confirmed_for_s)  # type: ignore[arg-type]


def test_others_are_the_seen_faces_left_out_when_every_slot_is_taken():
    wearer, guest, new, lost = _face(1, 100, confirmed_for_s=5.0), _face(2, 200, confirmed_for_s=1.0), _face(3, 150, "tentative"), _face(4, 90, "lost")
    assert others_of([wearer, guest, lost], [new], [wearer], limit=1) == [guest, new]  # the lost wearer stays covered
    assert others_of([wearer], [new], [wearer], limit=2) == []  # a free slot: the new face may be the wearer's


def _two_people(target_checkpoint: Path, others: str, policy: str = "hold") -> tuple[FrameBundle, np.ndarray, BlendStage, SwapStage]:
    """Two people in view under --max-faces 1: the wearer (on the left, tracked longer) and a guest."""
    track = TrackStage(TrackConfig(birth_hits=1, crop_size=128), cover_lost_s=1.0 if policy != "reveal" else None)
    swap = SwapStage(SwapConfig(generator=str(target_checkpoint), target_identity=1, backends=("cpu",)), TrackConfig(crop_size=128), DetectConfig(max_faces=1), others=others)
    swap.setup()
    blend = _blend(policy, others)
    frame = _checkerboard()
    bundle = FrameBundle(0, 0, frame.copy(), 0.0)
    for index, seen in enumerate(([LEFT], [LEFT, RIGHT], [LEFT, RIGHT])):
        bundle = FrameBundle(index, 0, frame.copy(), index / 25)
        bundle.detections, bundle.detections_media_time_s = [Detection(points) for points in seen], index / 25
        for stage in (track, swap, blend):
            bundle = stage.process(bundle)
    return bundle, frame, blend, swap


def test_a_face_past_max_faces_is_covered_by_default(target_checkpoint):
    bundle, frame, blend, _ = _two_people(target_checkpoint, resolve_others("auto", "hold"))
    assert [f.other for f in bundle.faces] == [False, True]
    assert _real_pixels(frame, bundle.frame, RIGHT) == 0
    assert blend.describe()["others_covered"] >= 1


def test_others_reveal_leaves_a_passer_by_alone_and_still_swaps_the_wearer(target_checkpoint):
    bundle, frame, blend, _ = _two_people(target_checkpoint, "reveal")
    x0, y0, x1, y1 = (int(round(v)) for v in box_from_landmarks(RIGHT))
    assert np.array_equal(bundle.frame[y0:y1, x0:x1], frame[y0:y1, x0:x1])
    assert bundle.faces[0].blended and _real_pixels(frame, bundle.frame, LEFT) < 0.5 * (x1 - x0) * (y1 - y0)
    assert blend.describe()["others_revealed"] >= 1


def test_others_swap_swaps_every_face_in_view(target_checkpoint):
    bundle, _, blend, swap = _two_people(target_checkpoint, "swap")
    assert all(face.blended for face in bundle.faces) and not any(face.other for face in bundle.faces)
    assert swap.describe()["faces_over_max_faces"] == 0


def test_others_cover_under_reveal_still_covers_the_passer_by():
    guard = FaceGuard("reveal", 1.0, others="cover")
    wearer, guest = _face(1, 100), _face(2, 100, x=300)
    guest.other = True
    covers = guard.plan(FrameBundle(0, 0, np.zeros((8, 8, 3), np.uint8), 0.0, faces=[wearer, guest]))
    assert [(c.face.track_id, c.action) for c in covers] == [(2, "blur")]


def test_others_option():
    assert resolve_others("auto", "hold") == "cover" and resolve_others("auto", "pixelate") == "cover"
    assert resolve_others("auto", "reveal") == "reveal" and resolve_others("swap", "hold") == "swap"
    assert build_config(overrides={"others": "reveal"}).safety.others == "reveal"
    with pytest.raises(ConfigError, match="others"):
        build_config(overrides={"others": "everyone"})
    with pytest.raises(ValueError, match="--others"):
        FaceGuard("hold", 1.0, others="everyone")


# --- a flash ------------------------------------------------------------------------------------------


def test_a_flash_restarts_the_smoothed_colour_at_once():
    smoother = ColourSmoother(0.5)
    dark = ColourStats(np.array([40.0, 5.0, 10.0]), np.array([10.0, 3.0, 3.0]))
    bright = ColourStats(np.array([75.0, 4.0, 8.0]), np.array([12.0, 3.0, 3.0]))
    for k in range(10):
        smoother.update(1, k / 30, dark)
    assert np.allclose(smoother.update(1, 10 / 30, bright).mean, bright.mean)  # not a dark oval on a lit face
    slow = ColourStats(dark.mean + [EXPOSURE_JUMP_L / 2, 0, 0], dark.std)
    smoother.update(2, 0.0, dark)
    assert smoother.update(2, 1 / 30, slow).mean[0] < slow.mean[0] - 1  # an ordinary change is still smoothed
    assert exposure_jumped(40.0, 60.0) and not exposure_jumped(40.0, 44.0)


def test_the_gpu_blend_restarts_its_colour_at_a_flash_too():
    """The torch twin (run here on the CPU): the same rule inside the fused crop maths."""
    from realtime.stages.blend.region import _match_colour
    from realtime.vision.colour import STATS_STEP

    size = 64
    mask = torch.ones((size, size))
    generated = torch.full((size, size, 3), 128.0)

    def target(level: float) -> torch.Tensor:
        return torch.full((size // STATS_STEP, size // STATS_STEP, 3), level)

    state = torch.zeros((3, 3))
    weight = torch.tensor(0.1)  # heavy smoothing
    for _ in range(5):
        _, state = _match_colour(target(0.2), generated, mask, state, weight)
    dark_l = float(state[0, 0])
    _, state = _match_colour(target(0.8), generated, mask, state, weight)
    _, fresh = _match_colour(target(0.8), generated, mask, torch.zeros((3, 3)), weight)
    assert float(state[0, 0]) == pytest.approx(float(fresh[0, 0]), abs=1e-3) and float(state[0, 0]) > dark_l + EXPOSURE_JUMP_L


def test_the_cpu_blender_paints_a_flashed_face_bright_at_once():
    blender = CpuBlender()
    settings = BlendConfig(colour="smoothed", colour_smoothing_s=0.5)
    tracker = TrackStage(TrackConfig(birth_hits=1, crop_size=128))
    grey = np.full((480, 640, 3), 60, np.uint8)
    means = []
    for index, level in enumerate((60, 60, 60, 200)):
        frame = np.full((480, 640, 3), level, np.uint8)
        bundle = FrameBundle(index, 0, frame, index / 30)
        bundle.detections, bundle.detections_media_time_s = [Detection(LEFT)], index / 30
        tracker.process(bundle)
        face = bundle.faces[0]
        face.swapped = HostSwapped(np.full((128, 128, 3), 128, np.uint8))
        blender.composite(bundle.frame, [face], index / 30, settings)
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        means.append(float(bundle.frame[(y0 + y1) // 2 - 5 : (y0 + y1) // 2 + 5, (x0 + x1) // 2 - 5 : (x0 + x1) // 2 + 5].mean()))
    assert grey is not None
    assert abs(means[-1] - 200) < 10, f"the flashed face was painted at {means[-1]:.0f} on a frame at 200"
