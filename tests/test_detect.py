"""The landmarker on real pixels: the ground-truth clip, real clips from ../shared, bad models.

The model comes from ../shared/models (or $REALTIME_FACE_LANDMARKER); without it these tests skip,
so the suite never downloads anything."""

import os
from pathlib import Path

import numpy as np
import pytest

from realtime.bundle import FrameBundle
from realtime.cli import main
from realtime.config import DetectConfig, TrackConfig
from realtime.errors import ModelError
from realtime.io.track_log import load_track_log
from realtime.models.landmarker import downscale_for_detection
from realtime.stages.detect import DetectStage
from realtime.stages.track import TrackStage
from realtime.testing import make_ground_truth_frame, track_ground_truth_clip
from realtime.vision import metrics


@pytest.fixture(scope="module")
def model_path() -> Path:
    from conftest import shared_dir

    candidates = [os.environ.get("REALTIME_FACE_LANDMARKER")]
    if shared_dir() is not None:
        candidates.append(str(shared_dir() / "models" / "face_landmarker.task"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    pytest.skip("no face_landmarker.task in ../shared/models or $REALTIME_FACE_LANDMARKER")


def _bundle(index: int, frame: np.ndarray, fps: float = 30.0) -> FrameBundle:
    return FrameBundle(index, 0, frame, index / fps)


def test_downscale_keeps_aspect():
    frame = np.zeros((1080, 1920, 3), np.uint8)
    assert downscale_for_detection(frame, 640).shape == (360, 640, 3)
    small = np.zeros((100, 100, 3), np.uint8)
    assert downscale_for_detection(small, 640) is small


def test_corrupt_model_fails_before_the_first_frame(tmp_path: Path):
    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(b"not a model")
    stage = DetectStage(DetectConfig(landmarker_model=str(bad)), asynchronous=False)
    with pytest.raises(ModelError, match="wrong checksum"):
        stage.setup()


def test_wrong_model_fails_even_when_forced(tmp_path: Path):
    bad = tmp_path / "face_landmarker.task"
    bad.write_bytes(b"not a model")
    stage = DetectStage(DetectConfig(), asynchronous=False, model_path=bad)
    with pytest.raises(ModelError, match="cannot load"):
        stage.setup()


@pytest.fixture(scope="module")
def ground_truth_run(model_path):
    """Detect and track the ground-truth clip (6 s: still, sliding, still, turning, still), with
    the sensor noise of a webcam in ordinary indoor light."""
    return track_ground_truth_clip(180, sensor_noise=8.0, model_path=model_path)


def test_ground_truth_tracking_error_and_jitter(ground_truth_run):
    raw, smoothed, truth = ground_truth_run
    # Still stretches, from 0.5 s after each movement ends (the filter's settling time, which
    # docs/BENCHMARKS-HISTORY.md measures separately).
    still = np.zeros(len(raw), bool)
    still[5:45] = still[90:120] = still[165:] = True

    def jitter(track):  # frame-to-frame motion of the error: exact, since the truth is known
        step = np.linalg.norm(np.diff(track - truth, axis=0), axis=-1).mean(axis=1)
        return step[still[1:] & still[:-1]].mean()

    error_raw = np.linalg.norm(raw - truth, axis=-1).mean()
    error_smoothed = np.linalg.norm(smoothed - truth, axis=-1).mean()
    assert error_smoothed < 4.0 and error_raw < 4.0  # pixels, on a face ~70 px between the eyes
    assert jitter(smoothed) <= 0.5 * jitter(raw)


def test_ground_truth_lag_at_most_one_frame(ground_truth_run):
    raw, smoothed, truth = ground_truth_run
    moving = np.zeros(len(raw), bool)
    moving[47:75] = moving[122:150] = True
    assert metrics.lag_frames(smoothed, truth, moving) <= 1.0


def test_async_detection_never_blocks_and_the_tracker_predicts(model_path):
    detect = DetectStage(DetectConfig(), asynchronous=True, model_path=model_path)
    track = TrackStage(TrackConfig(birth_hits=1))
    detect.setup()
    try:
        results, faces = 0, 0
        for i in range(40):
            bundle = track.process(detect.process(_bundle(i, make_ground_truth_frame(i))))
            results += bundle.detections is not None
            faces += len(bundle.faces)
            import time

            time.sleep(0.005)  # frames arrive faster than the landmarker: some get no new result
        assert 0 < results < 40
        assert faces >= 30
    finally:
        detect.teardown()


def test_small_faces_are_ignored(model_path):
    detect = DetectStage(DetectConfig(min_face_px=500), asynchronous=False, model_path=model_path)
    detect.setup()
    try:
        bundle = detect.process(_bundle(0, make_ground_truth_frame(0)))
    finally:
        detect.teardown()
    assert bundle.detections == [] and detect.small_faces_ignored == 1


@pytest.mark.shared
def test_track_command_on_a_real_clip(shared, model_path, tmp_path, monkeypatch):
    monkeypatch.setenv("REALTIME_FACE_LANDMARKER", str(model_path))
    out = tmp_path / "track.json"
    clip = shared / "data" / "videos" / "liveportrait_d0.mp4"
    assert main(["track", "--input", str(clip), "--json", str(out), "--quiet", "--birth-hits", "1"]) == 0
    log = load_track_log(out)
    assert log.detector_ran.all()
    assert metrics.detection_rate(log.detection_counts) == 1.0
    assert list(log.smoothed) == [1]  # one face, one id, the whole clip
    assert np.isfinite(log.smoothed[1]).all()


@pytest.mark.shared
def test_track_log_carries_blendshapes_and_head_pose_when_asked(shared, model_path, tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("REALTIME_FACE_LANDMARKER", str(model_path))
    out = tmp_path / "track.json"
    clip = shared / "data" / "videos" / "liveportrait_d0.mp4"
    assert main(["track", "--input", str(clip), "--json", str(out), "--quiet", "--birth-hits", "1", "--max-frames", "5", "--blendshapes", "--head-pose"]) == 0
    track = json.loads(out.read_text())["frames"][2]["tracks"][0]
    assert len(track["blendshapes"]) == 52 and "jawOpen" in track["blendshapes"]
    assert np.array(track["head_pose"]).shape == (4, 4)


def test_quiet_native_stderr_from_many_threads_always_restores_fd2_and_keeps_our_log_lines(tmp_path):
    """Two stages build graphs at once: fd 2 must come back, and log lines written meanwhile
    must reach the real stderr (here a file standing in for the terminal)."""
    import logging
    import os
    import threading

    from realtime.models.landmarker import quiet_native_stderr

    target = tmp_path / "stderr.txt"
    saved = os.dup(2)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT)
    os.dup2(fd, 2)
    logger = logging.getLogger("realtime")
    handler = logging.StreamHandler(open(2, "w", buffering=1, closefd=False))  # fd 2, as the CLI's handler
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    barrier = threading.Barrier(8)

    def build(index: int) -> None:
        barrier.wait()
        for _ in range(20):
            with quiet_native_stderr():
                os.write(2, b"native chatter\n")
                logger.info("status line %d", index)

    try:
        threads = [threading.Thread(target=build, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        os.write(2, b"final error line\n")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
    text = target.read_text()
    assert "native chatter" not in text
    assert text.count("status line") == 160 and text.endswith("final error line\n")
