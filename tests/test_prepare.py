"""Training data preparation on a few images and a short clip."""

import json
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.cli import main
from realtime.testing import make_face_landmarks, make_ground_truth_frame
from realtime.train.prepare import utkface_age
from realtime.vision.landmarks import yaw_proxy


def test_utkface_age_and_yaw():
    assert utkface_age(Path("9_1_0_20170109.jpg.chip.jpg")) == 9
    assert utkface_age(Path("Aaron_Eckhart_0001.jpg")) is None
    frontal = make_face_landmarks((100, 100), 50)
    assert abs(yaw_proxy(frontal)) < 0.05
    turned = frontal.copy()
    turned[1, 0] += 20  # the nose tip moves across the eye line
    assert yaw_proxy(turned) > 0.3


@pytest.fixture
def dataset_inputs(tmp_path: Path) -> Path:
    from conftest import has_face_model

    if not has_face_model():
        pytest.skip("no face_landmarker.task available offline")
    root = tmp_path / "faces"
    for person, frames in (("Alice", (0, 60)), ("Bob", (30,))):
        (root / person).mkdir(parents=True)
        for index in frames:
            cv2.imwrite(str(root / person / f"{person}_{index:04d}.jpg"), cv2.cvtColor(make_ground_truth_frame(index), cv2.COLOR_RGB2BGR))
    utk = root / "utk"
    utk.mkdir()
    face = cv2.cvtColor(make_ground_truth_frame(10), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(utk / "12_0_0_20170110.jpg.chip.jpg"), face)  # a minor: must be excluded
    cv2.imwrite(str(utk / "35_1_0_20170110.jpg.chip.jpg"), face)
    cv2.imwrite(str(root / "Bob" / "empty.png"), np.full((200, 200, 3), 80, np.uint8))  # no face
    # a clip that holds still: near-identical frames are kept once
    import av

    with av.open(str(tmp_path / "still.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        frame = make_ground_truth_frame(0, sensor_noise=0)
        for _ in range(15):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return root


def test_prepare_faces_writes_shards_and_a_manifest(dataset_inputs, tmp_path, capsys):
    out = tmp_path / "dataset"
    code = main(["prepare-faces", "--input", str(dataset_inputs), str(tmp_path / "still.mp4"), "--output", str(out), "--crop-size", "128"])
    assert code == 0
    assert "ETA" in capsys.readouterr().out
    manifest = json.loads((out / "manifest.json").read_text())
    stats = manifest["stats"]
    assert stats["minors"] == 1 and stats["no_face"] == 1
    assert stats["duplicates"] >= 13  # 15 identical frames → 1 kept (+ codec noise)
    faces = manifest["faces"]
    assert stats["kept"] == len(faces) == 4 + (15 - stats["duplicates"])
    assert {f["identity"] for f in faces} >= {"Alice", "Bob", "still"}
    assert all(f["age"] in (None, 35) for f in faces)
    with tarfile.open(out / stats["shards"][0]) as shard:
        names = shard.getnames()
        data = shard.extractfile(names[0]).read()
    crop = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert crop.shape == (128, 128, 3) and set(names) == {f["file"] for f in faces}
    eyes = np.array(faces[0]["landmarks5"])[:2]
    assert abs(eyes[0, 1] - eyes[1, 1]) < 4  # aligned: eyes level


def test_prepare_faces_refuses_a_used_folder_and_missing_inputs(tmp_path, capsys):
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("")
    assert main(["prepare-faces", "--input", str(tmp_path), "--output", str(used)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main(["prepare-faces", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "new")]) != 0
    assert "does not exist" in capsys.readouterr().err


def test_prepared_faces_keep_their_478_landmarks_and_merging_scales_them(dataset_inputs, tmp_path):
    from realtime.train.data import face_records, load_landmarks, merge_datasets
    from realtime.vision.landmarks import five_points

    out = tmp_path / "dataset"
    assert main(["prepare-faces", "--input", str(dataset_inputs), "--output", str(out), "--crop-size", "128"]) == 0
    faces = json.loads((out / "manifest.json").read_text())["faces"]
    table = np.load(out / "landmarks.npy")
    assert table.shape == (len(faces), 478, 2) and table.dtype == np.float16
    for row, face in zip(table, faces, strict=True):  # the same face, in manifest order
        assert np.abs(five_points(row.astype(np.float32)) - np.array(face["landmarks5"])).max() < 0.1
    assert merge_datasets([out], tmp_path / "small", crop_size=112) == len(faces)
    merged = load_landmarks(face_records([tmp_path / "small"]), 112)
    assert np.abs(merged - ((table.astype(np.float32) + 0.5) * 112 / 128 - 0.5)).max() < 0.1
