"""Face safety at its edges, from what the viewer would see go wrong: the operator's privacy switch
over faces not confirmed yet, a cover that cannot be drawn, and detections taken before a scene
cut that arrive after it. Every 'face' is 1-px black and white checks, which no cover reproduces:
a pixel of it that reaches the output unchanged is the real face on air."""

import numpy as np
import pytest

from realtime.bundle import Detection, FrameBundle, HostSwapped
from realtime.config import TrackConfig
from realtime.live import LiveSettings
from realtime.stages.blend import BlendStage
from realtime.stages.blend.guard import HeldSwap
from realtime.stages.track import FaceTracker, TrackStage
from realtime.testing import make_face_landmarks
from realtime.vision.cover import covered_box
from realtime.vision.landmarks import box_from_landmarks

LEFT, RIGHT = make_face_landmarks((180, 240), 60), make_face_landmarks((470, 240), 60)
GREEN = np.array([0, 255, 0], np.uint8)


def _checkerboard(height: int = 480, width: int = 640) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.repeat((((ys + xs) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)


def _real_pixels(before: np.ndarray, after: np.ndarray, landmarks: np.ndarray) -> int:
    """Pixels of the face's box that came through unchanged: the real face, on air."""
    x0, y0, x1, y1 = (int(round(v)) for v in box_from_landmarks(landmarks))
    return int(np.sum(np.all(before[y0:y1, x0:x1] == after[y0:y1, x0:x1], axis=-1)))


def _blend(policy: str, settings: LiveSettings | None = None) -> BlendStage:
    settings = settings or LiveSettings()
    settings.update("blend", colour="off")
    return BlendStage(settings, crop_size=128, face_safety=policy, hold_s=1.0)


def _swap_green(bundle: FrameBundle) -> None:
    for face in bundle.faces:
        if face.alpha > 0:
            face.swapped = HostSwapped(np.broadcast_to(GREEN, (face.crop_size, face.crop_size, 3)).copy())


# --- the privacy switch ------------------------------------------------------------------------


def _confirmed_and_new(policy_covers: bool) -> tuple[FrameBundle, np.ndarray]:
    """A frame with a confirmed face on the left (seen three times) and a new one on the right
    (seen once: tentative, not swapped yet)."""
    tracker = FaceTracker(TrackConfig(birth_hits=3, crop_size=128), cover_lost_s=1.0 if policy_covers else None)
    for i in range(2):
        tracker.step([Detection(LEFT)], i / 25, i / 25)
    frame = _checkerboard()
    bundle = FrameBundle(2, 0, frame.copy(), 2 / 25)
    bundle.faces = tracker.step([Detection(LEFT), Detection(RIGHT)], 2 / 25, 2 / 25)
    bundle.tentative_faces = tracker.tentative
    assert [f.state for f in bundle.faces] == ["live"] and len(bundle.tentative_faces) == 1
    return bundle, frame


@pytest.mark.parametrize("policy", ["reveal", "hold", "blur", "pixelate"])
def test_the_privacy_switch_blurs_faces_not_confirmed_yet(policy):
    """The operator pressed 'blur' (the panel's privacy switch): every face is hidden, including one
    the tracker has seen only once — whatever the face-safety policy says, 'reveal' included."""
    controls = LiveSettings()
    controls.update("choice", mode="blur")
    bundle, frame = _confirmed_and_new(policy != "reveal")
    stage = _blend(policy, controls)
    stage.process(bundle)
    assert _real_pixels(frame, bundle.frame, RIGHT) == 0, "the new face is on air under the privacy switch"
    assert _real_pixels(frame, bundle.frame, LEFT) == 0, "the confirmed face is on air under the privacy switch"
    assert stage.describe()["faces_covered"]["blur"] == 2


def test_the_privacy_switch_blurs_a_face_even_where_a_swap_was_made():
    """A swap made before the switch landed (the swap stage read the old choice) is not pasted:
    the blend reads the switch too, and the face is blurred, not swapped and not shown."""
    controls = LiveSettings()
    bundle, frame = _confirmed_and_new(True)
    _swap_green(bundle)
    controls.update("choice", mode="blur")
    _blend("hold", controls).process(bundle)
    assert _real_pixels(frame, bundle.frame, LEFT) == 0 and _real_pixels(frame, bundle.frame, RIGHT) == 0


def test_original_mode_shows_every_face_as_it_is():
    """The control: the operator chose 'original', so nothing is covered — the checks above can fail."""
    controls = LiveSettings()
    controls.update("choice", mode="original")
    bundle, frame = _confirmed_and_new(True)
    _blend("blur", controls).process(bundle)
    assert np.array_equal(bundle.frame, frame)


# --- a cover that cannot be drawn ----------------------------------------------------------------


def _broken_hold(frame: np.ndarray) -> tuple[BlendStage, FrameBundle]:
    """'hold' with a held swap that cannot be pasted (a crop of the wrong shape, as a corrupted
    GPU download would leave), over the left face once it is lost; the right face is new."""
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128), cover_lost_s=1.0)
    stage = _blend("hold")
    first = FrameBundle(0, 0, frame.copy(), 0.0)
    first.faces = tracker.step([Detection(LEFT)], 0.0, 0.0)
    stage.guard.remember(first)
    stage.guard._held[first.faces[0].track_id] = HeldSwap(np.zeros((7, 3), np.uint8), None, 0.0)
    tracker.step([], 0.04, 0.04)
    lost = FrameBundle(1, 0, frame.copy(), 0.5)
    lost.faces = tracker.step([Detection(RIGHT)], 0.5, 0.5)
    lost.tentative_faces = tracker.tentative
    return stage, lost


def test_a_cover_that_cannot_be_drawn_is_a_flat_grey_box_over_the_whole_covered_area():
    """Drawing the held swap raises: the viewer sees a flat grey box where the cover would have
    been (the same area a blur would replace), never the face; the failure is counted and the
    frame goes on (no exception: a streamer must not see a frozen feed)."""
    frame = _checkerboard()
    stage, bundle = _broken_hold(frame)
    lost = next(face for face in bundle.faces if face.state == "lost")
    assert [c.action for c in stage.guard.plan(bundle) if c.face is lost] == ["hold"]
    stage.process(bundle)
    x0, y0, x1, y1 = covered_box(lost.box, bundle.width, bundle.height)
    assert np.all(bundle.frame[y0:y1, x0:x1] == 128), "the failed cover left something other than flat grey"
    assert _real_pixels(frame, bundle.frame, LEFT) == 0
    assert stage.describe()["cover_failures"] == 1


def test_a_failed_cover_does_not_stop_the_others_being_drawn():
    """The new face on the right, whose cover comes after the failed one, is still blurred, and
    the picture outside the covers is untouched."""
    frame = _checkerboard()
    stage, bundle = _broken_hold(frame)
    stage.process(bundle)
    assert _real_pixels(frame, bundle.frame, RIGHT) == 0, "a cover after the failed one was skipped"
    right = covered_box(box_from_landmarks(RIGHT), 640, 480)
    assert not np.all(bundle.frame[right[1]:right[3], right[0]:right[2]] == 128)  # blurred, not failed
    assert np.array_equal(bundle.frame[:, 600:], frame[:, 600:]) and np.array_equal(bundle.frame[:40], frame[:40])
    assert stage.describe()["faces_covered"] == {"hold": 1, "blur": 1, "pixelate": 0}


def test_a_blur_that_cannot_be_drawn_is_grey_too(monkeypatch):
    """Any cover, not only 'hold': the blur itself raising (out of memory, say) gives grey, not the face."""
    import realtime.stages.blend.stage as blend_stage

    def broken(*args, **kwargs):
        raise MemoryError("no memory for the blur")

    monkeypatch.setattr(blend_stage, "cover_face", broken)
    frame = _checkerboard()
    tracker = FaceTracker(TrackConfig(birth_hits=3, crop_size=128), cover_lost_s=1.0)
    bundle = FrameBundle(0, 0, frame.copy(), 0.0)
    bundle.faces = tracker.step([Detection(LEFT), Detection(RIGHT)], 0.0, 0.0)
    bundle.tentative_faces = tracker.tentative
    stage = _blend("blur")
    stage.process(bundle)
    assert _real_pixels(frame, bundle.frame, LEFT) == 0 and _real_pixels(frame, bundle.frame, RIGHT) == 0
    assert stage.describe()["cover_failures"] == 2


# --- detections from before a cut ----------------------------------------------------------------


def _shot(which: int) -> np.ndarray:
    """Two shots (the light runs left to right in A, top to bottom in B), each with its 'face':
    on the left in A, on the right in B."""
    ys, xs = np.mgrid[0:480, 0:640].astype(np.float32)
    frame = np.repeat(((xs / 640 if which == 0 else ys / 480) * 255).astype(np.uint8)[..., None], 3, axis=2)
    x0, y0, x1, y1 = (int(round(v)) for v in box_from_landmarks(LEFT if which == 0 else RIGHT))
    frame[y0:y1, x0:x1] = _checkerboard()[y0:y1, x0:x1]
    return frame


def _late_detector_montage(policy: str, lag: int, birth_hits: int = 1, controls: LiveSettings | None = None) -> list[tuple[int, FrameBundle, np.ndarray]]:
    """Shot A for 8 frames, then shot B. The detector finds each frame's face and reports ``lag``
    frames late: the first ``lag`` reports delivered in shot B were taken in shot A."""
    track = TrackStage(TrackConfig(birth_hits=birth_hits, crop_size=128), cover_lost_s=1.0 if policy != "reveal" else None)
    blend = _blend(policy, controls)
    taken: list[tuple[list[Detection], float]] = []
    out = []
    for index in range(14):
        t = index / 25
        shot = 0 if index < 8 else 1
        taken.append(([Detection(LEFT if shot == 0 else RIGHT)], t))
        frame = _shot(shot)
        bundle = FrameBundle(index, 0, frame.copy(), t)
        if len(taken) > lag:
            bundle.detections, bundle.detections_media_time_s = taken.pop(0)
        track.process(bundle)
        _swap_green(bundle)
        blend.process(bundle)
        out.append((shot, bundle, frame))
    return out


@pytest.mark.parametrize("lag", [1, 2, 3])
def test_detections_from_before_a_cut_are_never_applied_to_the_new_shot(lag):
    """The cut is at frame 8; the reports delivered on frames 8 .. 8+lag-1 were taken in shot A.
    None of them makes a face in shot B (no swap pasted where shot A's face was), and none counts
    as the detector having seen shot B: the new shot stays covered whole until a report of it."""
    frames = _late_detector_montage("hold", lag)
    for shot, bundle, frame in frames:
        if shot == 0:
            continue
        stale = bundle.frame_id < 8 + lag
        if stale:
            assert bundle.faces == [] and bundle.blind, f"frame {bundle.frame_id}: a report from the last shot was applied"
            assert _real_pixels(frame, bundle.frame, RIGHT) == 0, f"frame {bundle.frame_id}: the new shot's face is on air"
        x0, y0, x1, y1 = covered_box(box_from_landmarks(LEFT), 640, 480)
        assert not np.all(bundle.frame[y0:y1, x0:x1] == GREEN, axis=-1).any(), f"frame {bundle.frame_id}: the last shot's swap is pasted"
    # the first report of shot B ends the blindness, and its face is tracked (and swapped) from there
    first_b = frames[8 + lag][1]
    assert not first_b.blind and [f.state for f in first_b.faces] == ["live"]
    assert first_b.faces[0].box == pytest.approx(box_from_landmarks(RIGHT), abs=1.0)


def test_a_report_taken_on_the_cut_frame_itself_counts_for_the_new_shot():
    """The boundary: a report taken at the cut's own time saw the new shot (an in-sync detector),
    so no frame of shot B is blind or without its face."""
    frames = _late_detector_montage("hold", lag=0)
    assert [b.frame_id for _, b, _ in frames if b.blind] == []
    assert all(len(b.faces) == 1 for shot, b, _ in frames if shot == 1)


def test_a_stale_report_does_not_end_the_blindness_under_reveal_either():
    """Under 'reveal' nothing is covered, but a stale report must still not make a face in shot B
    where shot A's face was (it would be swapped there: a stranger's swap on the new shot)."""
    for shot, bundle, _ in _late_detector_montage("reveal", lag=2):
        if shot == 1 and bundle.frame_id < 10:
            assert bundle.faces == [] and bundle.tentative_faces == []


def test_the_privacy_switch_keeps_a_blind_frame_covered_whole():
    """With the privacy switch on, the frames after a cut whose faces nobody has located yet are
    still covered whole (the switch blurs the faces it knows of; there are none known yet)."""
    controls = LiveSettings()
    controls.update("choice", mode="blur")
    frames = _late_detector_montage("pixelate", lag=2, controls=controls)
    assert [b.frame_id for _, b, _ in frames if b.blind] == [0, 1, 8, 9]  # the start and the cut, until a report of the shot
    for shot, bundle, frame in frames:
        assert _real_pixels(frame, bundle.frame, LEFT if shot == 0 else RIGHT) == 0, f"frame {bundle.frame_id}: a face on air"


# --- decisions the guard makes without pixels ------------------------------------------------------


@pytest.mark.parametrize(("policy", "expected"), [("pixelate", "pixelate"), ("blur", "blur"), ("hold", "blur"), ("reveal", None)])
def test_a_blind_frame_is_covered_in_the_policys_own_style(policy, expected):
    """Under 'pixelate' the viewer sees a cut's blind frame pixelated like every covered face, under
    'blur' and 'hold' blurred (nothing to hold on a new shot), under 'reveal' as it is; a frame
    that is not blind is never covered whole."""
    from realtime.stages.blend.guard import FaceGuard

    guard = FaceGuard(policy, hold_s=1.0)
    blind = FrameBundle(0, 0, np.zeros((8, 8, 3), np.uint8), 0.0)
    blind.blind = True
    assert guard.frame_cover(blind) == expected
    assert guard.frame_cover(FrameBundle(1, 0, np.zeros((8, 8, 3), np.uint8), 0.04)) is None


def test_a_track_failure_after_the_face_left_covers_nothing_stale():
    """The last frame's faces stand in when the track stage fails. Once the face has gone (frames
    with no face, the track ended), a track failure must not blot the picture where it used to be."""
    frame = _checkerboard()
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128, coast_s=0.0), cover_lost_s=0.1)
    stage = _blend("pixelate")
    for i, seen in enumerate([True, False, False, False, False]):
        bundle = FrameBundle(i, 0, frame.copy(), i * 0.1)
        bundle.faces = tracker.step([Detection(LEFT)] if seen else [], i * 0.1, i * 0.1)
        bundle.tentative_faces = tracker.tentative
        stage.process(bundle)
    assert bundle.faces == [] and bundle.tentative_faces == []  # the track has ended
    failed = FrameBundle(5, 0, frame.copy(), 0.5, failed_stages=["track"])
    stage.process(failed)
    assert np.array_equal(failed.frame, frame), "a face that has gone was covered again"


def test_faces_over_max_faces_are_counted_each_frame_they_are_covered():
    from realtime.stages.blend.guard import Cover, FaceGuard

    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128))
    faces = tracker.step([Detection(LEFT), Detection(RIGHT)], 0.0, 0.0)
    faces[1].other = True  # the passer-by past --max-faces 1
    guard = FaceGuard("blur", hold_s=1.0)
    for _ in range(3):
        guard.count([Cover(faces[0], "blur"), Cover(faces[1], "blur")])
    assert guard.others_covered == 3 and guard.covered["blur"] == 6


def test_a_revealed_passer_by_does_not_uncover_the_faces_after_it():
    """--others reveal shows a face over --max-faces as it is; every other unswapped face of the
    frame (listed after it) is still covered."""
    from realtime.stages.blend.guard import FaceGuard

    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128), cover_lost_s=1.0)
    faces = tracker.step([Detection(LEFT), Detection(RIGHT)], 0.0, 0.0)
    faces[0].other = True
    guard = FaceGuard("blur", hold_s=1.0, others="reveal")
    covers = guard.plan(FrameBundle(0, 0, np.zeros((8, 8, 3), np.uint8), 0.0, faces=faces))
    assert [c.face.track_id for c in covers] == [faces[1].track_id] and guard.others_revealed == 1


def test_hold_lasts_hold_s_from_the_swap_whenever_it_was_made():
    """'hold' pastes a lost face's last swap for hold_s after it was made — at 10 s into a run as
    at 0 s — and never over a tentative face (one the tracker has not confirmed is not that person)."""
    from realtime.stages.blend.guard import FaceGuard

    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128), cover_lost_s=1.0)
    (face,) = tracker.step([Detection(LEFT)], 10.0, 10.0)
    face.swapped = HostSwapped(np.zeros((128, 128, 3), np.uint8), None)
    face.blended = True
    guard = FaceGuard("hold", hold_s=0.2)
    guard.remember(FrameBundle(0, 0, np.zeros((8, 8, 3), np.uint8), 10.0, faces=[face]))
    face.blended = False
    plan = lambda t, f: [c.action for c in guard.plan(FrameBundle(1, 0, np.zeros((8, 8, 3), np.uint8), t, faces=[f]))]  # noqa: E731
    assert plan(10.1, face) == ["hold"] and plan(10.5, face) == ["blur"]
    import dataclasses

    assert plan(10.1, dataclasses.replace(face, state="tentative")) == ["blur"]


def test_two_track_failures_in_a_row_are_both_covered():
    """The last faces stand in for a failed track stage on every failed frame, not only the first."""
    frame = _checkerboard()
    tracker = FaceTracker(TrackConfig(birth_hits=1, crop_size=128), cover_lost_s=1.0)
    stage = _blend("pixelate")
    first = FrameBundle(0, 0, frame.copy(), 0.0)
    first.faces = tracker.step([Detection(LEFT)], 0.0, 0.0)
    stage.process(first)
    for i in (1, 2):
        failed = FrameBundle(i, 0, frame.copy(), i * 0.04, failed_stages=["track"])
        stage.process(failed)
        assert _real_pixels(frame, failed.frame, LEFT) == 0, f"failed frame {i}: the face is on air"
