"""Identity distillation: teacher loading, losses on known inputs, a step that learns, exact resume,
the DDP path at world size 1, and verification metrics on known embeddings."""

from pathlib import Path

import numpy as np
import pytest
import torch

from realtime.errors import ModelError
from realtime.eval.identity import make_pairs, roc, verify
from realtime.testing import make_face_dataset
from realtime.train.data import FaceRecord
from realtime.train.distill import Distiller, DistillOptions, distillation_loss
from realtime.train.teacher import TeacherMobileFaceNet, load_teacher, teacher_view


@pytest.fixture()
def teacher_file(tmp_path: Path) -> Path:
    """A randomly initialised teacher in the reference file's layout (the real one is in ../shared)."""
    torch.manual_seed(1)
    path = tmp_path / "teacher.ckpt"
    torch.save({"epoch": 0, "net_state_dict": TeacherMobileFaceNet().state_dict()}, path)
    return path


def _faces(n: int = 24) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 112, 112, 3), dtype=np.uint8)


def test_teacher_loads_its_layout_and_rejects_other_files(teacher_file, tmp_path):
    teacher = load_teacher(teacher_file)
    assert teacher(torch.zeros(2, 3, 112, 96)).shape == (2, 128)
    bad = tmp_path / "bad.ckpt"
    torch.save({"net_state_dict": {"conv1.conv.weight": torch.zeros(1)}}, bad)
    with pytest.raises(ModelError, match="not the MobileFaceNet teacher"):
        load_teacher(bad)
    with pytest.raises(ModelError, match="not found"):
        load_teacher(tmp_path / "missing.ckpt")


def test_teacher_view_is_the_sphereface_crop_inside_the_arcface_crop():
    faces = torch.arange(112, dtype=torch.float32).expand(1, 3, 112, 112)
    view = teacher_view(faces)
    assert view.shape == (1, 3, 112, 96) and view[0, 0, 0, 0] == 8 and view[0, 0, 0, -1] == 103


def test_distillation_loss_on_known_embeddings():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert distillation_loss(a, a).item() == pytest.approx(0.0, abs=1e-6)
    assert distillation_loss(a, -a).item() == pytest.approx(2.0)
    assert distillation_loss(a, torch.tensor([[0.0, 1.0], [0.0, 1.0]])).item() == pytest.approx(0.5)


def test_training_steps_on_cpu_bring_the_student_closer_to_the_teacher(teacher_file, tmp_path):
    distiller = Distiller(_faces(), teacher_file, tmp_path, DistillOptions(steps=30, batch=8, lr=2e-2), "cpu")
    probe = torch.from_numpy(_faces(16)).float().permute(0, 3, 1, 2).sub(127.5).div(128)

    def loss_now() -> float:
        distiller.student.eval()
        with torch.no_grad():
            return distillation_loss(distiller.student(probe), distiller.teacher(teacher_view(probe))).item()

    before = loss_now()
    for _ in range(30):
        distiller.train_step()
    assert loss_now() < before


def test_resume_continues_exactly(teacher_file, tmp_path):
    options = DistillOptions(steps=4, batch=4, save_every=1000)
    straight = Distiller(_faces(8), teacher_file, tmp_path / "a", options, "cpu")
    (tmp_path / "a").mkdir()
    straight.run()
    (tmp_path / "b").mkdir()
    first = Distiller(_faces(8), teacher_file, tmp_path / "b", DistillOptions(steps=2, batch=4), "cpu")
    first.run()
    second = Distiller(_faces(8), teacher_file, tmp_path / "b", options, "cpu")
    assert second.resume() and second.step == 2
    second.run()
    for key, value in straight.student.state_dict().items():
        assert torch.equal(value, second.student.state_dict()[key]), key
    assert (tmp_path / "b" / "identity.safetensors").is_file() and (tmp_path / "b" / "losses.png").is_file()


def test_ddp_path_runs_with_world_size_one(teacher_file, tmp_path, gloo_world_of_one):
    distiller = Distiller(_faces(8), teacher_file, tmp_path, DistillOptions(steps=2, batch=4), "cpu")
    assert isinstance(distiller.model, torch.nn.parallel.DistributedDataParallel)
    assert np.isfinite(distiller.train_step()["loss"])


def test_verification_metrics_on_known_embeddings():
    records = [FaceRecord(Path("."), "s", f"{i}.jpg", f"person{i // 3}", None) for i in range(12)]
    pairs, labels = make_pairs(records, 50)
    assert all(records[a].identity == records[b].identity for a, b in pairs[labels == 1])
    assert all(records[a].identity != records[b].identity for a, b in pairs[labels == 0])
    perfect = np.eye(4)[[int(r.identity[-1]) for r in records]]  # one axis per person
    result = verify(perfect, pairs, labels)
    assert result.auc == pytest.approx(1.0) and result.best_accuracy == 1.0
    fpr, tpr, _ = roc(np.array([0.1, 0.2, 0.3, 0.4]), np.array([1, 0, 1, 0]))
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.25)


def test_train_and_eval_identity_commands_run_end_to_end(teacher_file, tmp_path):
    from realtime.cli import main

    faces = make_face_dataset(tmp_path / "faces")
    out = tmp_path / "run"
    assert main(["train-identity", "--faces", str(faces), "--teacher", str(teacher_file), "--output", str(out), "--steps", "2", "--batch", "4", "--device", "cpu"]) == 0
    assert (out / "identity.safetensors").is_file() and (out / "state.pt").is_file()
    report = tmp_path / "verify.json"
    code = main(["eval-identity", "--faces", str(faces), "--encoder", str(out / "identity.safetensors"), "--teacher", str(teacher_file), "--pairs", "20", "--json", str(report), "--device", "cpu"])
    import json

    results = json.loads(report.read_text())["results"]
    assert code == 0 and set(results) == {str(out / "identity.safetensors"), "teacher"} and report.with_suffix(".png").is_file()
    assert all(0.0 <= r["auc"] <= 1.0 for r in results.values())


def test_train_identity_refuses_crops_of_another_size(teacher_file, tmp_path, capsys):
    from realtime.cli import main

    faces = make_face_dataset(tmp_path / "faces", size=128)
    assert main(["train-identity", "--faces", str(faces), "--teacher", str(teacher_file), "--output", str(tmp_path / "run"), "--device", "cpu"]) != 0
    assert "--crop-size 112" in capsys.readouterr().err
