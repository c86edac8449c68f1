from pathlib import Path

import pytest

from realtime.config import Config, build_config, load_toml, parse_size
from realtime.errors import ConfigError


def test_parse_size():
    assert parse_size("1280x720") == (1280, 720)
    assert parse_size("640X480") == (640, 480)
    for bad in ("1280", "axb", "1281x720", "8x8", "100000x720"):
        with pytest.raises(ConfigError):
            parse_size(bad)


def test_defaults_then_file_then_flags(tmp_path: Path):
    toml = tmp_path / "c.toml"
    toml.write_text('[capture]\ninput = "clip.mp4"\nloop = true\n[pipeline]\nqueue_size = 3\n[output]\noutput = ["a.mp4", "null"]\n')
    config = build_config(load_toml(toml), {"queue_size": 5})
    assert config.capture.input == "clip.mp4" and config.capture.loop is True
    assert config.pipeline.queue_size == 5  # the flag wins over the file
    assert config.output.output == ("a.mp4", "null")
    assert config.stats == Config().stats


@pytest.mark.parametrize(
    "text, message",
    [
        ("[nope]\nx = 1\n", "unknown section"),
        ("[capture]\nbogus = 1\n", "unknown option capture.bogus"),
        ("[capture]\npace = 'sometimes'\n", "is not allowed"),
        ("[pipeline]\nqueue_size = 'two'\n", "wrong type"),
        ("[capture\n", "not valid TOML"),
    ],
)
def test_bad_config_files_name_the_problem(tmp_path: Path, text: str, message: str):
    toml = tmp_path / "c.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match=message):
        build_config(load_toml(toml))


def test_missing_config_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_toml(tmp_path / "missing.toml")


def test_values_are_validated():
    with pytest.raises(ConfigError, match="queue-size"):
        build_config(None, {"queue_size": 0})
    with pytest.raises(ConfigError, match="camera-size"):
        build_config(None, {"camera_size": "12x"})
    with pytest.raises(ConfigError, match="crf"):
        build_config(None, {"crf": 99})
    with pytest.raises(ConfigError, match="slow-stage-ms"):
        build_config(None, {"slow_stage_ms": -1})
    assert build_config(None, {"slow_stage_ms": 40}).pipeline.slow_stage_ms == 40


def test_an_unknown_backend_is_a_usage_error_before_anything_opens(capsys):
    from realtime.cli import main
    from realtime.config import BACKEND_NAMES, SwapConfig
    from realtime.inference.backend import BACKENDS

    assert set(BACKEND_NAMES) == set(BACKENDS)
    with pytest.raises(ConfigError, match="unknown generator backend 'bogus'"):
        SwapConfig(backends=("cpu", "bogus"))
    assert main(["run", "--input", "demo", "--output", "null", "--backends", "bogus"]) == 2
    assert "unknown generator backend 'bogus'" in capsys.readouterr().err
