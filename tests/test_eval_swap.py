"""Swap evaluation: trials, retrieval, landmark errors, the summary on known embeddings, the dlib
judge, and `realtime eval-swap` end to end on real faces."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from realtime.eval.swap_measures import (
    Measured,
    aligned_landmark_error,
    landmark_error,
    make_trials,
    nearest_identity,
    per_trial,
    summarise,
)
from realtime.models.aei_net import AEINet
from realtime.models.checkpoint import save_checkpoint
from realtime.models.identity import IdentityEncoder
from realtime.vision.align import apply_affine


def _faces(people: int, each: int) -> list[tuple[str, Path]]:
    return [(f"p{i}", Path(f"p{i}_{j}.jpg")) for i in range(people) for j in range(each)]


def test_trials_never_swap_a_person_onto_themselves_and_keep_the_gallery_apart():
    trials = make_trials(_faces(6, 3) + _faces(9, 1)[6:], identities=5)
    assert len(trials) == 5
    for index, trial in enumerate(trials):
        assert trial.source != trial.gallery and trial.source_identity != trial.target_identity
        assert trial.source.name.startswith(trial.source_identity + "_") and trial.target.name.startswith(trial.target_identity + "_")
        assert trial.target_identity == trials[(index + 1) % 5].source_identity  # the cycle summarise relies on
        assert trial.target not in (trials[(index + 1) % 5].source, trials[(index + 1) % 5].gallery)
    with pytest.raises(ValueError, match="three or more photos"):
        make_trials(_faces(3, 3), identities=5)


def test_a_seed_draws_another_set_of_people_and_the_same_seed_the_same_set():
    faces = _faces(40, 3)
    people = {seed: [t.source_identity for t in make_trials(faces, identities=10, seed=seed)] for seed in (0, 1)}
    assert people[0] == [t.source_identity for t in make_trials(faces, identities=10)]  # 0: the benchmark's draw
    assert set(people[0]) != set(people[1])
    assert people[1] == [t.source_identity for t in make_trials(faces, identities=10, seed=1)]


def test_nearest_identity_by_cosine_and_by_distance():
    gallery = np.eye(3)
    query = np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 0.8]])
    assert list(nearest_identity(query, gallery, metric="cosine")) == [0, 2]
    assert list(nearest_identity(query, gallery, metric="euclidean")) == [0, 2]


def test_landmark_errors_are_in_eye_distances_and_aligned_error_ignores_similarity():
    from realtime.testing import make_face_landmarks

    reference = make_face_landmarks(iod=50.0)
    assert landmark_error(reference + [5.0, 0.0], reference) == pytest.approx(0.1)
    moved = apply_affine(np.array([[1.3 * np.cos(0.2), -1.3 * np.sin(0.2), 40.0], [1.3 * np.sin(0.2), 1.3 * np.cos(0.2), -12.0]]), reference)
    assert landmark_error(moved, reference) > 0.5
    assert aligned_landmark_error(moved, reference) == pytest.approx(0.0, abs=1e-9)


def _measured(swap: np.ndarray, people: int = 4) -> Measured:
    eye = np.eye(people, 8)
    return Measured({"source": eye, "gallery": eye, "target": np.roll(eye, -1, axis=0), "swap": swap}, None, np.full(people, 0.05), np.full(people, 0.2), [])


def test_summary_of_a_perfect_and_of_a_useless_swap():
    eye = np.eye(4, 8)
    perfect = summarise(_measured(eye))["ours"]
    assert perfect["retrieval_source_rate"] == 1.0 and perfect["closer_to_source_rate"] == 1.0
    assert perfect["swap_to_source"] == pytest.approx(1.0) and perfect["different_person_baseline"] == 0.0
    useless = summarise(_measured(np.roll(eye, -1, axis=0)))["ours"]  # the swap is still the target
    assert useless["retrieval_source_rate"] == 0.0 and useless["retrieval_target_rate"] == 1.0
    failed = _measured(eye)
    failed.ours["swap"][1] = np.nan
    assert summarise(failed)["ours"]["retrieval_source_rate"] == 1.0  # failed rows are left out


def test_per_trial_readings_agree_with_the_summary_and_mark_failures():
    trials = make_trials(_faces(4, 3), 4)
    eye = np.eye(4, 8)
    swap = eye.copy()
    swap[2] = np.roll(eye, -1, axis=0)[2]  # trial 2's swap is still its target
    swap[3] = np.nan  # trial 3 failed
    rows = per_trial(_measured(swap), trials)
    assert [row["ours_finds_source"] for row in rows] == [True, True, False, None]
    assert [row["ours_source_photo_finds_source"] for row in rows] == [True] * 4  # the real photos: the ceiling
    assert rows[0]["ours_to_source"] == pytest.approx(1.0) and rows[2]["ours_to_target"] == pytest.approx(1.0)
    assert rows[3]["ours_to_source"] is None and rows[0]["nme"] == pytest.approx(0.05)
    assert rows[1]["source"] == trials[1].source.name and rows[1]["target"] == trials[1].target.name
    assert "dlib_to_source" not in rows[0]  # no judge, no judge columns


def _portraits() -> dict[str, np.ndarray]:
    from realtime.io.demo import demo_source_path, load_demo_face

    hopper = cv2.cvtColor(cv2.imread(str(demo_source_path())), cv2.COLOR_BGR2RGB)
    return {"astronaut": load_demo_face(), "hopper": cv2.resize(hopper, (hopper.shape[1] // 2, hopper.shape[0] // 2))}


def test_dlib_judge_tells_people_apart():
    pytest.importorskip("dlib")
    pytest.importorskip("face_recognition_models")
    from conftest import has_face_model

    if not has_face_model():
        pytest.skip("no face_landmarker.task available offline")
    from realtime.config import DetectConfig
    from realtime.eval.swap_measures import DlibJudge
    from realtime.photo import detect_faces_in_image

    judge = DlibJudge()
    images = _portraits()
    images["astronaut, flipped"] = images["astronaut"][:, ::-1].copy()
    vectors = {name: judge.describe(image, detect_faces_in_image(image, DetectConfig())[0].landmarks) for name, image in images.items()}
    same = np.linalg.norm(vectors["astronaut"] - vectors["astronaut, flipped"])
    different = np.linalg.norm(vectors["astronaut"] - vectors["hopper"])
    assert same < judge.threshold < different


def _people_dataset(tmp_path: Path) -> Path:
    faces = []
    for name, image in _portraits().items():  # three 'photos' each of two people, and a tinted third
        for index, variant in enumerate([image, image[:, ::-1], cv2.convertScaleAbs(image, alpha=0.9, beta=10)]):
            for person, tint in ((name, 1.0), (f"{name}-tinted", 0.85)):
                path = tmp_path / f"{person}_{index}.png"
                cv2.imwrite(str(path), cv2.cvtColor((variant * np.array([1.0, tint, tint])).astype(np.uint8), cv2.COLOR_RGB2BGR))
                faces.append({"file": path.name, "shard": "none", "identity": person, "source": str(path)})
    dataset = tmp_path / "people"
    dataset.mkdir()
    (dataset / "manifest.json").write_text(json.dumps({"faces": faces}))
    return dataset


def test_eval_swap_of_a_per_target_model_needs_and_uses_the_persons_clip(tmp_path, capsys):
    from conftest import has_face_model

    from realtime.cli import main
    from realtime.models.target_autoencoder import TargetAutoencoder
    from realtime.testing import make_ground_truth_frame

    if not has_face_model():
        pytest.skip("no face_landmarker.task available offline")
    dataset = _people_dataset(tmp_path)
    torch.manual_seed(0)
    hp = {"crop_size": 128, "identities": 2, "width": 4, "bottleneck": 16}
    save_checkpoint(tmp_path / "t.safetensors", TargetAutoencoder(**hp), architecture="target_autoencoder", hyperparameters=hp)
    save_checkpoint(tmp_path / "e.safetensors", IdentityEncoder(embed_dim=16, width=0.25), architecture="identity_encoder", hyperparameters={"embed_dim": 16, "width": 0.25})
    clip = tmp_path / "person.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 30, (640, 480))
    for i in range(30):
        writer.write(cv2.cvtColor(make_ground_truth_frame(i * 4, sensor_noise=0), cv2.COLOR_RGB2BGR))
    writer.release()
    args = ["eval-swap", "--faces", str(dataset), "--generator", str(tmp_path / "t.safetensors"), "--identity-encoder", str(tmp_path / "e.safetensors"), "--identities", "4", "--no-judge", "--json", str(tmp_path / "p.json")]
    assert main(args) != 0 and "--person VIDEO" in capsys.readouterr().err
    assert main([*args, "--person", str(clip)]) == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "p.json").read_text())
    assert result["trials"] == 4 and result["person_frames"] >= 20 and result["failed"] == len(result["failures"])
    assert {"swap_to_person", "same_person_baseline", "retrieval_person_rate"} <= set(result["ours"])


def test_person_summary_on_known_embeddings():
    from realtime.eval.swap_measures import summarise_person

    person = np.tile(np.eye(6)[0], (5, 1)) + np.random.default_rng(0).normal(0, 0.01, (5, 6))
    person /= np.linalg.norm(person, axis=1, keepdims=True)
    others = np.eye(6)[1:5]
    perfect = summarise_person({"person": person, "swap": np.tile(np.eye(6)[0], (4, 1)), "input": others, "gallery": others}, "cosine")
    assert perfect["retrieval_person_rate"] == 1.0 and perfect["closer_to_person_rate"] == 1.0 and perfect["same_person_baseline"] > 0.99
    useless = summarise_person({"person": person, "swap": others, "input": others, "gallery": others}, "cosine")
    assert useless["retrieval_person_rate"] == 0.0 and useless["swap_to_input"] == pytest.approx(1.0)


def test_eval_swap_command_end_to_end(tmp_path, capsys):
    from conftest import has_face_model

    from realtime.cli import main

    if not has_face_model():
        pytest.skip("no face_landmarker.task available offline")
    dataset = _people_dataset(tmp_path)
    torch.manual_seed(0)
    hp = {"crop_size": 128, "id_dim": 16, "attr_width": 4, "gen_width": 4, "max_mult": 2}
    save_checkpoint(tmp_path / "g.safetensors", AEINet(**hp), architecture="aei_net", hyperparameters=hp)
    save_checkpoint(tmp_path / "e.safetensors", IdentityEncoder(embed_dim=16, width=0.25), architecture="identity_encoder", hyperparameters={"embed_dim": 16, "width": 0.25})
    report = tmp_path / "swap.json"
    code = main(["eval-swap", "--faces", str(dataset), "--generator", str(tmp_path / "g.safetensors"), "--identity-encoder", str(tmp_path / "e.safetensors"), "--identities", "4", "--no-judge", "--json", str(report)])
    assert code == 0, capsys.readouterr().err
    result = json.loads(report.read_text())
    # random weights: a swapped face may be too garbled to be found again, and is then counted
    assert result["trials"] == 4 and result["failed"] == len(result["failures"]) < 4 and report.with_suffix(".png").is_file()
    assert 0.0 <= result["ours"]["retrieval_source_rate"] <= 1.0 and result["attributes"]["source_to_target_nme_mean"] < 0.1
    assert len(result["per_trial"]) == 4 and {"source", "target", "ours_finds_source", "nme"} <= set(result["per_trial"][0])
    assert main(["eval-swap", "--faces", str(dataset), "--generator", str(tmp_path / "g.safetensors"), "--identity-encoder", str(tmp_path / "e.safetensors"), "--identities", "9", "--no-judge", "--json", str(report)]) != 0
    assert "fewer --identities" in capsys.readouterr().err
