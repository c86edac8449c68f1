"""Backends, their selection order, the engine manifest, and an AOTInductor build on the CPU."""

import json

import pytest
import torch

from realtime.cli import main
from realtime.errors import ModelError
from realtime.inference.backend import Backend, CpuBackend
from realtime.inference.build import build_engines
from realtime.inference.manifest import EngineKey, find_engine, read_manifest, record_engine
from realtime.inference.select import select_runner
from realtime.inference.spec import GeneratorSpec, Runner, spec_from_checkpoint
from realtime.models.aei_net import AEINet
from realtime.models.checkpoint import save_checkpoint

TINY = {"crop_size": 128, "id_dim": 16, "attr_width": 4, "gen_width": 4, "max_mult": 2}


def _spec() -> GeneratorSpec:
    torch.manual_seed(0)
    return GeneratorSpec("aei_net", AEINet(**TINY).eval(), 128, 16, "abc123" * 10)


class FakeBackend(Backend):
    def __init__(self, name, reason=None, output=None, fails=False):
        self.name, self.reason, self.output, self.fails, self.loaded = name, reason, output, fails, False

    def unavailable_reason(self):
        return self.reason

    def load(self, spec, batch, engine_dir):
        self.loaded = True
        if self.fails:
            raise ModelError("no engine", "build one")
        output = self.output
        return Runner(self.name, lambda *x: output if output is not None else spec.module(*x), device=torch.device("cpu"), dtype=torch.float32, batch=batch)


def test_selection_follows_the_order_and_reports_every_skip(tmp_path, caplog):
    backends = [
        FakeBackend("tensorrt", reason="torch-tensorrt is not installed"),
        FakeBackend("aot", fails=True),
        FakeBackend("compiled", output=torch.full((1, 3, 128, 128), float("nan"))),
        FakeBackend("eager-cuda"),
        FakeBackend("cpu"),
    ]
    with caplog.at_level("INFO", logger="realtime"):
        selection = select_runner(_spec(), 1, tmp_path, backends=backends)
    assert selection.runner.backend == "eager-cuda"
    assert [name for name, _ in selection.skipped] == ["tensorrt", "aot", "compiled"]
    assert "NaN" in selection.skipped[2][1]
    assert not backends[4].loaded
    assert sum("skipped" in r.message for r in caplog.records) == 3
    assert any("dropping generator backend compiled" in r.message for r in caplog.records)


def test_no_backend_at_all_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="no generator backend could run"):
        select_runner(_spec(), 1, tmp_path, backends=[FakeBackend("x", reason="nope")])


def test_cpu_backend_matches_eager(tmp_path):
    spec = _spec()
    runner = CpuBackend().load(spec, 2, tmp_path)
    inputs = spec.example_inputs(2)
    with torch.no_grad():
        assert torch.equal(runner(*inputs)[0], spec.module(*inputs))


def test_manifest_keys_and_staleness(tmp_path):
    spec = _spec()
    key = EngineKey.for_spec(spec, kind="aot", batch=1, device="cpu")
    assert key.precision == "fp32" and key.device == "cpu" and key.versions["torch"] == torch.__version__
    (tmp_path / key.file_name(".pt2")).write_bytes(b"package")
    record_engine(tmp_path, key, key.file_name(".pt2"), 1.0)
    assert find_engine(tmp_path, spec, kind="aot", batch=1, device="cpu").file == key.file_name(".pt2")
    with pytest.raises(ModelError, match="no aot engine .* batch 2.*realtime build-engines"):
        find_engine(tmp_path, spec, kind="aot", batch=2, device="cpu")
    # built by another torch: stale, refused with the rebuild command
    data = json.loads((tmp_path / "manifest.json").read_text())
    data["engines"][0]["key"]["versions"]["torch"] = "1.0.0"
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="stale .*torch.*rebuild it: realtime build-engines"):
        find_engine(tmp_path, spec, kind="aot", batch=1, device="cpu")
    # restored key but the file was swapped: foreign
    record_engine(tmp_path, key, key.file_name(".pt2"), 1.0)
    (tmp_path / key.file_name(".pt2")).write_bytes(b"another package")
    with pytest.raises(ModelError, match="does not match its manifest"):
        find_engine(tmp_path, spec, kind="aot", batch=1, device="cpu")
    assert len(read_manifest(tmp_path)) == 1  # re-recording replaced, not duplicated


def test_unreadable_manifest(tmp_path):
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="unreadable"):
        read_manifest(tmp_path)


@pytest.mark.timeout(900)  # an AOTInductor compile: about a minute on a quiet 2-core box, over five on a loaded one
def test_aot_package_on_cpu_builds_loads_and_matches_eager(tmp_path, capsys):
    """The CPU half of the engine path, for real: torch.export → AOTInductor → load → parity."""
    checkpoint = tmp_path / "aei.safetensors"
    torch.manual_seed(0)
    save_checkpoint(checkpoint, AEINet(**TINY).eval(), architecture="aei_net", hyperparameters=TINY)
    engines = tmp_path / "engines"
    assert main(["build-engines", "--generator", str(checkpoint), "--batch", "1", "--engines-dir", str(engines)]) == 0
    out = capsys.readouterr().out
    assert "[1/1] building aot engine, batch 1" in out and "ETA" in out
    spec = spec_from_checkpoint(checkpoint)
    selection = select_runner(spec, 1, engines, order=("tensorrt", "aot", "compiled", "eager-cuda", "cpu"))
    assert selection.runner.backend == "aot"
    inputs = spec.example_inputs(1, seed=3)
    with torch.no_grad():
        expected = spec.module(*inputs)
    got = selection.runner(*inputs)[0]
    assert (got - expected).abs().max() < 1e-4
    assert len(read_manifest(engines)) == 1


def test_build_engines_refuses_gpu_kinds_without_a_gpu(tmp_path):
    checkpoint = tmp_path / "aei.safetensors"
    save_checkpoint(checkpoint, AEINet(**TINY).eval(), architecture="aei_net", hyperparameters=TINY)
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ModelError, match="need a CUDA GPU"):
        build_engines(spec_from_checkpoint(checkpoint), [1], tmp_path / "e", ["compiled"])


def test_identity_encoder_is_not_a_generator(tmp_path):
    from realtime.models.identity import IdentityEncoder

    path = tmp_path / "id.safetensors"
    save_checkpoint(path, IdentityEncoder(embed_dim=16, width=0.25), architecture="identity_encoder", hyperparameters={"embed_dim": 16, "width": 0.25})
    with pytest.raises(ModelError, match="not a generator"):
        spec_from_checkpoint(path)


@pytest.mark.gpu
def test_gpu_backends_match_eager_fp32(tmp_path):
    """FP16 backends against eager FP32 on seeded inputs: max error and PSNR fit for FP16."""
    from realtime.inference.backend import CompiledBackend, EagerCudaBackend

    spec = _spec()
    inputs = spec.example_inputs(2, seed=7)
    with torch.no_grad():
        reference = spec.module.float()(*inputs)
    for backend in (EagerCudaBackend(), CompiledBackend()):
        got = backend.load(spec, 2, tmp_path)(*inputs)[0].float().cpu()
        error = (got - reference).abs()
        psnr = 10 * torch.log10(4.0 / (error**2).mean())  # range [-1, 1]: peak-to-peak 2
        assert error.max() < 0.05 and psnr > 40, (backend.name, float(error.max()), float(psnr))


# --- who may have put a file in an engine folder (issue 32, item 8) ---------------------------------

OTHER_UID = 12345


def _give_to_another_user(path):
    """chown ``path`` to a uid that is not this user's: possible only as root (CI runs as root)."""
    import os

    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("giving a file another owner needs root (os.chown); CI runs these tests as root")
    os.chown(path, OTHER_UID, OTHER_UID)


def _engines_with_one_entry(tmp_path):
    engines = tmp_path / "engines"
    engines.mkdir(mode=0o700)
    spec = _spec()
    key = EngineKey.for_spec(spec, kind="aot", batch=1, device="cpu")
    (engines / key.file_name(".pt2")).write_bytes(b"package")
    record_engine(engines, key, key.file_name(".pt2"), 1.0)
    assert find_engine(engines, spec, kind="aot", batch=1, device="cpu").file == key.file_name(".pt2")  # ours: accepted
    return engines, spec, key


def test_a_world_writable_engine_folder_is_refused_even_with_the_sticky_bit(tmp_path):
    from realtime.inference.engine_dir import check_engines_dir

    engines, spec, _ = _engines_with_one_entry(tmp_path)
    engines.chmod(0o1777)
    with pytest.raises(ModelError, match=r"engine folder .*engines can be written by other users \(the sticky bit stops others deleting files there, not adding them\)"):
        check_engines_dir(engines)
    with pytest.raises(ModelError, match="can be written by other users"):
        find_engine(engines, spec, kind="aot", batch=1, device="cpu")
    sticky_parent = tmp_path / "tmp"
    sticky_parent.mkdir()
    sticky_parent.chmod(0o1777)
    (sticky_parent / "mine").mkdir(mode=0o700)
    check_engines_dir(sticky_parent / "mine")  # a folder of one's own inside /tmp is fine


def test_a_manifest_owned_by_another_user_is_not_read(tmp_path):
    engines, spec, _ = _engines_with_one_entry(tmp_path)
    _give_to_another_user(engines / "manifest.json")
    with pytest.raises(ModelError, match=rf"manifest\.json in the engine folder belongs to another user \(uid {OTHER_UID}\)"):
        read_manifest(engines)
    with pytest.raises(ModelError, match="belongs to another user"):
        find_engine(engines, spec, kind="aot", batch=1, device="cpu")


def test_an_engine_owned_by_another_user_or_writable_by_others_is_not_loaded(tmp_path):
    engines, spec, key = _engines_with_one_entry(tmp_path)
    engine = engines / key.file_name(".pt2")
    engine.chmod(0o666)
    with pytest.raises(ModelError, match=r"\.pt2 in the engine folder can be written by other users"):
        find_engine(engines, spec, kind="aot", batch=1, device="cpu")
    engine.chmod(0o644)
    link = engines / "planted.pt2"
    target = tmp_path / "elsewhere.pt2"
    target.write_bytes(b"their code")
    link.symlink_to(target)
    _give_to_another_user(target)  # a link of ours to a file of theirs
    with pytest.raises(ModelError, match=rf"planted\.pt2 in the engine folder belongs to another user \(uid {OTHER_UID}\)"):
        find_engine(engines, spec, kind="aot", batch=1, device="cpu")
    link.unlink()
    _give_to_another_user(engine)
    with pytest.raises(ModelError, match="belongs to another user"):
        find_engine(engines, spec, kind="aot", batch=1, device="cpu")
