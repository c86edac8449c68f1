"""The control panel: every endpoint through Starlette's test client (token, uploads, gallery
confinement, sources, mapping, privacy switch, blend), identities changing per frame whole and
per tracked person in the swap stage, and the privacy switch in the blend.

The HTTP tests run on ``StandInSwap``, a swap stage without models (they need no face), so they run
on any clone; the tests that embed a real face build a real ``SwapStage`` and need the landmarker."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

pytest.importorskip("starlette")
pytest.importorskip("httpx")
from starlette.testclient import TestClient  # noqa: E402

from realtime.bundle import Detection, FrameBundle  # noqa: E402
from realtime.config import BlendConfig, DetectConfig, SwapConfig, TrackConfig  # noqa: E402
from realtime.control.api import make_app  # noqa: E402
from realtime.control.panel import MAX_UPLOAD_BYTES, Panel, declared_size, gallery_path  # noqa: E402
from realtime.control.preview import PreviewSink  # noqa: E402
from realtime.errors import SourceError  # noqa: E402
from realtime.live import LiveSettings  # noqa: E402
from realtime.models.aei_net import AEINet  # noqa: E402
from realtime.models.checkpoint import save_checkpoint  # noqa: E402
from realtime.models.identity import IdentityEncoder  # noqa: E402
from realtime.pipeline.stats import StatsCollector  # noqa: E402
from realtime.stages.blend import BlendStage  # noqa: E402
from realtime.stages.swap import SwapStage  # noqa: E402
from realtime.stages.track import FaceTracker  # noqa: E402
from realtime.testing import make_face_landmarks, make_ground_truth_frame  # noqa: E402

TOKEN = "test-token-0123456789abcdef"
AEI = {"crop_size": 128, "id_dim": 16, "attr_width": 4, "gen_width": 4, "max_mult": 2}


def _face_photo() -> bytes:
    from realtime.io.demo import demo_source_path

    return demo_source_path().read_bytes()


class StandInSwap:
    """What the panel asks of a swap stage, without a model: a photo's identity is its mean colour
    (a photo of one colour has no face), a face in the frame's is its landmarks' centre. Keeps
    every image it was asked to embed."""

    def __init__(self) -> None:
        self.config = SwapConfig()
        self.settings = LiveSettings(swap=self.config)
        self.images: list[np.ndarray] = []

    def describe(self) -> dict[str, object]:
        return {"generator": "aei_net", "generators": ["a.safetensors", "b.safetensors"]}

    def embedding_of_image(self, image: np.ndarray, what: str) -> torch.Tensor:
        self.images.append(image)
        if np.ptp(image) == 0:
            raise SourceError(f"no face found in the {what} image", "use a clear photo")
        return torch.nn.functional.normalize(torch.from_numpy(image.reshape(-1, 3).mean(0)).float() + 1, dim=0)

    def embedding_of_face(self, frame: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        return torch.nn.functional.normalize(torch.from_numpy(landmarks.mean(0)).float(), dim=0)


@pytest.fixture
def stand_in() -> StandInSwap:
    return StandInSwap()


@pytest.fixture(scope="module")
def swap_stage(tmp_path_factory) -> SwapStage:
    from conftest import NEEDS_FACE_MODEL, has_face_model

    if not has_face_model():
        pytest.skip(NEEDS_FACE_MODEL + " (the source face is found with it)")
    folder = tmp_path_factory.mktemp("panel")
    torch.manual_seed(0)
    save_checkpoint(folder / "g.safetensors", AEINet(**AEI), architecture="aei_net", hyperparameters=AEI)
    save_checkpoint(folder / "e.safetensors", IdentityEncoder(embed_dim=16, width=0.25), architecture="identity_encoder", hyperparameters={"embed_dim": 16, "width": 0.25})
    config = SwapConfig(generator=str(folder / "g.safetensors"), identity_encoder=str(folder / "e.safetensors"), source="demo", backends=("cpu",))
    stage = SwapStage(config, TrackConfig(crop_size=128), DetectConfig(max_faces=2))
    stage.setup()
    return stage


def _two_faces(frame_index: int = 0) -> FrameBundle:
    frame = np.ascontiguousarray(np.hstack([make_ground_truth_frame(frame_index, sensor_noise=0)] * 2))
    detections = [Detection(make_face_landmarks((320.0, 240.0), 70.0)), Detection(make_face_landmarks((960.0, 240.0), 70.0))]
    bundle = FrameBundle(frame_index, 0, frame, frame_index / 30)
    bundle.faces = FaceTracker(TrackConfig(birth_hits=1, crop_size=128, fade_s=0.0)).step(detections, 0.0, 0.0)
    return bundle


def _panel_over(swap, tmp_path) -> Panel:
    gallery = tmp_path / "faces"
    gallery.mkdir()
    (gallery / "grace.jpg").write_bytes(_face_photo())
    (tmp_path / "secret.jpg").write_bytes(_face_photo())
    swap.settings = LiveSettings(BlendConfig(), swap.config)
    preview = PreviewSink()
    preview.write(_two_faces())
    return Panel(swap, swap.settings, StatsCollector(), preview, gallery)


@pytest.fixture
def panel(stand_in, tmp_path) -> Panel:
    """The panel over the stand-in swap stage: every HTTP rule, no face model."""
    return _panel_over(stand_in, tmp_path)


@pytest.fixture
def client(panel) -> TestClient:
    return TestClient(make_app(panel, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def real_panel(swap_stage, tmp_path) -> Panel:
    """The panel over a real swap stage (tiny random weights, the real landmarker)."""
    return _panel_over(swap_stage, tmp_path)


@pytest.fixture
def real_client(real_panel) -> TestClient:
    return TestClient(make_app(real_panel, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"})


ENDPOINTS = [
    ("GET", "/"), ("GET", "/kiosk"), ("GET", "/api/state"), ("GET", "/api/numbers"), ("GET", "/api/preview.jpg"),
    ("GET", "/api/faces/1.jpg"), ("GET", "/api/gallery/grace.jpg"), ("POST", "/api/source/upload"), ("POST", "/api/source/gallery"),
    ("POST", "/api/source/frame"), ("POST", "/api/mapping"), ("POST", "/api/mode"), ("POST", "/api/blend"),
    ("POST", "/api/steady"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
@pytest.mark.parametrize("token", [None, "wrong", TOKEN[:-1], TOKEN + "x"])
def test_every_endpoint_refuses_a_missing_or_wrong_token(panel, method, path, token):
    client = TestClient(make_app(panel, TOKEN))
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.request(method, path, headers=headers)
    assert response.status_code == 401 and "token" in response.json()["error"]


def test_the_token_works_as_header_query_or_the_cookie_the_page_sets(panel):
    client = TestClient(make_app(panel, TOKEN))
    assert client.get(f"/api/state?token={TOKEN}").status_code == 200
    page = client.get(f"/?token={TOKEN}")
    assert page.status_code == 200 and "realtime" in page.text and "preview.mjpg" in page.text
    assert client.get("/api/state").status_code == 200  # the cookie from the page
    assert client.get("/kiosk").status_code == 200 and "Use my face" in client.get("/kiosk").text


def test_state_numbers_previews_and_faces(client):
    state = client.get("/api/state").json()
    assert state["mode"] == "swap" and [t["id"] for t in state["tracks"]] == [1, 2] and state["gallery"] == ["grace.jpg"]
    assert state["generator"] == "aei_net" and set(state["blend"]) >= {"erode", "blur", "opacity", "detail", "colour"}
    assert set(client.get("/api/numbers").json()) >= {"fps", "latency_ms", "stages_ms", "dropped", "failed"}
    jpeg = client.get("/api/preview.jpg")
    assert jpeg.headers["content-type"] == "image/jpeg" and cv2.imdecode(np.frombuffer(jpeg.content, np.uint8), cv2.IMREAD_COLOR).shape[1] == 640
    assert client.get("/api/faces/1.jpg").status_code == 200 and client.get("/api/faces/9.jpg").status_code == 404


def test_an_uploaded_face_becomes_the_default_identity(real_client, swap_stage):
    before = swap_stage.settings.choice
    response = real_client.post("/api/source/upload?name=grace.jpg", content=_face_photo())
    assert response.status_code == 200, response.text
    after = swap_stage.settings.choice
    assert after.version == before.version + 1 and after.source_name == "upload:grace.jpg" and after.default is not None
    assert torch.allclose(after.default, swap_stage.identity, atol=1e-5)  # the demo source, embedded the same way


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 415, "not a JPEG"),
        (b"GIF89a" + b"\0" * 100, 415, "not a JPEG"),
        (b"\x89PNG\r\n\x1a\n" + b"\0\0\0\rIHDR" + (60000).to_bytes(4, "big") + (60000).to_bytes(4, "big") + b"\x08\x02\0\0\0", 413, "declares 60000×60000"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 200, 415, "not a JPEG|could not be decoded"),
        (b"\xff\xd8\xff" + b"\0" * (MAX_UPLOAD_BYTES + 10), 413, "too large|MiB"),
    ],
)
def test_bad_uploads_are_refused_with_a_fix_and_change_nothing(client, stand_in, body, status, words):
    import re

    version = stand_in.settings.choice.version
    response = client.post("/api/source/upload", content=body)
    assert response.status_code == status and re.search(words, response.json()["error"]) and response.json()["fix"]
    assert stand_in.settings.choice.version == version and stand_in.images == []


def test_a_photo_without_a_face_is_a_clear_message(real_client):
    ok, png = cv2.imencode(".png", np.full((200, 200, 3), 90, np.uint8))
    response = real_client.post("/api/source/upload", content=png.tobytes())
    assert response.status_code == 422 and response.json()["error"].startswith("no face found")


@pytest.mark.parametrize("name", ["../secret.jpg", "..%2Fsecret.jpg", "/etc/passwd", ".hidden.jpg", "grace.jpg/..", "nope.jpg", "..\\secret.jpg"])
def test_the_gallery_never_reaches_outside_its_folder(client, panel, name):
    assert client.post("/api/source/gallery", json={"name": name}).status_code == 404
    with pytest.raises(Exception, match="no gallery photo"):
        gallery_path(panel.faces_dir, name)
    assert client.get(f"/api/gallery/{name}").status_code == 404


def test_a_gallery_face_and_the_face_in_the_frame_can_be_worn(client):
    assert client.post("/api/source/gallery", json={"name": "grace.jpg"}).json()["source"] == "gallery:grace.jpg"
    assert client.get("/api/gallery/grace.jpg").content == _face_photo()
    response = client.post("/api/source/frame", json={"face": 2})
    assert response.status_code == 200 and response.json()["source"] == "frame:track 2"
    assert client.post("/api/source/frame", json={"face": 7}).status_code == 404


def test_mapping_mode_and_blend(client, stand_in):
    swap_stage = stand_in
    client.post("/api/source/gallery", json={"name": "grace.jpg"})
    assert client.post("/api/mapping", json={"track": 2, "wear": "none"}).status_code == 200
    assert client.post("/api/mapping", json={"track": 1, "wear": "gallery:grace.jpg"}).status_code == 200
    tracks = {t["id"]: t["wears"] for t in client.get("/api/state").json()["tracks"]}
    assert tracks == {1: "gallery:grace.jpg", 2: "none"}
    assert client.post("/api/mapping", json={"track": 1, "wear": "nobody"}).status_code == 404
    assert client.post("/api/mapping", json={"track": "1"}).status_code == 400
    assert client.post("/api/mode", json={"mode": "blur"}).json()["mode"] == "blur" and swap_stage.settings.choice.mode == "blur"
    assert client.post("/api/mode", json={"mode": "off"}).status_code == 400
    assert client.post("/api/blend", json={"erode": 0.1, "keep_mouth": True}).json()["erode"] == 0.1
    assert client.post("/api/blend", json={"detail": 0.5}).json()["detail"] == 0.5
    for bad in ({"erode": "x"}, {"colour": "bogus"}, {"blend_device": "cuda"}, {"opacity": 3.0}, {"detail": -0.1}):
        response = client.post("/api/blend", json=bad)
        assert response.status_code == 400, bad
    assert client.post("/api/blend", content=b"not json", headers={"Content-Type": "application/json"}).status_code == 400
    assert client.get("/api/state").json()["steady"] == swap_stage.config.steady  # the run's until set live
    assert client.post("/api/steady", json={"steady": 0.2}).json()["steady"] == 0.2
    assert swap_stage.settings.swap.steady == 0.2 and client.get("/api/state").json()["steady"] == 0.2
    for bad in ("x", True, -0.1, 0.95, None):
        assert client.post("/api/steady", json={"steady": bad}).status_code == 400, bad


def _recording_runner(stage: SwapStage, calls: list[torch.Tensor]) -> None:
    for runner in stage.runners.values():
        original = runner.fn

        def record(*inputs, _original=original):
            calls.append(inputs[1].detach().clone())
            return _original(*inputs)

        runner.fn = record


def test_each_person_wears_their_own_identity_or_none(swap_stage):
    swap_stage.settings = LiveSettings(swap=swap_stage.config)
    calls: list[torch.Tensor] = []
    _recording_runner(swap_stage, calls)
    other = torch.nn.functional.normalize(torch.randn(16), dim=0)
    swap_stage.settings.map_track(2, other)
    bundle = swap_stage.process(_two_faces())
    assert len(calls) == 1 and torch.allclose(calls[0][0], swap_stage.identity) and torch.allclose(calls[0][1], other)
    assert all(f.swapped is not None for f in bundle.faces)
    swap_stage.settings.map_track(2, None)
    bundle = swap_stage.process(_two_faces(1))
    assert [f.swapped is not None for f in bundle.faces] == [True, False]  # track 2 wears nothing


def test_a_source_change_lands_on_the_next_frame_whole(swap_stage):
    """Changes arrive from another thread while frames are swapped: every frame's faces wear one
    identity, the old or the new, never a mix; after the change returns, the next frame is new."""
    import threading

    swap_stage.settings = LiveSettings(swap=swap_stage.config)
    calls: list[torch.Tensor] = []
    _recording_runner(swap_stage, calls)
    identities = [torch.nn.functional.normalize(torch.randn(16), dim=0) for _ in range(20)]
    done = threading.Event()

    def flip() -> None:
        for identity in identities:
            swap_stage.settings.update("choice", default=identity, source_name="x")
        done.set()

    thread = threading.Thread(target=flip)
    thread.start()
    frame = 0
    while not done.is_set() or frame < 3:
        swap_stage.process(_two_faces(frame))
        frame += 1
    thread.join()
    for batch in calls:
        assert torch.equal(batch[0], batch[1])  # both faces of a frame: one snapshot
    assert torch.equal(calls[-1][0], identities[-1])


def test_the_privacy_switch_shows_the_original_or_blurs_every_face():
    controls = LiveSettings()
    blend = BlendStage(controls, face_safety="hold")
    original = _two_faces()
    frame = original.frame.copy()
    controls.update("choice", mode="original")
    shown = blend.process(_two_faces())
    assert np.array_equal(shown.frame, frame)  # under 'hold' these unswapped faces would be covered
    controls.update("choice", mode="blur")
    blurred = blend.process(_two_faces())
    for face in blurred.faces:
        x0, y0, x1, y1 = (int(v) for v in face.box)
        assert not np.array_equal(blurred.frame[y0:y1, x0:x1], frame[y0:y1, x0:x1])


def test_declared_sizes_are_read_from_headers():
    ok, png = cv2.imencode(".png", np.zeros((30, 40, 3), np.uint8))
    ok, jpg = cv2.imencode(".jpg", np.zeros((30, 40, 3), np.uint8))
    ok, bmp = cv2.imencode(".bmp", np.zeros((30, 40, 3), np.uint8))
    assert declared_size(png.tobytes()) == declared_size(jpg.tobytes()) == declared_size(bmp.tobytes()) == (40, 30)
    assert declared_size(b"plain text") is None


def test_recording_from_the_panel_writes_a_playable_file_starting_at_zero(tmp_path):
    import av

    from realtime.config import OutputConfig
    from realtime.control.recording import RecordingSink
    from realtime.io.sources import SourceInfo

    info = SourceInfo(kind="camera", description="test", width=64, height=48, fps=30.0, total_frames=None, audio_path=None)
    sink = RecordingSink(info, OutputConfig(), tmp_path)
    frame = np.zeros((48, 64, 3), np.uint8)
    sink.write(FrameBundle(0, 0, frame, 5.0))  # not recording: nothing happens
    path = sink.start()
    for index in range(12):
        sink.write(FrameBundle(index, 0, frame, 10.0 + index / 30))
    assert sink.recording == path
    written = sink.stop()
    assert written == path and sink.recording is None and sink.frames == 12
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 12 and frames[0].time < 0.2  # from 0 (the encoder's usual two-frame delay), not 10 s


def test_record_start_and_stop_through_the_api(panel, tmp_path):
    from realtime.config import OutputConfig
    from realtime.control.recording import RecordingSink
    from realtime.io.sources import SourceInfo

    info = SourceInfo(kind="camera", description="test", width=64, height=48, fps=30.0, total_frames=None, audio_path=None)
    panel.recording = RecordingSink(info, OutputConfig(), tmp_path)
    client = TestClient(make_app(panel, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"})
    started = client.post("/api/record", json={"action": "start"}).json()["recording"]
    assert started.startswith("recording-") and client.get("/api/state").json()["recording"] == started
    for index in range(3):
        panel.recording.write(FrameBundle(index, 0, np.zeros((48, 64, 3), np.uint8), index / 30))
    stopped = client.post("/api/record", json={"action": "stop"}).json()
    assert stopped["file"] == started and stopped["frames"] == 3 and (tmp_path / started).is_file()
    assert client.post("/api/record", json={"action": "pause"}).status_code == 400
    panel.recording = RecordingSink(info, OutputConfig(), tmp_path / "missing")
    refused = client.post("/api/record", json={"action": "start"})
    assert refused.status_code == 507 and "does not exist" in refused.json()["error"]


def test_generators_prepared_at_start_are_switched_between_frames(tmp_path):
    from conftest import NEEDS_FACE_MODEL, has_face_model

    from realtime.errors import ConfigError

    if not has_face_model():
        pytest.skip(NEEDS_FACE_MODEL)
    torch.manual_seed(1)
    paths = []
    for name in ("a", "b"):
        save_checkpoint(tmp_path / f"{name}.safetensors", AEINet(**AEI), architecture="aei_net", hyperparameters=AEI)
        paths.append(str(tmp_path / f"{name}.safetensors"))
    save_checkpoint(tmp_path / "e.safetensors", IdentityEncoder(embed_dim=16, width=0.25), architecture="identity_encoder", hyperparameters={"embed_dim": 16, "width": 0.25})
    config = SwapConfig(generator=paths[0], also_generator=(paths[1],), identity_encoder=str(tmp_path / "e.safetensors"), source="demo", backends=("cpu",))
    stage = SwapStage(config, TrackConfig(crop_size=128), DetectConfig(max_faces=2))
    stage.setup()
    assert [g.name for g in stage.loaded] == ["a.safetensors", "b.safetensors"] and stage.active == 0
    first = stage.process(_two_faces()).faces[0].swapped.crop
    stage.settings.update("choice", generator=1)
    second = stage.process(_two_faces()).faces[0].swapped.crop
    assert stage.active == 1 and stage.describe()["active_generator"] == 1
    assert not np.array_equal(first, second)  # another generator's weights
    panel = Panel(stage, stage.settings, StatsCollector(), PreviewSink())
    client = TestClient(make_app(panel, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"})
    assert client.post("/api/generator", json={"index": 0}).json()["name"] == "a.safetensors"
    assert client.post("/api/generator", json={"index": 2}).status_code == 400
    assert client.get("/api/state").json()["generators"] == ["a.safetensors", "b.safetensors"]
    other = {**AEI, "crop_size": 256}
    save_checkpoint(tmp_path / "c.safetensors", AEINet(**other), architecture="aei_net", hyperparameters=other)
    mixed = SwapStage(SwapConfig(generator=paths[0], also_generator=(str(tmp_path / "c.safetensors"),), identity_encoder=str(tmp_path / "e.safetensors"), source="demo", backends=("cpu",)), TrackConfig(crop_size=128), DetectConfig())
    with pytest.raises(ConfigError, match="one crop size and template"):
        mixed.setup()


def test_the_panel_times_each_change_to_the_first_frame_swapped_under_it(real_panel, real_client, swap_stage):
    panel, client = real_panel, real_client
    response = client.post("/api/source/gallery", json={"name": "grace.jpg"}).json()
    assert panel.apply_latencies_ms() == []  # no frame swapped under it yet
    bundle = swap_stage.process(_two_faces(3))
    assert bundle.swap_version == response["version"]
    panel.preview.write(bundle)
    latencies = panel.apply_latencies_ms()
    assert len(latencies) == 1 and 0 <= latencies[0] < 60_000
    assert client.get("/api/state").json()["apply_to_frame_ms"] == latencies


def test_the_input_view_costs_nothing_until_someone_watches_it(real_panel, swap_stage):
    panel = real_panel
    original = _two_faces(4)
    untouched = original.frame.copy()
    assert swap_stage.process(original).input_preview is None
    panel.watch_input(True)
    bundle = swap_stage.process(_two_faces(4))
    assert bundle.input_preview is not None and bundle.input_preview.shape[1] == 640
    expected = cv2.resize(untouched, (640, 240), interpolation=cv2.INTER_AREA)
    assert np.array_equal(bundle.input_preview, expected)  # the input, before any swap
    panel.preview.write(bundle)
    assert panel.preview.jpeg(input_side=True) is not None
    panel.watch_input(False)
    assert swap_stage.process(_two_faces(5)).input_preview is None


def test_control_without_the_web_stack_is_refused_before_anything_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    import realtime.control as control
    from realtime.errors import ConfigError

    monkeypatch.setattr(control, "find_spec", lambda name: None if name == "uvicorn" else object())
    with pytest.raises(ConfigError, match="--control needs uvicorn.*pip install uvicorn"):
        control.check_panel_packages()
    monkeypatch.setattr(control, "find_spec", lambda name: object())
    control.check_panel_packages()


@pytest.mark.parametrize("address", ["0.0.0.0:8080", "192.168.1.5:8080", "[::]:8080", "example.com:80", "127.0.0.2:8080"])
def test_a_panel_beyond_this_machine_needs_control_remote(address):
    from realtime.config import build_config
    from realtime.errors import ConfigError

    with pytest.raises(ConfigError, match="beyond this machine.*--control-remote"):
        build_config(overrides={"control": address})
    assert build_config(overrides={"control": address, "control_remote": True}).control.control == address


@pytest.mark.parametrize("address", ["8080", "0", "127.0.0.1:8080", "localhost:8080", "[::1]:8080"])
def test_a_loopback_panel_needs_no_control_remote(address):
    from realtime.config import build_config

    assert build_config(overrides={"control": address}).control.control_remote is False


def test_a_control_token_shorter_than_16_characters_is_refused():
    from realtime.config import build_config
    from realtime.errors import ConfigError

    with pytest.raises(ConfigError, match="--control-token is too short.*at least 16"):
        build_config(overrides={"control": "8080", "control_token": "x" * 15})
    assert build_config(overrides={"control": "8080", "control_token": "x" * 16}).control.control_token == "x" * 16


def test_an_upload_streamed_without_content_length_is_capped(client, stand_in):
    def chunks():
        for _ in range(MAX_UPLOAD_BYTES // (1 << 20) + 2):
            yield b"\xff" * (1 << 20)

    response = client.post("/api/source/upload", content=chunks())
    assert response.request.headers.get("transfer-encoding") == "chunked" and "content-length" not in response.request.headers
    assert response.status_code == 413 and "too large" in response.json()["error"] and stand_in.images == []


def test_the_body_reader_stops_at_the_cap_without_reading_the_rest():
    """A body sent without Content-Length is read only until it passes the cap: the rest of the
    stream is never pulled (a client cannot make the panel hold more than the cap)."""
    import asyncio

    from starlette.requests import Request

    from realtime.control.api import _body
    from realtime.control.panel import PanelError

    chunk, pulled = b"\0" * (1 << 20), []

    async def receive():
        pulled.append(1)
        return {"type": "http.request", "body": chunk, "more_body": len(pulled) < 100}

    request = Request({"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}, receive)
    with pytest.raises(PanelError, match="too large") as refused:
        asyncio.run(_body(request))
    assert refused.value.status == 413 and len(pulled) == MAX_UPLOAD_BYTES // len(chunk) + 1


def _png_header(width: int, height: int) -> bytes:
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


@pytest.mark.parametrize("size", [(0, 30), (40, 0), (0, 0)])
def test_a_zero_pixel_image_is_refused_before_decoding(client, stand_in, size):
    body = _png_header(*size) + b"\0" * 64
    response = client.post("/api/source/upload", content=body)
    assert response.status_code == 400 and f"{size[0]}×{size[1]}" in response.json()["error"] and response.json()["fix"]
    assert stand_in.images == [] and stand_in.settings.choice.version == 0


# --- requests from elsewhere (issue 32 item 9) ---------------------------------------------------

JSON_ENDPOINTS = ["/api/source/gallery", "/api/source/frame", "/api/mapping", "/api/mode", "/api/generator", "/api/blend", "/api/steady", "/api/record"]


@pytest.mark.parametrize("host", ["evil.example", "testserver:8080", "127.0.0.1", "localhost", "testserver.evil.example", "", "bad host:x"])
def test_a_request_for_another_host_is_refused_even_with_the_token(client, stand_in, host):
    """A page on a DNS name rebound to this machine reaches the panel with its own name in Host."""
    version = stand_in.settings.choice.version
    response = client.post("/api/mode", json={"mode": "original"}, headers={"Host": host})
    assert response.status_code == 403 and "not this panel" in response.json()["error"] and response.json()["fix"]
    assert stand_in.settings.choice.mode == "swap" and stand_in.settings.choice.version == version
    assert client.get("/api/state", headers={"Host": host}).status_code == 403


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8081", "http://testserver:8080", "https://testserver", "http://evil.example", "null", "http://testserver/page", "file://"])
def test_a_request_from_another_page_is_refused_even_with_the_token(client, stand_in, origin):
    """SameSite ignores ports: a page on another port of this machine gets the cookie sent along,
    so only its Origin shows that the panel's page did not send it."""
    response = client.post("/api/mode", json={"mode": "original"}, headers={"Origin": origin})
    assert response.status_code == 403 and "not from the panel" in response.json()["error"]
    assert stand_in.settings.choice.mode == "swap"
    upload = client.post("/api/source/upload", content=_face_photo(), headers={"Origin": origin})
    assert upload.status_code == 403 and stand_in.images == []


def test_the_panels_own_origin_is_accepted(client, stand_in):
    assert client.post("/api/mode", json={"mode": "blur"}, headers={"Origin": "http://testserver"}).status_code == 200
    assert client.post("/api/mode", json={"mode": "swap"}, headers={"Origin": "http://testserver:80", "Host": "testserver:80"}).status_code == 200
    assert stand_in.settings.choice.mode == "swap" and stand_in.settings.choice.version == 2


@pytest.mark.parametrize(
    ("server", "bind", "host", "ok"),
    [
        (("127.0.0.1", 8080), "127.0.0.1", "127.0.0.1:8080", True),
        (("127.0.0.1", 8080), "127.0.0.1", "localhost:8080", True),
        (("127.0.0.1", 8080), "127.0.0.1", "LOCALHOST:8080", True),
        (("127.0.0.1", 8080), "127.0.0.1", "127.0.0.1:8081", False),
        (("127.0.0.1", 8080), "127.0.0.1", "127.0.0.1", False),
        (("127.0.0.1", 8080), "127.0.0.1", "rebound.example:8080", False),
        (("::1", 8080), "::1", "[::1]:8080", True),
        (("::1", 8080), "::1", "::1:8080", False),
        (("192.168.1.5", 8080), "0.0.0.0", "192.168.1.5:8080", True),
        (("192.168.1.5", 8080), "0.0.0.0", "localhost:8080", False),
        (("192.168.1.5", 8080), "0.0.0.0", "0.0.0.0:8080", False),
        (("192.168.1.5", 8080), "studio.lan", "studio.lan:8080", True),
        (("192.168.1.5", 8080), "studio.lan", "other.lan:8080", False),
    ],
)
def test_the_panel_answers_only_to_its_own_address(server, bind, host, ok):
    from realtime.control.api import check_same_origin

    def scope(**headers):
        return {"server": server, "headers": [(k.encode(), v.encode()) for k, v in headers.items()]}

    assert (check_same_origin(scope(host=host), bind) is None) == ok
    assert (check_same_origin(scope(host=host, origin=f"http://{host}"), bind) is None) == ok
    if ok:  # the right Host, but a page elsewhere
        assert "not from the panel" in check_same_origin(scope(host=host, origin=f"http://{host.rsplit(':', 1)[0]}:9"), bind)


def test_a_wildcard_panel_answers_to_this_machines_name():
    import socket

    from realtime.control.api import check_same_origin

    name = socket.gethostname()
    scope = {"server": ("192.168.1.5", 8080), "headers": [(b"host", f"{name}:8080".encode())]}
    assert check_same_origin(scope, "0.0.0.0") is None and check_same_origin(scope, "127.0.0.1") is not None


@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx"])
def test_json_endpoints_take_only_application_json(client, stand_in, path, content_type):
    """The three types a page elsewhere can send without the browser asking first (and none)."""
    version = stand_in.settings.choice.version
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post(path, content=b'{"mode": "original", "track": 1, "wear": "none", "name": "grace.jpg", "index": 1, "steady": 0.2, "action": "start"}', headers=headers)
    assert response.status_code == 415 and "takes JSON" in response.json()["error"] and "application/json" in response.json()["fix"]
    assert stand_in.settings.choice.version == version


def test_json_with_a_charset_is_json(client, stand_in):
    response = client.post("/api/mode", content=b'{"mode": "blur"}', headers={"Content-Type": "Application/JSON; charset=utf-8"})
    assert response.status_code == 200 and stand_in.settings.choice.mode == "blur"


# --- photos read at once, and how big (item 10) -------------------------------------------------


class GatedSwap(StandInSwap):
    """A stand-in whose embedding waits until the test lets it go, counting how many run at once;
    a call that finds ``hold`` calls already inside returns at once (so a missing bound shows as
    an overlap, never as a hang)."""

    def __init__(self, hold: int) -> None:
        super().__init__()
        import threading

        self.hold, self.inside, self.most_inside = hold, 0, 0
        self.lock, self.all_in, self.go = threading.Lock(), threading.Event(), threading.Event()

    def embedding_of_image(self, image, what):
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            if self.inside == self.hold:
                self.all_in.set()
            wait = self.inside <= self.hold
        try:
            if wait:
                assert self.go.wait(60), "the test never let the embedding go"
            return super().embedding_of_image(image, what)
        finally:
            with self.lock:
                self.inside -= 1


def test_at_most_two_photos_are_read_at_once_and_a_third_gets_429(tmp_path):
    import threading

    from realtime.control.panel import DECODE_SLOTS, PanelError

    assert DECODE_SLOTS == 2
    gated = GatedSwap(hold=DECODE_SLOTS)
    panel = _panel_over(gated, tmp_path)
    panel.decode_wait_s = 0.0
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(panel.wear_upload(_face_photo(), "a.jpg"))) for _ in range(DECODE_SLOTS)]
    for thread in threads:
        thread.start()
    try:
        assert gated.all_in.wait(60), "the first two uploads never reached the face finder"
        with pytest.raises(PanelError) as refused:
            panel.wear_upload(_face_photo(), "third.jpg")
        assert refused.value.status == 429 and "2 photos are being read" in refused.value.message and refused.value.fix
        with pytest.raises(PanelError, match="being read"):
            panel.wear_gallery("grace.jpg")  # the gallery shares the slots
    finally:
        gated.go.set()
        for thread in threads:
            thread.join()
    assert len(results) == DECODE_SLOTS and gated.most_inside == DECODE_SLOTS
    assert panel.wear_upload(_face_photo(), "fourth.jpg")["source"] == "upload:fourth.jpg"  # the slots come back


def test_a_photo_waits_for_a_slot_when_one_frees(tmp_path):
    """Waiting is the first answer: a third photo, sent while two are read, is read when one ends."""
    import threading

    gated = GatedSwap(hold=2)
    panel = _panel_over(gated, tmp_path)
    panel.decode_wait_s = 120.0  # a bound on the wait, never reached: the slot frees as soon as the test says so
    threads = [threading.Thread(target=panel.wear_upload, args=(_face_photo(), f"{i}.jpg")) for i in range(3)]
    for thread in threads:
        thread.start()
    try:
        assert gated.all_in.wait(60)
    finally:
        gated.go.set()
        for thread in threads:
            thread.join()
    assert len(gated.images) == 3 and gated.most_inside == 2


def test_an_upload_refused_for_want_of_a_slot_is_a_429_over_http(client, panel, stand_in):
    panel.decode_wait_s = 0.0
    for _ in range(2):
        assert panel._decoding.acquire(blocking=False)
    response = client.post("/api/source/upload", content=_face_photo())
    assert response.status_code == 429 and "being read" in response.json()["error"] and stand_in.images == []


def _jpeg(width: int, height: int, *, progressive: bool = False) -> bytes:
    """A grey JPEG of any size for little memory (one channel), with a red-ish stripe at the top."""
    image = np.full((height, width), 90, np.uint8)
    image[: height // 10] = 200
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive), cv2.IMWRITE_JPEG_QUALITY, 60])
    return data.tobytes()


def test_a_large_jpeg_is_decoded_reduced_for_the_face_finder(client, stand_in):
    from realtime.control.panel import MAX_DECODE_PIXELS

    response = client.post("/api/source/upload", content=_jpeg(6000, 4000))
    assert response.status_code == 200, response.text
    (image,) = stand_in.images
    assert image.shape == (1000, 1500, 3) and image.shape[0] * image.shape[1] <= MAX_DECODE_PIXELS  # 1/4: DCT-scaled decoding
    assert image[10, 10].tolist() == pytest.approx([200] * 3, abs=3) and image[-10, -10].tolist() == pytest.approx([90] * 3, abs=3)


def test_decoding_a_40_mpx_jpeg_costs_little_memory(tmp_path):
    """Peak memory of decoding, measured in a fresh process: a 7000×5700 JPEG decoded whole costs
    about 230 MB; reduced, a few tens."""
    import subprocess
    import sys

    path = tmp_path / "big.jpg"
    path.write_bytes(_jpeg(7000, 5700))
    code = (
        "import resource, sys; from realtime.control.panel import decode_image; data = open(sys.argv[1], 'rb').read(); "
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; image = decode_image(data); "
        "print(image.shape, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True, timeout=300)
    shape, grown_mb = done.stdout.rsplit(" ", 1)
    assert shape.startswith("(1425, 1750, 3") and int(grown_mb) < 80, done.stdout


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (_png_header(7300, 5440) + b"\0" * 1000, "a PNG of 7300×5440 pixels is decoded whole"),
        (b"BM" + b"\0" * 16 + (5000).to_bytes(4, "little") + (3000).to_bytes(4, "little") + b"\0" * 100, "a BMP of 5000×3000"),
    ],
)
def test_a_png_or_bmp_too_big_to_decode_small_is_refused_before_decoding(client, stand_in, body, words):
    response = client.post("/api/source/upload", content=body)
    assert response.status_code == 413 and words in response.json()["error"] and "JPEG" in response.json()["fix"] and stand_in.images == []


def test_a_progressive_jpeg_too_big_to_decode_small_is_refused(client, stand_in):
    response = client.post("/api/source/upload", content=_jpeg(4000, 3500, progressive=True))
    assert response.status_code == 413 and "progressive JPEG of 4000×3500" in response.json()["error"] and stand_in.images == []
    assert client.post("/api/source/upload", content=_jpeg(400, 300, progressive=True)).status_code == 200


def test_a_png_decoded_whole_is_shrunk_before_the_face_finder(client, stand_in):
    from realtime.control.panel import MAX_DECODE_PIXELS

    image = np.zeros((2000, 3000, 3), np.uint8)
    image[..., 2] = 255  # red, in OpenCV's BGR order
    ok, png = cv2.imencode(".png", image)
    assert client.post("/api/source/upload", content=png.tobytes()).status_code == 200
    (seen,) = stand_in.images
    assert seen.shape[0] * seen.shape[1] <= MAX_DECODE_PIXELS and abs(seen.shape[1] / seen.shape[0] - 1.5) < 0.01
    assert seen[0, 0].tolist() == [255, 0, 0]  # RGB for the face finder


def test_a_large_gallery_photo_is_decoded_reduced_too(client, panel, stand_in):
    (panel.faces_dir / "big.jpg").write_bytes(_jpeg(6000, 4000))
    assert client.post("/api/source/gallery", json={"name": "big.jpg"}).status_code == 200
    assert stand_in.images[0].shape == (1000, 1500, 3)


# --- numbers from query strings and JSON (item 11) ----------------------------------------------


@pytest.mark.parametrize("track", ["9" * 5000, "-1", "1e3", "0x10", "٣", "2147483648", " 1", "1.0"])
def test_a_track_in_a_query_string_or_path_is_checked_before_it_is_used(panel, stand_in, track):
    from urllib.parse import quote

    client = TestClient(make_app(panel, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}, raise_server_exceptions=False)
    response = client.post(f"/api/source/upload?track={quote(track)}", content=_face_photo())
    assert response.status_code == 400 and "is not a track id" in response.json()["error"] and stand_in.images == []
    face = client.get(f"/api/faces/{quote(track)}.jpg")
    assert face.status_code == 400 and "is not a track id" in face.json()["error"]


def test_a_track_in_a_query_string_reaches_the_mapping(client, stand_in):
    assert client.post("/api/source/upload?track=2147483647", content=_face_photo()).json()["track"] == 2147483647
    assert 2147483647 in stand_in.settings.choice.per_track


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/mapping", b'{"track": ' + b"9" * 5000 + b', "wear": "none"}'),
        ("/api/mapping", b'{"track": 2147483648, "wear": "none"}'),
        ("/api/mapping", b'{"track": -1, "wear": "none"}'),
        ("/api/source/frame", b'{"face": ' + b"1" * 5000 + b"}"),
        ("/api/source/gallery", b'{"name": "grace.jpg", "track": 1e400}'),
        ("/api/generator", b'{"index": ' + b"1" * 5000 + b"}"),
        ("/api/steady", b'{"steady": NaN}'),
        ("/api/steady", b'{"steady": 1e999}'),
        ("/api/blend", b'{"erode": ' + b"1" * 400 + b"}"),
        ("/api/blend", b'{"opacity": -Infinity}'),
        ("/api/mode", b"[" * 30_000 + b"]" * 30_000),
        ("/api/mode", b'{"mode": "\xff"}'),
    ],
)
def test_every_number_in_json_is_checked(panel, stand_in, path, body):
    client = TestClient(make_app(panel, TOKEN), headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}, raise_server_exceptions=False)
    response = client.post(path, content=body)
    assert response.status_code == 400 and response.json()["error"] and response.json()["fix"], response.text
    assert stand_in.settings.choice.version == 0


def test_a_json_body_over_64_kib_is_refused(client):
    response = client.post("/api/mode", content=b'{"mode": "' + b"x" * (64 << 10) + b'"}', headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "too large" in response.json()["error"]


# --- headers, the input view, the gallery list (item 12) ----------------------------------------

SECURITY_HEADERS = {"x-frame-options": "DENY", "content-security-policy": "frame-ancestors 'none'", "referrer-policy": "no-referrer", "x-content-type-options": "nosniff"}


def _has_security_headers(response) -> bool:
    return all(response.headers.get(name) == value for name, value in SECURITY_HEADERS.items())


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_response_forbids_framing_referrers_and_sniffing(panel, method, path):
    app = make_app(panel, TOKEN)
    answered = TestClient(app).request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
    refused = TestClient(app).request(method, path)
    foreign = TestClient(app).request(method, path, headers={"Authorization": f"Bearer {TOKEN}", "Origin": "http://127.0.0.1:1"})
    assert (refused.status_code, foreign.status_code) == (401, 403)
    for response in (answered, refused, foreign):
        assert _has_security_headers(response), (response.status_code, dict(response.headers))


@pytest.mark.parametrize("path", ["/api/preview.mjpg", "/api/events", "/api/input.mjpg", "/nowhere"])
def test_streams_and_errors_carry_the_headers_too(panel, path):
    panel.closing.set()  # the streams end at once
    response = TestClient(make_app(panel, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}).get(path)
    assert _has_security_headers(response), (path, response.status_code)


def test_the_input_view_of_a_run_without_a_generator_answers_at_once(tmp_path):
    """Without a swap stage nothing makes the input copies: the stream would stay open for ever
    without a frame. (Were it opened, the first frame asked for ends the run here, so a missing
    check shows as an empty 200, not a hang.)"""
    preview = PreviewSink()
    panel = Panel(None, LiveSettings(), StatsCollector(), preview)
    asked: list[bool] = []

    def jpeg(*args, **kwargs):
        asked.append(True)
        panel.closing.set()

    preview.jpeg = jpeg  # type: ignore[method-assign]
    response = TestClient(make_app(panel, TOKEN), headers={"Authorization": f"Bearer {TOKEN}"}).get("/api/input.mjpg")
    assert response.status_code == 409 and "no input view" in response.json()["error"] and "--generator" in response.json()["fix"]
    assert asked == [] and panel.settings.choice.input_preview is False


def test_the_gallery_lists_only_what_it_serves(client, panel, tmp_path, monkeypatch):
    import os

    faces = panel.faces_dir
    (faces / "escape.jpg").symlink_to(tmp_path / "secret.jpg")  # outside the folder: never served
    (faces / "alias.jpg").symlink_to(faces / "grace.jpg")  # inside: served
    (faces / "broken.jpg").symlink_to(faces / "missing.jpg")
    (faces / "notes.txt").write_text("x")
    (faces / "photo.txt").symlink_to(faces / "grace.jpg")  # a photo under a name that is not one
    (faces / "folder.jpg").mkdir()
    (faces / ".hidden.jpg").write_bytes(_face_photo())
    (faces / "locked.png").write_bytes(_face_photo())
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path).endswith("locked.png") else real_access(path, mode))  # unreadable (root reads everything)
    listed = client.get("/api/state").json()["gallery"]
    assert listed == ["alias.jpg", "grace.jpg"]
    for name in listed:
        assert client.get(f"/api/gallery/{name}").status_code == 200
    for name in ("escape.jpg", "broken.jpg", "notes.txt", "photo.txt", "folder.jpg", "locked.png"):
        assert client.get(f"/api/gallery/{name}").status_code == 404, name


def test_every_live_option_has_one_widget_and_every_widget_is_a_live_option():
    """Making an option live is ``live=True`` on its field and one widget: the page finds the
    widget's section and option in its ``data-live`` and id, the state carries every live option
    under its section, and one endpoint per section takes them."""
    import re

    from realtime.config import section_types
    from realtime.control.page import PANEL_HTML
    from realtime.live import LIVE_SECTIONS
    from realtime.options import live_fields

    widgets = re.findall(r'id="(\w+)" data-live="(\w+)"', PANEL_HTML)
    live = {(name, section) for section in LIVE_SECTIONS for name in live_fields(section_types()[section])}
    assert len(widgets) == len(set(widgets)) == PANEL_HTML.count('data-live="')  # one each, each found
    assert live - set(widgets) == {("colour_smoothing_s", "blend")}  # live through the API and the controls file only
    assert set(widgets) <= live


def test_a_live_swap_option_goes_through_the_sections_endpoint(client, stand_in):
    response = client.post("/api/swap", json={"steady": 0.3})
    assert response.status_code == 200 and response.json()["steady"] == 0.3 and stand_in.settings.swap.steady == 0.3
    assert client.get("/api/state").json()["swap"] == {"steady": 0.3}
    assert client.post("/api/swap", json={"generator": "x.onnx"}).status_code == 400  # not live
    assert client.post("/api/swap", json={"steady": 0.95}).status_code == 400  # SwapConfig's own range
