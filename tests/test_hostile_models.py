"""Model files made to hurt (issue 32, §2): each is built here, small, with the onnx helper API or
safetensors as realtime writes it, and each must be refused with one line naming the file and
what is wrong, before it reads another file or takes unbounded memory."""

from __future__ import annotations

import resource
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from realtime.errors import ModelError  # noqa: E402
from realtime.models.onnx.graph import inspect_onnx, load_onnx  # noqa: E402


def _model(nodes, initializers=(), sparse=(), name="m.onnx", folder: Path | None = None, opset=17) -> Path:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
        list(initializers), sparse_initializer=list(sparse),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    assert folder is not None
    path = folder / name
    path.write_bytes(model.SerializeToString())  # onnx.save would try to write the external data
    return path


def _external(name: str, location: str = "secret.bin", dims=(4,)) -> TensorProto:
    tensor = TensorProto()
    tensor.name, tensor.data_type = name, TensorProto.FLOAT
    tensor.dims.extend(dims)
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    tensor.data_location = TensorProto.EXTERNAL
    return tensor


def _if_node_with(tensor_in_branch: TensorProto) -> onnx.NodeProto:
    """An If node whose then-branch holds ``tensor_in_branch`` as a Constant, one level down."""
    inner = helper.make_graph([helper.make_node("Constant", [], ["b"], value=tensor_in_branch)], "then", [], [helper.make_tensor_value_info("b", TensorProto.FLOAT, [4])])
    outer = helper.make_graph([helper.make_node("If", ["c"], ["b2"], then_branch=inner, else_branch=inner)], "nested", [], [helper.make_tensor_value_info("b2", TensorProto.FLOAT, [4])])
    return helper.make_node("If", ["c"], ["unused"], then_branch=outer, else_branch=outer)


EXTERNAL_CASES = {
    "constant node": lambda: ([helper.make_node("Constant", [], ["k"], value=_external("k")), helper.make_node("Add", ["x", "k"], ["y"])], [], []),
    "constant of shape fill": lambda: ([helper.make_node("ConstantOfShape", ["s"], ["f"], value=_external("v", dims=(1,))), helper.make_node("Add", ["x", "f"], ["y"])], [numpy_helper.from_array(np.array([1, 4], np.int64), "s")], []),
    "unused initializer": lambda: ([helper.make_node("Relu", ["x"], ["y"])], [_external("w")], []),
    "sparse initializer": lambda: ([helper.make_node("Relu", ["x"], ["y"])], [], [helper.make_sparse_tensor(_external("sv", dims=(1,)), numpy_helper.from_array(np.array([0], np.int64), "si"), [4])]),
    "subgraph two levels down": lambda: ([_if_node_with(_external("deep")), helper.make_node("Relu", ["x"], ["y"])], [numpy_helper.from_array(np.array(True), "c")], []),
}


@pytest.mark.parametrize("case", EXTERNAL_CASES)
def test_external_data_on_any_tensor_is_refused_before_any_file_is_opened(tmp_path, monkeypatch, case):
    """A tensor whose data lives in 'secret.bin' would be read from the current folder: the file
    is refused, naming the tensor, and nothing outside the model file is opened."""
    import onnx.external_data_helper as external_data_helper

    models, cwd = tmp_path / "models", tmp_path / "cwd"
    models.mkdir()
    cwd.mkdir()
    (cwd / "secret.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes() * 4)
    monkeypatch.chdir(cwd)
    opened: list[str] = []
    real_load = external_data_helper.load_external_data_for_tensor
    monkeypatch.setattr(external_data_helper, "load_external_data_for_tensor", lambda tensor, base: opened.append(base) or real_load(tensor, base))
    nodes, initializers, sparse = EXTERNAL_CASES[case]()
    path = _model(nodes, initializers, sparse, folder=models)
    for load in (load_onnx, inspect_onnx):
        with pytest.raises(ModelError, match=r"m\.onnx: .* keeps its data in another file \('secret\.bin'\), which realtime never opens") as caught:
            load(path)
        assert "\n" not in str(caught.value)
    assert opened == []



def test_the_onnxruntime_backend_refuses_external_data_before_onnxruntime_opens_the_file(tmp_path, monkeypatch):
    ort = pytest.importorskip("onnxruntime")
    from realtime.byo.onnxruntime import OrtNetwork

    opened: list[str] = []
    monkeypatch.setattr(ort, "InferenceSession", lambda path, *a, **k: opened.append(path))
    path = _model([helper.make_node("Constant", [], ["k"], value=_external("k")), helper.make_node("Add", ["x", "k"], ["y"])], folder=tmp_path)
    with pytest.raises(ModelError, match="keeps its data in another file"):
        OrtNetwork(path)
    assert opened == []

def test_a_constant_of_shape_of_4_gib_is_refused_by_name_without_allocating_it(tmp_path):
    """An unused ConstantOfShape [1024, 1024, 1024] float: a few bytes of file, 4 GiB if folded."""
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["huge"], name="hog"), helper.make_node("Relu", ["x"], ["y"])]
    path = _model(nodes, [numpy_helper.from_array(np.array([1024, 1024, 1024], np.int64), "shape")], folder=tmp_path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with pytest.raises(ModelError, match=r"m\.onnx: node 'hog' \(ConstantOfShape\): .*4096 MiB.*limit is 256 MiB") as caught:
        load_onnx(path)
    assert "\n" not in str(caught.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 512 * 1024


def test_a_folded_node_over_256_mib_is_refused_before_it_runs(tmp_path):
    """A MatMul of two constants, each 1.2 MiB, whose product is 300 MiB: an outer product
    the meta-device dry run sizes before the real one would allocate it."""
    column, row = np.ones((300_000, 1), np.float32), np.ones((1, 262), np.float32)
    nodes = [helper.make_node("MatMul", ["col", "row"], ["outer"], name="outer_product"), helper.make_node("Relu", ["x"], ["y"])]
    path = _model(nodes, [numpy_helper.from_array(column, "col"), numpy_helper.from_array(row, "row")], folder=tmp_path)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelError, match=r"node 'outer_product' \(MatMul\) makes a 299 MiB constant \(the limit is 256 MiB\)"):
        load_onnx(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024


def test_all_constants_together_are_capped_by_a_multiple_of_the_file_size(tmp_path):
    """Many folded constants, each under the per-tensor cap, together far more than the file."""
    nodes = [helper.make_node("ConstantOfShape", ["shape"], [f"c{i}"], name=f"fill{i}") for i in range(12)] + [helper.make_node("Relu", ["x"], ["y"])]
    path = _model(nodes, [numpy_helper.from_array(np.array([1024, 1024, 8], np.int64), "shape")], folder=tmp_path)  # 32 MiB each
    with pytest.raises(ModelError, match=r"node 'fill\d+' \(ConstantOfShape\) brings the graph's constants to \d+ MiB, more than the file's size allows \(64 MiB\)"):
        load_onnx(path)



def test_float16_weights_behind_casts_and_transposes_count_once(tmp_path):
    """A 16 MiB float16 weight read as float32 (32 MiB), then a no-op Cast and a Transpose: views
    of the same storage, so the graph holds 32 MiB of constants, not 96 (the limit here: 64)."""
    import torch

    weight = np.ones((4096, 2048), np.float16)
    nodes = [
        helper.make_node("Cast", ["w16"], ["w32"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["w32"], ["wt"], perm=[1, 0]),
        helper.make_node("MatMul", ["x", "wt"], ["y"]),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2048])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4096])], [numpy_helper.from_array(weight, "w16")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "fp16.onnx"
    onnx.save(model, str(path))
    module, _ = load_onnx(path)
    assert torch.equal(module(torch.ones(1, 2048)), torch.full((1, 4096), 2048.0))

def test_constants_under_the_caps_still_fold(tmp_path):
    """The caps leave real graphs alone: a 16 MiB folded constant loads and runs."""
    nodes = [helper.make_node("ConstantOfShape", ["shape"], ["zeros"]), helper.make_node("ReduceSum", ["zeros"], ["total"], keepdims=0), helper.make_node("Add", ["x", "total"], ["y"])]
    path = _model(nodes, [numpy_helper.from_array(np.array([1024, 1024, 4], np.int64), "shape")], folder=tmp_path, opset=11)
    module, _ = load_onnx(path)
    import torch

    assert torch.equal(module(torch.ones(1, 4)), torch.ones(1, 4))


@pytest.mark.parametrize(("where", "named"), [("initializer", "initializer 'emap'"), ("constant", "node 'k' attribute 'value'")])
def test_a_tensor_whose_bytes_do_not_fill_its_dims_is_named_with_its_file(tmp_path, where, named):
    """An unused initializer (or a Constant) declaring [512, 512] float but holding 12 bytes."""
    short = numpy_helper.from_array(np.ones(3, np.float32), "emap")
    del short.dims[:]
    short.dims.extend([512, 512])
    if where == "initializer":
        path = _model([helper.make_node("Relu", ["x"], ["y"])], [short], folder=tmp_path)
    else:
        path = _model([helper.make_node("Constant", [], ["k"], value=short, name="k"), helper.make_node("Relu", ["x"], ["y"])], folder=tmp_path)
    for load in (load_onnx, inspect_onnx):
        with pytest.raises(ModelError, match=rf"m\.onnx: {named} declares FLOAT \[512, 512\] but holds 12 bytes: the file is damaged"):
            load(path)


def test_a_truncated_unused_initializer_is_one_line_from_the_cli(tmp_path, capsys):
    """What a user sees: 'realtime doctor --models' on such a file names it, not 'report it'."""
    from realtime.cli import main

    short = numpy_helper.from_array(np.ones(3, np.float32), "emap")
    short.dims.extend([7])
    path = _model([helper.make_node("Relu", ["x"], ["y"])], [short], folder=tmp_path)
    main(["doctor", "--models", str(path)])
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if "m.onnx" in row)
    assert "initializer 'emap' declares FLOAT [3, 7] but holds 12 bytes" in line and "unexpected" not in out


# --- checkpoints whose metadata asks for more than the file holds ---------------------------------

SMALL_AEI = {"crop_size": 128, "id_dim": 32, "attr_width": 4, "gen_width": 4, "max_mult": 4}


def _with_metadata(source: Path, target: Path, **hyperparameters) -> Path:
    """``source`` rewritten with changed hyperparameters: tensors and their checksum intact."""
    import json

    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(source), framework="pt") as handle:
        meta = json.loads(handle.metadata()["realtime"])
    meta["hyperparameters"].update(hyperparameters)
    save_file(load_file(str(source)), str(target), metadata={"realtime": json.dumps(meta)})
    return target


@pytest.fixture
def small_aei(tmp_path) -> Path:
    from realtime.models.aei_net import AEINet
    from realtime.models.checkpoint import save_checkpoint

    path = tmp_path / "aei.safetensors"
    save_checkpoint(path, AEINet(**SMALL_AEI), architecture="aei_net", hyperparameters=SMALL_AEI)
    return path


@pytest.mark.parametrize(("name", "value", "says"), [
    ("gen_width", 1_000_000, "hyperparameters.gen_width 1000000 is not a whole number from 1 to 256"),
    ("max_mult", 10**12, "hyperparameters.max_mult 1000000000000 is not a whole number from 1 to 64"),
    ("attr_width", 4.5, "hyperparameters.attr_width 4.5 is not a whole number"),
    ("detail_width", -3, "hyperparameters.detail_width -3 is not a whole number from 0 to 256"),
    ("layers", 2, "hyperparameter 'layers' is not one of crop_size, id_dim"),
])
def test_hyperparameters_out_of_range_are_refused_before_anything_is_built(tmp_path, small_aei, name, value, says):
    from realtime.models.checkpoint import load_checkpoint, read_checkpoint_info

    hostile = _with_metadata(small_aei, tmp_path / "hostile.safetensors", **{name: value})
    for read in (read_checkpoint_info, load_checkpoint):
        with pytest.raises(ModelError, match=rf"checkpoint .*hostile\.safetensors has bad metadata \({says}") as caught:
            read(hostile)
        assert "\n" not in str(caught.value)


def test_hyperparameters_in_range_but_not_the_stored_tensors_are_refused_without_building(tmp_path, small_aei):
    """gen_width 256 with max_mult 64 is in range, and a real module of those numbers would
    take gigabytes: the shapes it would have are checked (on the meta device) against the
    tensors the file stores, and the first that differs (or is missing) is named."""
    from realtime.models.checkpoint import load_checkpoint

    hostile = _with_metadata(small_aei, tmp_path / "wide.safetensors", gen_width=256, max_mult=64)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelError, match=r"wide\.safetensors(: tensor \S+ has shape .*, the model expects| does not match the aei_net architecture \(\d+ missing)"):
        load_checkpoint(hostile)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024


@pytest.mark.parametrize(("architecture", "name", "value"), [("target_autoencoder", "identities", 1_000_000), ("identity_encoder", "width", 1e6), ("identity_encoder", "input_size", [112, 100])])
def test_every_architecture_checks_its_hyperparameters(tmp_path, architecture, name, value):
    from realtime.models.checkpoint import load_checkpoint, save_checkpoint
    from realtime.models.identity import IdentityEncoder
    from realtime.models.target_autoencoder import TargetAutoencoder

    if architecture == "target_autoencoder":
        hyper = {"crop_size": 128, "identities": 2, "width": 4, "bottleneck": 16}
        model = TargetAutoencoder(**hyper)
    else:
        hyper = {"embed_dim": 16, "width": 0.25}
        model = IdentityEncoder(**hyper)  # type: ignore[arg-type]
    path = tmp_path / "ok.safetensors"
    save_checkpoint(path, model, architecture=architecture, hyperparameters=hyper)
    load_checkpoint(path)  # the honest file loads
    with pytest.raises(ModelError, match=rf"bad metadata \(hyperparameters\.{name} "):
        load_checkpoint(_with_metadata(path, tmp_path / "bad.safetensors", **{name: value}))


# --- formats by content, not by name ---------------------------------------------------------------


def test_formats_are_read_from_content_whatever_the_name(tmp_path, small_aei):
    from realtime.models.formats import detect_model_format, sniff_model_format
    from realtime.testing_onnx import make_dfm_standin

    dfm = make_dfm_standin(tmp_path / "celeb.dfm", size=128)
    renamed_checkpoint = tmp_path / "looks_like.onnx"
    renamed_checkpoint.write_bytes(small_aei.read_bytes())
    renamed_onnx = tmp_path / "looks_like.safetensors"
    renamed_onnx.write_bytes(dfm.read_bytes())
    assert sniff_model_format(dfm) == "onnx" and sniff_model_format(renamed_onnx) == "onnx"
    assert sniff_model_format(small_aei) == "safetensors" and sniff_model_format(renamed_checkpoint) == "safetensors"
    junk = tmp_path / "weights.bin"
    junk.write_bytes(b"\x08\x07garbage" * 10)
    assert sniff_model_format(junk) is None
    with pytest.raises(ModelError, match=r"generator .*weights\.bin is neither a realtime checkpoint nor an ONNX model \(it starts with b'\\x08\\x07garbag'\)"):
        detect_model_format(junk, "generator")
    cut = tmp_path / "cut.dfm"  # damaged, named: the ONNX reader says what is wrong with it
    cut.write_bytes(dfm.read_bytes()[:-100])
    assert sniff_model_format(cut) is None and detect_model_format(cut) == "onnx"


def test_a_dfm_file_is_a_generator_and_a_renamed_checkpoint_still_loads(tmp_path, small_aei):
    from realtime.generators import GeneratorRequest, generator_geometry, load_spec
    from realtime.testing_onnx import make_dfm_standin

    dfm = make_dfm_standin(tmp_path / "celeb.dfm", size=128)
    assert generator_geometry(GeneratorRequest(dfm)) == (128, "ffhq")
    assert load_spec(GeneratorRequest(dfm)).architecture == "onnx-dfm"
    renamed = tmp_path / "aei.onnx"
    renamed.write_bytes(small_aei.read_bytes())
    assert load_spec(GeneratorRequest(renamed)).architecture == "aei_net"


def test_each_reader_names_the_format_it_was_given_instead(tmp_path, small_aei):
    from realtime.models.checkpoint import load_checkpoint
    from realtime.testing_onnx import make_arcface_standin

    onnx_file = make_arcface_standin(tmp_path / "encoder.safetensors")
    with pytest.raises(ModelError, match=r"encoder\.safetensors is an ONNX model \(a DeepFaceLive \.dfm is one\), not a realtime checkpoint: pass a \.safetensors checkpoint written by realtime here \(ONNX models go to --generator or --identity-encoder\)$"):
        load_checkpoint(onnx_file)
    with pytest.raises(ModelError, match=r"aei\.safetensors is a realtime checkpoint \(safetensors\), not an ONNX model"):
        load_onnx(small_aei)


def test_an_identity_encoder_is_told_by_content(tmp_path):
    from realtime.byo.swapper import OnnxIdentityEncoder
    from realtime.photo import load_identity_encoder
    from realtime.testing_onnx import make_arcface_standin

    encoder = make_arcface_standin(tmp_path / "w600k_r50.bin")
    assert isinstance(load_identity_encoder(encoder), OnnxIdentityEncoder)


def test_a_64_px_dfm_names_the_file_and_what_it_declares_not_a_flag(tmp_path, capsys):
    from realtime.cli import main
    from realtime.generators import GeneratorRequest, generator_geometry
    from realtime.testing_onnx import make_dfm_standin

    dfm = make_dfm_standin(tmp_path / "tiny.dfm", size=64)
    with pytest.raises(ModelError, match=r"generator .*tiny\.dfm is a dfm model whose input in_face:0 \[1, 64, 64, 3\] takes 64 px crops, a size realtime cannot align faces at: run it with --pixel-boost 2 \(128 px crops\)"):
        generator_geometry(GeneratorRequest(dfm))
    assert generator_geometry(GeneratorRequest(dfm, pixel_boost=2)) == (128, "ffhq")
    code = main(["run", "--input", "demo", "--output", "null", "--generator", str(dfm)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "tiny.dfm" in err[0] and "64 px" in err[0] and "--crop-size" not in err[0], err


# --- realtime doctor --models DIR ------------------------------------------------------------------


def test_doctor_lists_every_file_in_a_folder_with_the_bad_ones_marked_and_why(tmp_path, small_aei, monkeypatch):
    import realtime.models.onnx.graph as graph
    from realtime.doctor import check_user_models
    from realtime.testing_onnx import make_arcface_standin, make_dfm_standin

    folder = tmp_path / "models"
    folder.mkdir()
    make_dfm_standin(folder / "celeb.dfm", size=128)
    make_arcface_standin(folder / "encoder.onnx")
    (folder / "odd.onnx").write_bytes((folder / "encoder.onnx").read_bytes())  # its reader fails unexpectedly (below)
    (folder / "aei.safetensors").write_bytes(small_aei.read_bytes())
    _with_metadata(small_aei, folder / "hostile.safetensors", gen_width=1_000_000)
    _model([helper.make_node("Constant", [], ["k"], value=_external("k")), helper.make_node("Add", ["x", "k"], ["y"])], folder=folder, name="external.onnx")
    (folder / "notes.md").write_text("# my models\n")
    (folder / "empty.onnx").write_bytes(b"")
    real = graph.load_onnx

    def load_onnx(path, what="model"):
        if path.name == "odd.onnx":
            raise RuntimeError("boom")
        return real(path, what)

    monkeypatch.setattr(graph, "load_onnx", load_onnx)
    checks = check_user_models([folder])
    by_name = {Path(c.detail.split(": ")[0]).name: c for c in checks}
    assert sorted(by_name) == sorted(p.name for p in folder.iterdir()) and len(checks) == len(by_name)
    assert by_name["celeb.dfm"].status == "ok" and "dfm (128 px, ffhq crops)" in by_name["celeb.dfm"].detail
    assert by_name["encoder.onnx"].status == "ok" and "identity encoder (112×112)" in by_name["encoder.onnx"].detail
    assert by_name["aei.safetensors"].status == "ok" and "realtime checkpoint, aei_net (128 px), checksum ok" in by_name["aei.safetensors"].detail
    assert by_name["hostile.safetensors"].status == "warn" and "hyperparameters.gen_width 1000000" in by_name["hostile.safetensors"].detail
    assert by_name["external.onnx"].status == "warn" and "keeps its data in another file" in by_name["external.onnx"].detail
    assert by_name["notes.md"].status == "warn" and "neither a realtime checkpoint nor an ONNX model" in by_name["notes.md"].detail
    assert by_name["empty.onnx"].status == "warn" and "neither" in by_name["empty.onnx"].detail
    assert by_name["odd.onnx"].status == "warn" and "cannot be read (RuntimeError: boom)" in by_name["odd.onnx"].detail
    assert all(c.detail.count(str(folder)) == 1 for c in checks)  # each file named in full once


def test_doctor_checks_the_weights_of_each_checkpoint_not_only_its_header(tmp_path, small_aei):
    """``doctor --models`` before a show: a checkpoint stored as int8 passes; one whose weights
    were changed after it was written, one whose tensors do not fit its architecture (a shape, a
    tensor missing) and one whose numbers make no model are marked with the file named once and
    what to do about it."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from realtime.doctor import check_user_models
    from realtime.models.aei_net import AEINet
    from realtime.models.checkpoint import save_checkpoint

    folder = tmp_path / "models"
    folder.mkdir()
    save_checkpoint(folder / "int8.safetensors", AEINet(**SMALL_AEI), architecture="aei_net", hyperparameters=SMALL_AEI, weight_storage="int8")
    changed = bytearray(small_aei.read_bytes())
    changed[-10] ^= 0xFF
    (folder / "changed.safetensors").write_bytes(bytes(changed))
    _with_metadata(small_aei, folder / "narrow.safetensors", gen_width=8)  # a wider model's numbers, the narrow one's tensors
    _with_metadata(small_aei, folder / "detail.safetensors", detail_width=8)  # in range, but no model: a detail stage needs 256 px
    with safe_open(str(small_aei), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(small_aei))
    del tensors["encoder.down.0.0.weight"]
    save_file(tensors, str(folder / "short.safetensors"), metadata=metadata)
    checks = {Path(c.detail.split(": ")[0]).name: c for c in check_user_models([folder])}
    assert checks["int8.safetensors"].status == "ok" and "checksum ok" in checks["int8.safetensors"].detail
    assert checks["changed.safetensors"].status == "warn"
    assert checks["changed.safetensors"].detail.endswith("changed.safetensors: checkpoint changed.safetensors failed its checksum: the weights were changed or damaged: re-download or re-train it")
    assert checks["narrow.safetensors"].detail.endswith(", the model expects (32,): the hyperparameters and weights disagree: re-export it")
    assert "checkpoint narrow.safetensors: tensor " in checks["narrow.safetensors"].detail
    assert checks["short.safetensors"].detail.endswith("checkpoint short.safetensors does not match the aei_net architecture (1 missing, 0 unexpected tensors, e.g. encoder.down.0.0.weight): it was written by another version: re-export or re-train it")
    assert "checkpoint detail.safetensors has hyperparameters this version cannot build (a detail stage" in checks["detail.safetensors"].detail
    assert checks["detail.safetensors"].detail.endswith(": re-export it with this version of realtime")
    assert all(c.status == "warn" for name, c in checks.items() if name != "int8.safetensors")
    assert all(c.detail.count(str(folder)) == 1 for c in checks.values())


def test_doctor_classifies_big_files_without_reading_them_into_memory(tmp_path):
    """Two 1 GiB files (sparse: no disk used) named like models: neither is loaded to be told."""
    from realtime.doctor import check_user_models

    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("big.onnx", "big.dfm", "big.safetensors"):
        with (folder / name).open("wb") as handle:
            handle.truncate(1 << 30)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    checks = check_user_models([folder])
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024
    assert len(checks) == 3 and all(c.status == "warn" and "neither" in c.detail for c in checks)
