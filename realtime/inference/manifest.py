"""``engines/manifest.json``: what was built, for which checkpoint, shapes, precision, GPU and
library versions. An engine whose key does not match this machine is stale or foreign: it is
refused with the command that rebuilds it, never loaded by accident."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from realtime import __version__
from realtime.errors import ModelError
from realtime.inference.engine_dir import check_engines_dir
from realtime.models.weights import sha256_file

if TYPE_CHECKING:
    from realtime.inference.spec import GeneratorSpec

log = logging.getLogger("realtime")
MANIFEST = "manifest.json"


def device_tag(device: str) -> str:
    """``cuda:sm_90`` or ``cpu``: engines are specific to the GPU architecture."""
    if device == "cuda" and torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(0)
        return f"cuda:sm_{major}{minor}"
    return "cpu"


def library_versions(kind: str) -> dict[str, str]:
    versions = {"torch": torch.__version__, "realtime": __version__}
    if kind == "tensorrt":
        import torch_tensorrt

        versions["torch_tensorrt"] = getattr(torch_tensorrt, "__version__", "?")
    if torch.version.cuda:
        versions["cuda"] = torch.version.cuda
    return versions


@dataclass(frozen=True)
class EngineKey:
    checkpoint_sha256: str
    architecture: str
    kind: str
    batch: int
    crop_size: int
    precision: str
    device: str
    versions: dict[str, str]

    @staticmethod
    def for_spec(spec: GeneratorSpec, *, kind: str, batch: int, device: str) -> EngineKey:
        precision = "fp16" if device == "cuda" else "fp32"
        return EngineKey(spec.checkpoint_sha256, spec.architecture, kind, batch, spec.crop_size, precision, device_tag(device), library_versions(kind))

    def file_name(self, suffix: str) -> str:
        return f"{self.architecture}-{self.checkpoint_sha256[:12]}-{self.kind}-b{self.batch}-{self.precision}-{self.device.replace(':', '-')}{suffix}"


@dataclass(frozen=True)
class EngineEntry:
    key: EngineKey
    file: str
    file_sha256: str
    built: str
    build_s: float


def read_manifest(engine_dir: Path) -> list[EngineEntry]:
    """The entries of ``engine_dir``'s manifest, once the folder and every file in it is found to
    be this user's alone (``check_engines_dir``): a manifest names what gets loaded."""
    path = engine_dir / MANIFEST
    check_engines_dir(engine_dir)
    if not path.exists():
        return []
    try:
        data = json.loads(path.read_text())
        return [EngineEntry(EngineKey(**e["key"]), e["file"], e["file_sha256"], e["built"], e["build_s"]) for e in data["engines"]]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ModelError(f"engine manifest {path} is unreadable ({exc})", f"delete {engine_dir} and rebuild with 'realtime build-engines'") from None


def write_manifest(engine_dir: Path, entries: list[EngineEntry]) -> None:
    path = engine_dir / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps({"engines": [asdict(e) for e in entries]}, indent=2) + "\n")
    os.replace(tmp, path)


def record_engine(engine_dir: Path, key: EngineKey, file: str, build_s: float) -> EngineEntry:
    """Add (or replace) the entry for ``key``."""
    entry = EngineEntry(key, file, sha256_file(engine_dir / file), dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), round(build_s, 2))
    same = lambda e: (e.key.checkpoint_sha256, e.key.kind, e.key.batch, e.key.precision, e.key.device) == (key.checkpoint_sha256, key.kind, key.batch, key.precision, key.device)  # noqa: E731
    write_manifest(engine_dir, [e for e in read_manifest(engine_dir) if not same(e)] + [entry])
    return entry


def rebuild_command(spec: GeneratorSpec, batch: int) -> str:
    return f"realtime build-engines --generator <the {spec.architecture} file> --batch {batch}"


def find_engine(engine_dir: Path, spec: GeneratorSpec, *, kind: str, batch: int, device: str) -> EngineEntry:
    """The entry that matches this checkpoint, shape, precision, GPU and library versions exactly."""
    check_engines_dir(engine_dir)
    wanted = EngineKey.for_spec(spec, kind=kind, batch=batch, device=device)
    candidates = [e for e in read_manifest(engine_dir) if e.key.kind == kind and e.key.batch == batch and e.key.checkpoint_sha256 == spec.checkpoint_sha256]
    if not candidates:
        raise ModelError(f"no {kind} engine for this checkpoint at batch {batch} in {engine_dir}", f"build one: {rebuild_command(spec, batch)}")
    for entry in candidates:
        if entry.key == wanted:
            path = engine_dir / entry.file
            if not path.exists():
                raise ModelError(f"engine {path} is listed but missing", f"rebuild it: {rebuild_command(spec, batch)}")
            if sha256_file(path) != entry.file_sha256:
                raise ModelError(f"engine {path} does not match its manifest entry (changed or foreign)", f"rebuild it: {rebuild_command(spec, batch)}")
            return entry
    stale = candidates[0].key
    differences = [f"{name} {getattr(stale, name)} ≠ {getattr(wanted, name)}" for name in ("precision", "device", "versions", "crop_size") if getattr(stale, name) != getattr(wanted, name)]
    raise ModelError(f"the {kind} engine for batch {batch} is stale ({'; '.join(differences)})", f"rebuild it: {rebuild_command(spec, batch)}")


def compile_cache_path(engine_dir: Path, spec: GeneratorSpec, batch: int) -> Path:
    key = EngineKey.for_spec(spec, kind="compiled", batch=batch, device="cuda")
    return engine_dir / key.file_name(".inductor-cache.bin")


def load_compile_cache(engine_dir: Path, spec: GeneratorSpec, batch: int) -> str:
    """Pre-load torch.compile's cache artifacts saved by build_engines, if they match."""
    path = compile_cache_path(engine_dir, spec, batch)
    if not path.exists():
        return "no saved compile cache (first call compiles)"
    check_engines_dir(engine_dir)
    log.info("generator: loading saved compile cache %s", path)
    try:
        loaded = torch.compiler.load_cache_artifacts(path.read_bytes())
    except Exception as exc:  # noqa: BLE001 - a cache is an optimisation: fall back to compiling
        return f"compile cache {path.name} unusable ({type(exc).__name__})"
    if loaded is None:  # torch returns None (and logs why) for a corrupt file
        return f"compile cache {path.name} unusable (corrupt)"
    return f"compile cache {path.name} loaded"


def describe_entries(engine_dir: Path) -> list[dict[str, Any]]:
    return [{"file": e.file, **asdict(e.key)} for e in read_manifest(engine_dir)]
