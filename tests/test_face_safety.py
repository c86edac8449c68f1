"""Never the real face by accident: the swap serves any number of tracks, the face-safety policy
covers every face that was not swapped (pixel by pixel), and scene cuts end tracks."""


import numpy as np
import pytest
import torch

from realtime.bundle import Detection, Face, FrameBundle, HostSwapped, Swapped
from realtime.config import DetectConfig, SafetyConfig, SwapConfig, TrackConfig, resolve_face_safety
from realtime.errors import ConfigError
from realtime.pipeline.stage import StageWorker
from realtime.stages.blend import BlendStage
from realtime.stages.blend.guard import FaceGuard
from realtime.stages.swap import SwapStage, choose_faces, split_batches
from realtime.stages.track import FaceTracker, TrackStage
from realtime.testing import make_face_landmarks, make_ground_truth_frame
from realtime.vision.cover import cover_face, covered_box, feather_weights
from realtime.vision.landmarks import box_from_landmarks
from realtime.vision.scene_cut import changed_fraction, is_scene_cut, thumbnail

GREEN = np.array([0, 255, 0], np.uint8)


def _face(track_id: int, size: float, state: str = "live", confirmed_for_s: float = 1.0, alpha: float = 1.0) -> Face:
    box = (0.0, 0.0, size, size)
    eye = np.eye(2, 3)
    return Face(track_id, np.zeros((478, 2)), None, box, alpha, eye, eye, 128, state=state, confirmed_for_s=confirmed_for_s)  # type: ignore[arg-type]


def _checkerboard(height: int = 480, width: int = 640) -> np.ndarray:
    """A 'face' no cover can reproduce: 1-px black and white squares, every channel."""
    ys, xs = np.mgrid[0:height, 0:width]
    return np.repeat((((ys + xs) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)


# --- any number of faces ------------------------------------------------------------------------


def test_choose_faces_takes_established_then_larger_and_never_tentative_or_faded():
    old_small, new_big, lost, tentative, faded = _face(1, 50, confirmed_for_s=3.0), _face(2, 200, confirmed_for_s=0.1), _face(3, 300, "lost"), _face(4, 400, "tentative"), _face(5, 500, alpha=0.0)
    assert [f.track_id for f in choose_faces([new_big, lost, tentative, faded, old_small], 10)] == [1, 2, 3]
    assert [f.track_id for f in choose_faces([new_big, lost, old_small], 1)] == [1]
    same_age = [_face(6, 80), _face(7, 120)]
    assert [f.track_id for f in choose_faces(same_age, 1)] == [7]


@pytest.mark.parametrize(
    ("count", "built", "expected"),
    [(1, [1, 2, 4], [(1, 1)]), (3, [1, 2, 4], [(4, 3)]), (4, [1, 2, 4], [(4, 4)]), (7, [1, 2, 4], [(4, 4), (4, 3)]),
     (8, [4, 1, 2], [(4, 4), (4, 4)]), (3, [1], [(1, 1)] * 3), (5, [2], [(2, 2), (2, 2), (2, 1)]), (0, [1], [])],
)
def test_split_batches_serves_any_count_with_the_sizes_built(count, built, expected):
    chunks = split_batches(count, built)
    assert chunks == expected
    assert sum(n for _, n in chunks) == count and all(n <= size and size in built for size, n in chunks)


def test_split_batches_needs_a_built_size():
    with pytest.raises(ValueError):
        split_batches(1, [])


def _three_tracks(frame_time: float = 0.0) -> list[Face]:
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128, fade_s=0.0))
    detections = [Detection(make_face_landmarks((x, 240), 40)) for x in (140, 320, 500)]
    return tracker.step(detections, frame_time, frame_time)


def test_more_tracks_than_built_batches_is_served_not_raised(target_checkpoint):
    """The tracker hands over three tracks; the stage was built for one face (batch 1 only)."""
    stage = SwapStage(SwapConfig(generator=str(target_checkpoint), target_identity=1, backends=("cpu",)), TrackConfig(crop_size=128), DetectConfig(max_faces=1))
    stage.setup()
    assert sorted(stage.runners) == [1]
    bundle = FrameBundle(0, 0, make_ground_truth_frame(0), 0.0, faces=_three_tracks())
    stage.process(bundle)
    assert sum(face.swapped is not None for face in bundle.faces) == 1  # --max-faces 1: the largest of three equal-age faces
    assert stage.describe()["faces_over_max_faces"] == 2


def test_more_faces_than_the_largest_built_batch_are_split(target_checkpoint):
    stage = SwapStage(SwapConfig(generator=str(target_checkpoint), target_identity=1, backends=("cpu",)), TrackConfig(crop_size=128), DetectConfig(max_faces=3))
    stage.setup()
    del stage.runners[4]  # as if only batches 1 and 2 had been built (engines for fewer faces)
    bundle = FrameBundle(0, 0, make_ground_truth_frame(0), 0.0, faces=_three_tracks())
    stage.process(bundle)
    assert all(face.swapped is not None for face in bundle.faces) and stage.faces_swapped == 3
    crops = [face.swapped.crop for face in bundle.faces]
    assert not np.array_equal(crops[0], crops[1])  # each face got its own result, not a neighbour's


# --- the face-safety policy, pixel by pixel -----------------------------------------------------


def _safety_bundle(frame: np.ndarray, tracker: FaceTracker, t: float, seen: bool) -> FrameBundle:
    bundle = FrameBundle(0, 0, frame.copy(), t)
    detections = [Detection(make_face_landmarks((320, 220), 60))] if seen else []
    bundle.faces = tracker.step(detections, t, t)
    bundle.tentative_faces = tracker.tentative
    return bundle


def _swap_with(bundle: FrameBundle, colour: np.ndarray = GREEN) -> None:
    for face in bundle.faces:
        if face.alpha > 0:
            face.swapped = HostSwapped(np.broadcast_to(colour, (face.crop_size, face.crop_size, 3)).copy())


def _swapped_then_lost(frame: np.ndarray, tracker: FaceTracker, stage: BlendStage) -> FrameBundle:
    """A face seen and swapped at 0 s, missed from 0.04 s, and past the 0.15 s coast at 0.5 s."""
    first = _safety_bundle(frame, tracker, 0.0, seen=True)
    _swap_with(first)
    stage.process(first)
    _safety_bundle(frame, tracker, 0.04, seen=False)  # the first miss: coasting
    return _safety_bundle(frame, tracker, 0.5, seen=False)


def _assert_covered(before: np.ndarray, after: np.ndarray, box: tuple[float, float, float, float]) -> None:
    """No pixel of the face's box keeps its own value: every 0 became at least 40, every 255 at most 215."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    difference = np.abs(after[y0:y1, x0:x1].astype(int) - before[y0:y1, x0:x1].astype(int))
    assert difference.min() >= 40, f"an input pixel reached the output (min change {difference.min()})"


def _blend(policy: str) -> BlendStage:
    from realtime.config import BlendConfig
    from realtime.live import LiveSettings

    return BlendStage(LiveSettings(BlendConfig(colour="off")), crop_size=128, face_safety=policy, hold_s=1.0)


@pytest.mark.parametrize("policy", ["blur", "pixelate", "hold"])
def test_a_new_face_is_covered_until_it_is_swapped(policy):
    frame = _checkerboard()
    tracker = FaceTracker(TrackConfig(birth_hits=3, crop_size=128), cover_lost_s=1.0)
    bundle = _safety_bundle(frame, tracker, 0.0, seen=True)
    assert not bundle.faces and len(bundle.tentative_faces) == 1
    _blend(policy).process(bundle)
    _assert_covered(frame, bundle.frame, bundle.tentative_faces[0].box)


def test_reveal_shows_a_new_face_as_today():
    """The control: without a covering policy the same frame passes untouched (so the checks above can fail)."""
    frame = _checkerboard()
    tracker = FaceTracker(TrackConfig(birth_hits=3, crop_size=128))
    bundle = _safety_bundle(frame, tracker, 0.0, seen=True)
    _blend("reveal").process(bundle)
    assert np.array_equal(bundle.frame, frame)


@pytest.mark.parametrize("policy", ["blur", "pixelate"])
def test_a_lost_face_is_covered(policy):
    frame = _checkerboard()
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128), cover_lost_s=1.0)
    stage = _blend(policy)
    lost = _swapped_then_lost(frame, tracker, stage)
    assert [face.state for face in lost.faces] == ["lost"] and lost.faces[0].alpha == 0.0
    stage.process(lost)
    _assert_covered(frame, lost.frame, lost.faces[0].box)


def test_hold_pastes_the_last_swap_over_a_lost_face_then_lets_it_go():
    frame = _checkerboard()
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128), cover_lost_s=1.0)
    stage = _blend("hold")
    lost = _swapped_then_lost(frame, tracker, stage)
    stage.process(lost)
    # the face's middle (well inside the feathered oval) is the held swap, exactly
    assert np.all(lost.frame[200:250, 290:350] == GREEN)
    assert stage.describe()["faces_covered"]["hold"] == 1
    gone = _safety_bundle(frame, tracker, 1.3, seen=False)  # past --cover-lost-s: the track has ended
    assert not gone.faces
    stage.process(gone)
    assert np.array_equal(gone.frame, frame)


def test_hold_covers_a_face_whose_held_swap_is_too_old():
    guard = FaceGuard("hold", hold_s=0.2)
    face = _face(1, 100)
    face.swapped = HostSwapped(np.zeros((128, 128, 3), np.uint8))
    face.blended = True
    guard.remember(FrameBundle(0, 0, np.zeros((8, 8, 3), np.uint8), 0.0, faces=[face]))
    later = _face(1, 100, state="lost", alpha=0.0)
    assert [c.action for c in guard.plan(FrameBundle(1, 0, np.zeros((8, 8, 3), np.uint8), 0.1, faces=[later]))] == ["hold"]
    assert [c.action for c in guard.plan(FrameBundle(2, 0, np.zeros((8, 8, 3), np.uint8), 0.5, faces=[later]))] == ["blur"]


@pytest.mark.parametrize("policy", ["blur", "pixelate", "hold"])
def test_a_frame_whose_swap_failed_is_covered(policy):
    frame = _checkerboard()
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128), cover_lost_s=1.0)
    bundle = _safety_bundle(frame, tracker, 0.0, seen=True)
    bundle.failed_stages.append("swap")  # the swap raised: no face has a crop
    _blend(policy).process(bundle)
    _assert_covered(frame, bundle.frame, bundle.faces[0].box)


@pytest.mark.parametrize("policy", ["blur", "pixelate"])
def test_a_frame_whose_blend_failed_is_covered_and_the_error_still_counts(policy):
    frame = _checkerboard()
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128), cover_lost_s=1.0)
    bundle = _safety_bundle(frame, tracker, 0.0, seen=True)
    for face in bundle.faces:
        face.swapped = HostSwapped(np.zeros((7, 3), np.uint8))  # a broken crop: the paste raises
    stage = _blend(policy)
    with pytest.raises(ValueError, match="reshape"):  # the paste's own error, not any error on the way
        stage.process(bundle)
    _assert_covered(frame, bundle.frame, bundle.faces[0].box)
    assert stage.describe()["faces_covered"][policy] == 1 and stage.describe()["cover_failures"] == 0  # covered by the policy, drawn
    # in the pipeline: the stage's worker counts the error once, marks the frame, and the frame goes on covered
    failures: list[tuple[str, Exception]] = []

    class Supervisor:
        stop_event = None

        def frame_failed(self, stage: str, bundle: FrameBundle, error: Exception) -> None:
            failures.append((stage, error))

        def frame_succeeded(self, stage: str) -> None:
            raise AssertionError("a blend that raised was counted as a success")

    again = _safety_bundle(frame, FaceTracker(TrackConfig(birth_hits=1, crop_size=128), cover_lost_s=1.0), 0.0, seen=True)
    for face in again.faces:
        face.swapped = HostSwapped(np.zeros((7, 3), np.uint8))
    worker = StageWorker(_blend(policy), None, None, Supervisor())  # type: ignore[arg-type]
    result = worker._process(again)
    assert [(name, type(error)) for name, error in failures] == [("blend", ValueError)] and result.failed_stages == ["blend"]
    _assert_covered(frame, result.frame, result.faces[0].box)


def test_a_frame_whose_track_stage_failed_covers_the_last_known_faces():
    frame = _checkerboard()
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128), cover_lost_s=1.0)
    stage = _blend("pixelate")
    first = _safety_bundle(frame, tracker, 0.0, seen=True)
    _swap_with(first)
    stage.process(first)
    failed = FrameBundle(1, 0, frame.copy(), 0.04, failed_stages=["track"])
    stage.process(failed)
    _assert_covered(frame, failed.frame, first.faces[0].box)


def test_covering_turns_the_fades_off():
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128, fade_s=0.25), cover_lost_s=1.0)
    faces = tracker.step([Detection(make_face_landmarks((320, 220), 60))], 0.0, 0.0)
    assert faces[0].alpha == 1.0  # no fade-in from the real face
    assert tracker.step([], 0.1, 0.1)[0].alpha == 1.0  # coasting
    lost = tracker.step([], 0.3, 0.3)[0]
    assert lost.state == "lost" and lost.alpha == 0.0
    assert tracker.step([], 1.2, 1.2)  # kept for --cover-lost-s past the coast (first missed at 0.1 s)
    assert not tracker.step([], 1.3, 1.3)


def test_cover_helpers():
    assert covered_box((100, 100, 200, 200), 640, 480) == (85, 85, 215, 215)
    assert covered_box((-50, -50, 10, 10), 640, 480)[:2] == (0, 0)
    weights = feather_weights((10, 10, 20, 20), (0, 0, 30, 30), 10.0)
    assert weights[15, 15] == 1.0 and weights[0, 0] == 0.0 and 0 < weights[15, 5] < 1
    frame = _checkerboard(100, 100)
    assert cover_face(frame, (200, 200, 300, 300), "blur") is None  # off the frame
    assert np.array_equal(frame, _checkerboard(100, 100))


def test_face_safety_config():
    assert resolve_face_safety("auto", live=True) == "hold"
    assert resolve_face_safety("auto", live=False) == "reveal"
    assert resolve_face_safety("pixelate", live=False) == "pixelate"
    with pytest.raises(ConfigError, match="--cover-lost-s"):
        SafetyConfig(cover_lost_s=-1)


# --- scene cuts -----------------------------------------------------------------------------------


def _shot(which: int, index: int) -> np.ndarray:
    """Two shots of a montage: the astronaut on a grey ground, and a second, different person (the
    photo mirrored, recoloured, moved) on a dark blue one."""
    frame = make_ground_truth_frame(index, sensor_noise=2.0, seed=which)
    if which == 1:
        frame = np.ascontiguousarray(frame[:, ::-1, ::-1])
        frame[frame.sum(axis=2) < 200] = (20, 30, 90)
    return frame


def test_scene_cut_detector_tells_cuts_from_motion_and_exposure():
    a0, a1, a59, a60 = (thumbnail(_shot(0, i)) for i in (0, 1, 59, 60))
    b0 = thumbnail(_shot(1, 0))
    assert not is_scene_cut(a0, a1, 0.5) and not is_scene_cut(a59, a60, 0.5)  # noise; the photo sliding
    assert is_scene_cut(a0, b0, 0.5) and is_scene_cut(b0, a0, 0.5)
    brighter = thumbnail(np.clip(_shot(0, 1).astype(int) + 40, 0, 255).astype(np.uint8))
    assert changed_fraction(a0, brighter) < 0.2  # a change of exposure is not a cut
    assert not is_scene_cut(None, a0, 0.5) and not is_scene_cut(a0, b0, 0.0)


def test_a_montage_of_two_faces_ends_tracks_at_the_cut_and_never_pastes_the_last_shot():
    """Shot A: a face on the left for 10 frames; cut; shot B: another face on the right. The
    detector is faked (landmarks where each shot's face is) and misses the first frames of B, as
    a real one does; a late detection from shot A arrives after the cut."""
    track = TrackStage(TrackConfig(birth_hits=2, crop_size=128), cover_lost_s=1.0)
    blend = _blend("pixelate")
    left, right = make_face_landmarks((200, 220), 60), make_face_landmarks((450, 240), 55)
    ids_a: set[int] = set()
    ids_b: set[int] = set()
    for index in range(20):
        t = index / 25
        shot = 0 if index < 10 else 1
        frame = _shot(shot, index)
        bundle = FrameBundle(index, 0, frame.copy(), t)
        if shot == 0:
            bundle.detections, bundle.detections_media_time_s = [Detection(left)], t
        elif index == 10:
            bundle.detections, bundle.detections_media_time_s = [Detection(left)], 9 / 25  # late, from shot A
        elif index >= 13:
            bundle.detections, bundle.detections_media_time_s = [Detection(right)], t
        track.process(bundle)
        _swap_with(bundle)
        blend.process(bundle)
        (ids_a if shot == 0 else ids_b).update(face.track_id for face in bundle.faces)
        if shot == 1:
            # shot A's swap is never pasted into shot B; its box stays covered (blurred, a safe miss)
            # only until the detector reports on a frame of the new shot (frame 13), then it is gone
            x0, y0, x1, y1 = covered_box(box_from_landmarks(left), 640, 480)
            assert not np.all(bundle.frame[y0:y1, x0:x1] == GREEN, axis=-1).any(), f"frame {index}: the last shot's swap is pasted"
            if index >= 13:
                assert np.array_equal(bundle.frame[y0:y1, x0:x1], frame[y0:y1, x0:x1]), f"frame {index}: the last shot's box is still covered"
        assert bundle.scene_cut == (index == 10)
    assert ids_a and ids_b and not ids_a & ids_b  # no id carried across the cut
    assert track.describe()["scene_cuts"] == 1 and track.describe()["tracks_ended_by_cuts"] == 1


def test_scene_cut_can_be_turned_off():
    with pytest.raises(ConfigError, match="--scene-cut"):
        TrackConfig(scene_cut=1.5)
    track = TrackStage(TrackConfig(birth_hits=1, crop_size=128, scene_cut=0.0))
    for index, shot in enumerate((0, 1)):
        bundle = FrameBundle(index, 0, _shot(shot, index), index / 25)
        track.process(bundle)
        assert not bundle.scene_cut


@pytest.mark.gpu
@pytest.mark.parametrize("policy", ["pixelate", "hold"])
def test_on_cuda_faces_left_unswapped_are_covered_after_the_frames_download(target_checkpoint, policy):
    """The GPU path: frames kept on the device, three tracks but batches built for one face
    (--max-faces 1): one is swapped and blended on the GPU, the other two, and a new face, are
    covered on the host frame once it is back; and more faces than built batches go in chunks."""
    from realtime.config import BlendConfig
    from realtime.gpu.frames import DeviceFrames
    from realtime.live import LiveSettings

    frames = DeviceFrames("cuda")
    stage = SwapStage(SwapConfig(generator=str(target_checkpoint), target_identity=1, backends=("eager-cuda",)), TrackConfig(crop_size=128), DetectConfig(max_faces=1), frames=frames)
    stage.setup()
    blend = BlendStage(LiveSettings(BlendConfig(colour="off")), device="cuda", crop_size=128, face_safety=policy, hold_s=1.0)
    blend.setup()
    frame = _checkerboard()
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128), cover_lost_s=1.0)
    bundle = FrameBundle(0, 0, frame.copy(), 0.0)
    bundle.faces = tracker.step([Detection(make_face_landmarks((x, 240), 40)) for x in (140, 320, 500)], 0.0, 0.0)
    bundle.device_frame = frames.upload(bundle.frame)
    stage.process(bundle)
    blend.process(bundle)
    bundle.wait_for_frame()
    swapped = [face for face in bundle.faces if face.blended]
    assert len(swapped) == 1
    for face in bundle.faces:
        if not face.blended:
            _assert_covered(frame, bundle.frame, face.box)
    stage.detect = DetectConfig(max_faces=3)  # three faces through batch 1 only: three chunks on the device
    again = FrameBundle(1, 0, frame.copy(), 0.02, faces=tracker.step([Detection(make_face_landmarks((x, 240), 40)) for x in (140, 320, 500)], 0.02, 0.02))
    again.device_frame = frames.upload(again.frame)
    stage.process(again)
    assert all(face.swapped is not None and face.swapped.on_device for face in again.faces) and sorted(stage.runners) == [1]


def test_hold_pastes_a_swap_that_was_left_on_the_device():
    """On the GPU path the held swap is a device tensor (the blend composited it there): it comes
    back to the host to be pasted over the lost face."""
    frame = _checkerboard()
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128), cover_lost_s=1.0)
    stage = _blend("hold")
    first = _safety_bundle(frame, tracker, 0.0, seen=True)
    for face in first.faces:  # what the GPU composite leaves: crops on the device only, marked blended
        face.swapped = Swapped(torch.from_numpy(np.broadcast_to(GREEN, (128, 128, 3)).copy()))
        face.blended = True
    stage.guard.remember(first)
    _safety_bundle(frame, tracker, 0.04, seen=False)
    lost = _safety_bundle(frame, tracker, 0.5, seen=False)
    stage.process(lost)
    assert np.all(lost.frame[200:250, 290:350] == GREEN) and stage.describe()["faces_covered"]["hold"] == 1
