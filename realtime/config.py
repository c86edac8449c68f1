"""Typed configuration: one frozen dataclass per stage and one root ``Config``.

Each option is defined exactly once, here, with its help text. ``cli/flags.py`` turns the fields into
command-line flags (``option()`` metadata), a TOML file can set the same fields by section, and
the CLI wins over the file. Validation happens in ``__post_init__`` so a bad value fails before
anything opens, with a ``ConfigError`` that says which option and how to fix it.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from realtime.choices import (  # noqa: F401 - re-exported: the options' types live with the options
    BACKEND_NAMES,
    COVERING,
    BlendDevice,
    BlendFuse,
    ColourMode,
    DetectMode,
    ErrorPolicy,
    FaceSafety,
    MaskColour,
    OccluderProfile,
    Others,
    OutputErrorPolicy,
    Pace,
    ParserCrop,
    ParserProfile,
    ParserRegion,
    QueuePolicy,
    Smoothing,
    TemplateName,
    VirtualCameraBackend,
    region_names,
)
from realtime.errors import ConfigError
from realtime.options import option

DEFAULT_CROP_SIZE = 256
DEFAULT_PARSER_REGIONS = ("skin", "brows", "eyes", "glasses", "nose", "mouth", "lips")  # FaceFusion's: every face class


def parse_size(text: str, *, what: str = "size") -> tuple[int, int]:
    """``'1280x720'`` -> ``(1280, 720)``; raises ConfigError on anything else."""
    parts = text.lower().replace("*", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ConfigError(f"{what} {text!r} is not WIDTHxHEIGHT", "write it like 1280x720")
    width, height = (int(p) for p in parts)
    if not (16 <= width <= 8192 and 16 <= height <= 8192) or width % 2 or height % 2:
        raise ConfigError(
            f"{what} {text!r} is unsupported", "use even sizes between 16 and 8192, e.g. 1280x720"
        )
    return width, height


@dataclass(frozen=True)
class CaptureConfig:
    input: str = option(
        "demo",
        "what to read: a video file, a camera (/dev/video0, camera:0, or a device name), a URL "
        "(rtsp://, http://, udp://, ...), or 'demo' for the built-in clip",
        metavar="SOURCE",
    )
    pace: Pace = option(
        "auto",
        "play files at their native frame rate like a camera ('native') or as fast as possible "
        "('none'); 'auto' paces only when a live output (virtual camera, stream) is used or --loop",
    )
    loop: bool = option(False, "replay a file (or the demo clip) forever, e.g. for a demo booth")
    max_frames: int | None = option(None, "stop after this many frames", metavar="N")
    camera_size: str | None = option(None, "camera capture size, e.g. 1280x720", metavar="WxH")
    camera_fps: float | None = option(None, "camera frame rate to request", metavar="FPS")
    camera_format: str | None = option(
        None, "camera pixel/input format, e.g. mjpeg (needed by most webcams above 720p)"
    )
    open_timeout_s: float = option(
        10.0, "seconds to wait for a camera or URL to open and for each read", metavar="S"
    )
    demo_frames: int = option(150, "length of one pass of the built-in demo clip", metavar="N")

    def __post_init__(self) -> None:
        if not self.input.strip():
            raise ConfigError("--input is empty", "name a file, a camera, a URL or 'demo'")
        if self.camera_size is not None:
            parse_size(self.camera_size, what="--camera-size")
        if self.camera_fps is not None and not 1 <= self.camera_fps <= 480:
            raise ConfigError(f"--camera-fps {self.camera_fps} is out of range", "use 1 to 480")
        if self.max_frames is not None and self.max_frames < 1:
            raise ConfigError("--max-frames must be at least 1", "drop the option to run to the end")
        if self.open_timeout_s <= 0:
            raise ConfigError("--open-timeout-s must be positive", "use e.g. 10")
        if self.demo_frames < 2:
            raise ConfigError("--demo-frames must be at least 2", "use e.g. 150")


@dataclass(frozen=True)
class DetectConfig:
    faces: bool = option(True, "find, track and process faces (off: the pipeline only passes video through)")
    landmarker_model: str | None = option(
        None, "path of face_landmarker.task (default: $REALTIME_FACE_LANDMARKER, the cache, then download)", metavar="PATH"
    )
    max_faces: int = option(1, "most faces to find per frame", metavar="N")
    min_detection_confidence: float = option(0.5, "face detector confidence threshold", metavar="P")
    min_presence_confidence: float = option(0.5, "landmarker face-presence threshold", metavar="P")
    min_tracking_confidence: float = option(0.5, "landmarker tracking threshold", metavar="P")
    detect_every: int = option(1, "run the landmarker on every Nth frame; the tracker predicts in between", metavar="N")
    detect_mode: DetectMode = option(
        "auto",
        "'sync' runs the landmarker inside the frame's path; 'async' runs it beside the pipeline so "
        "no frame waits for it (the tracker predicts); 'auto' is async for live input, sync for files",
    )
    detect_max_side: int = option(640, "downscale frames to this long side for the landmarker", metavar="PX")
    min_face_px: float = option(24.0, "ignore faces whose eyes are closer than this (pixels)", metavar="PX")
    blendshapes: bool = option(False, "also output the 52 expression blendshapes")
    head_pose: bool = option(False, "also output the 4×4 head-pose matrix")

    def __post_init__(self) -> None:
        if not 1 <= self.max_faces <= 16:
            raise ConfigError(f"--max-faces {self.max_faces} is out of range", "use 1 to 16")
        for name in ("min_detection_confidence", "min_presence_confidence", "min_tracking_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} {value} is out of range", "use 0 to 1")
        if self.detect_every < 1:
            raise ConfigError("--detect-every must be at least 1", "use 1 to detect on every frame")
        if self.detect_max_side < 64:
            raise ConfigError("--detect-max-side is too small", "use at least 64 (640 is a good default)")


@dataclass(frozen=True)
class TrackConfig:
    smoothing: Smoothing = option("kalman", "landmark smoothing: 'kalman' (adaptive) or 'off' (raw detections)")
    crop_size: int | None = option(None, "aligned crop size, 128, 256 or 512 (default: the generator's, else 256)", metavar="PX")
    template: TemplateName | None = option(None, "alignment template (default: the generator's, else 'arcface'); 'ffhq' is looser; the others are other tools' framings for users' models")
    coast_s: float = option(0.15, "keep predicting a lost face this long before fading it out", metavar="S")
    fade_s: float = option(0.25, "fade a face in at birth and out when lost over this time", metavar="S")
    birth_hits: int = option(2, "detections in a row before a new face counts", metavar="N")
    match_iou: float = option(0.2, "least box overlap for a detection to continue a track", metavar="IOU")
    scene_cut: float = option(
        0.5, "end every track when more than this fraction of the picture changes at once (a cut in a film, "
        "a switched scene), so no face is pasted where the last shot had one; 0: never", metavar="F",
    )

    @property
    def crop_px(self) -> int:
        """The crop size in use: the one given, else 256 (``Config`` fills in the generator's)."""
        return self.crop_size if self.crop_size is not None else DEFAULT_CROP_SIZE

    @property
    def template_name(self) -> TemplateName:
        """The template in use: the one given, else ArcFace's (``app`` fills in the generator's)."""
        return self.template or "arcface"

    def __post_init__(self) -> None:
        if self.crop_size is not None and self.crop_size not in (128, 256, 512):
            raise ConfigError(f"--crop-size {self.crop_size} is not supported", "use 128, 256 or 512")
        if self.coast_s < 0 or self.fade_s < 0:
            raise ConfigError("--coast-s and --fade-s cannot be negative", "use e.g. 0.15 and 0.25")
        if self.birth_hits < 1:
            raise ConfigError("--birth-hits must be at least 1", "use e.g. 2")
        if not 0.0 <= self.scene_cut < 1.0:
            raise ConfigError(f"--scene-cut {self.scene_cut} is out of range", "use 0 (off) to 0.99; 0.5 is a good default")
        if not 0.0 < self.match_iou < 1.0:
            raise ConfigError(f"--match-iou {self.match_iou} is out of range", "use a value between 0 and 1")


MAX_STEADY = 0.9  # --steady's ceiling: more and a still face would lag its own small changes by several frames


@dataclass(frozen=True)
class SwapConfig:
    generator: str | None = option(None, "generator: our checkpoint (.safetensors) or your own ONNX swapper (inswapper, hyperswap, simswap, ghost, DeepFaceLive .dfm; told apart by content, not name); without one, frames pass through unswapped", metavar="PATH")
    source: str | None = option(None, "image of the face to wear (identity-driven generators); 'demo' is a built-in public-domain portrait", metavar="IMAGE")
    identity_encoder: str | None = option(None, "identity encoder used to embed --source: our checkpoint, or an ArcFace ONNX (w600k_r50.onnx) for users' ONNX swappers", metavar="PATH")
    also_generator: tuple[str, ...] = option((), "more generators prepared at start, to switch to from the control panel without a restart (one crop size and template, the same --identity-encoder)", metavar="PATH")
    generator_profile: str | None = option(None, "users' ONNX swappers: the family (inswapper_128, reswapper_128, reswapper_256, hyperswap_256, simswap_256, simswap_512, ghost_256, dfm) when the file cannot tell", metavar="NAME")
    identity_converter: str | None = option(None, "users' ONNX swappers: the family's identity converter ONNX (SimSwap, GHOST), or inswapper_128.onnx for its latent map (ReSwapper)", metavar="PATH")
    pixel_boost: int = option(1, "run the generator on a k× larger crop split into k² sub-images in one batch, and interleave them: sharper faces for k² the generator work (1, 2 or 4)", metavar="K")
    target_identity: int = option(0, "per-target generators: which decoder (person) to render", metavar="N")
    occluder: str | None = option(None, "an occlusion model (XSeg ONNX as FaceFusion or VisoMaster ship it, or VisoMaster's occluder.onnx; told apart by content): what is in front of the face in the input (a hand, a microphone) stays visible over the swap", metavar="PATH")
    occluder_profile: OccluderProfile | None = option(None, "the occluder's family when the file cannot tell")
    occluder_colour: MaskColour = option("auto", "the colour order the occluder is fed ('auto': its family's; the two peers feed XSeg opposite orders)")
    parser: str | None = option(None, "a face parser (BiSeNet ONNX, FaceFusion's or VisoMaster's): the swap is pasted only over the --parser-regions it finds", metavar="PATH")
    parser_profile: ParserProfile | None = option(None, "the face parser's family when the file cannot tell")
    parser_regions: tuple[str, ...] = option(
        DEFAULT_PARSER_REGIONS, f"with --parser: the regions the swap covers, comma-separated ({', '.join(typing.get_args(ParserRegion))}); "
        "leave one out to keep the real one, e.g. without mouth and glasses", metavar="REGIONS",
    )
    parser_on: ParserCrop = option("input", "which crop the parser reads: 'input' (the real mouth, the real glasses) or 'swapped' (the generated face's regions, as FaceFusion and VisoMaster do)")
    steady: float = option(
        0.5, "on a still head, average each face's generated crop with its previous one with this weight (0 to 0.9; "
        "0: off): less shimmer; any expression or turn switches it off at once", metavar="W", live=True,
    )
    backends: tuple[str, ...] = option(
        ("tensorrt", "aot", "compiled", "eager-cuda", "cpu"), "generator backends in order of preference", metavar="NAME"
    )
    engines_dir: str = option(
        "auto", "where build-engines put compiled engines ('auto': ~/.cache/realtime/engines, or under $REALTIME_CACHE); "
        "a folder other users can write to is refused", metavar="DIR",
    )

    def __post_init__(self) -> None:
        unknown = [name for name in self.backends if name not in BACKEND_NAMES]
        if unknown or not self.backends:
            raise ConfigError(f"unknown generator backend {unknown[0]!r}" if unknown else "--backends is empty", f"use some of {', '.join(BACKEND_NAMES)}")
        if self.target_identity < 0:
            raise ConfigError("--target-identity cannot be negative", "use 0 for the first person")
        if self.pixel_boost not in (1, 2, 4):
            raise ConfigError(f"--pixel-boost {self.pixel_boost} is not supported", "use 1, 2 or 4")
        if not 0.0 <= self.steady <= MAX_STEADY:
            raise ConfigError(f"--steady {self.steady} is out of range", f"use 0 (off) to {MAX_STEADY}; 0.5 is the default")
        regions = region_names(self.parser_regions)
        unknown = [name for name in regions if name not in typing.get_args(ParserRegion)]
        if unknown or not regions:
            raise ConfigError(f"unknown --parser-regions {unknown[0]!r}" if unknown else "--parser-regions is empty", f"use some of {', '.join(typing.get_args(ParserRegion))} (ears, neck, hair, hat and clothes are never face)")


@dataclass(frozen=True)
class BlendConfig:
    erode: float = option(0.05, "shrink the face mask by this fraction of the eye distance", metavar="F", live=True)
    blur: float = option(0.12, "feather the mask edge over this fraction of the eye distance", metavar="F", live=True)
    colour: ColourMode = option(
        "smoothed", "match the swapped face's colour to the target: 'off', 'per_frame', or 'smoothed' over time (no pumping)",
        live=True,
    )
    colour_smoothing_s: float = option(0.5, "time constant of the smoothed colour statistics", metavar="S", live=True)
    keep_mouth: bool = option(False, "keep the original mouth (teeth, tongue, exact lip sync)", live=True)
    keep_eyes: bool = option(False, "keep the original eyes (gaze)", live=True)
    opacity: float = option(1.0, "how strongly the swap covers the face, 0 to 1", metavar="A", live=True)
    detail: float = option(
        0.8, "restore this share (0 to 1) of the camera's fine skin texture, finer than the generator's crop can hold, "
        "over the swapped face: sharper at 1080p, where a face spans more pixels than the crop (0: off; more also "
        "restores more of the camera's grain, which flickers)", metavar="D", live=True,
    )
    blend_device: BlendDevice = option("auto", "where to composite: 'cuda' (torch, one CUDA graph per face), 'cpu' (OpenCV), or 'auto'")
    blend_compile: BlendFuse = option(
        "auto", "CUDA: fuse each face's mask and colour maths with torch.compile (~0.35-0.7 ms less per 256-px face): "
        "'auto' fuses when build-engines has saved the fused kernels for this GPU in --engines-dir (a warm start), "
        "'on' fuses anyway (compiling adds tens of seconds to the start), 'off' never"
    )
    controls_file: str | None = option(
        None, "a TOML file of blend options (erode, blur, colour, keep_mouth, keep_eyes, opacity) re-read when it changes, for live tweaks", metavar="PATH"
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.erode <= 1.0 or not 0.0 <= self.blur <= 1.0:
            raise ConfigError("--erode and --blur must be between 0 and 1", "e.g. --erode 0.05 --blur 0.12")
        if not 0.0 <= self.opacity <= 1.0:
            raise ConfigError(f"--opacity {self.opacity} is out of range", "use 0 to 1")
        if not 0.0 <= self.detail <= 1.0:
            raise ConfigError(f"--detail {self.detail} is out of range", "use 0 (off) to 1 (all of the camera's fine texture)")
        if self.colour_smoothing_s < 0:
            raise ConfigError("--colour-smoothing-s cannot be negative", "use e.g. 0.5")


@dataclass(frozen=True)
class SafetyConfig:
    face_safety: FaceSafety = option(
        "auto",
        "what the viewer sees where a face cannot be swapped (a new face before its first swap, a face the "
        "detector lost, a frame whose swap or blend failed): 'hold' keeps the face's last swap, following its "
        "predicted motion, and blurs a face that has none; 'blur' or 'pixelate' cover the face's box; 'reveal' "
        "shows the real face (fading, as peers do); 'auto': 'hold' for live input or output, 'reveal' for a file "
        "processed offline",
    )
    cover_lost_s: float = option(
        1.0, "how long a lost face stays held or covered after the detector last saw it (then its track ends)", metavar="S",
    )
    others: Others = option(
        "auto",
        "faces past --max-faces (a passer-by, a guest: every slot is taken by faces swapped longer): 'cover' "
        "covers them as --face-safety covers ('hold' blurs them), 'reveal' leaves them as they are, 'swap' swaps "
        "them too (more generator work on a crowded frame); 'auto': 'cover' under a covering --face-safety, "
        "else 'reveal'",
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.cover_lost_s <= 30.0:
            raise ConfigError(f"--cover-lost-s {self.cover_lost_s} is out of range", "use 0 to 30 seconds (1 is a good default)")


def resolve_face_safety(choice: str, *, live: bool) -> str:
    """``auto``: a streamer's live picture is held and covered; an offline file keeps today's reveal."""
    if choice == "auto":
        return "hold" if live else "reveal"
    return choice


def resolve_others(choice: str, face_safety: str) -> str:
    """``auto``: faces past --max-faces are covered when ``face_safety`` (resolved) covers, else shown."""
    if choice == "auto":
        return "cover" if face_safety in COVERING else "reveal"
    return choice


# The landmarker looks for this many faces more than --max-faces: a face over the limit must be
# seen to be covered. MediaPipe runs its face detector whenever it tracks fewer faces than it may
# find, so with room for more it also finds a new shot's face on the very frame of a cut.
FACES_SEEN_PAST_MAX = 2


@dataclass(frozen=True)
class OutputConfig:
    output: tuple[str, ...] = option(
        (),
        "where to send the result; repeat for several: a file (out.mp4), a stream URL "
        "(udp://127.0.0.1:5000 as MPEG-TS, rtmp://... as FLV), 'vcam' (virtual camera) or 'null'",
        metavar="DEST",
    )
    vcam_backend: VirtualCameraBackend = option(
        "auto", "virtual camera backend (pyvirtualcam); 'auto' picks the platform's default"
    )
    vcam_device: str | None = option(
        None, "virtual camera device, e.g. /dev/video10 for v4l2loopback", metavar="DEVICE"
    )
    codec: str = option("libx264", "video encoder for file and stream outputs")
    crf: int = option(20, "x264 quality for file outputs (lower is better, 18-28 typical)")
    preset: str = option("veryfast", "x264 speed preset for file outputs")
    stream_bitrate_kbps: int = option(6000, "bitrate of stream outputs", metavar="KBPS")
    audio: bool = option(True, "carry the input file's audio into file outputs")
    sink_queue: int = option(4, "frames a slow output may fall behind before it drops", metavar="N")
    on_output_error: OutputErrorPolicy = option(
        "stop", "when one of several outputs fails (a stream drops, a disk fills): 'stop' ends the run, "
        "'drop' closes that output (kept as incomplete) and the others go on",
    )

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 51:
            raise ConfigError(f"--crf {self.crf} is out of range", "use 0 to 51 (20 is a good default)")
        if self.stream_bitrate_kbps < 100:
            raise ConfigError("--stream-bitrate-kbps is too low", "use at least 100")
        if self.sink_queue < 1:
            raise ConfigError("--sink-queue must be at least 1", "use e.g. 4")


@dataclass(frozen=True)
class PipelineConfig:
    queue_size: int = option(2, "frames each queue between stages holds", metavar="N")
    queue_policy: QueuePolicy = option(
        "auto",
        "when a queue is full: 'latest_wins' drops the oldest frame (live), 'block' waits "
        "(lossless file processing); 'auto' picks by whether the input is live or paced",
    )
    on_error: ErrorPolicy = option(
        "passthrough",
        "after --max-consecutive-failures failed frames in a row: keep passing frames through "
        "unswapped ('passthrough') or stop the run ('stop')",
    )
    max_consecutive_failures: int = option(
        30, "failed frames in a row that trigger --on-error", metavar="N"
    )
    device_frames: bool = option(
        True,
        "keep each frame on the GPU from capture to blend: one upload, one download per frame "
        "(CUDA only, when the generator and the blend both run there)",
    )
    start_timeout_s: float = option(
        300.0,
        "how long the stages may take to start before the run gives up (a cold start compiles the "
        "generator once per batch size, i.e. three times with --max-faces 4)",
        metavar="S",
    )
    stall_timeout_s: float = option(
        10.0,
        "stop with an error, printing every thread's stack, when no frame comes out for this long "
        "while frames are in flight (a stuck GPU or device: a demo booth's supervisor can restart); 0: never",
        metavar="S",
    )
    slow_stage_ms: float = option(
        0.0,
        "diagnostics: when a stage has been on one frame this long, take every thread's Python stack "
        "(up to 20 times) into the report's slow_stage_stacks; 0: off",
        metavar="MS",
    )
    gil_switch_ms: float = option(
        0.5,
        "how often Python hands the interpreter lock between busy stage threads while the pipeline "
        "runs (Python's default is 5 ms, which a stage back from the GPU or the decoder may wait)",
        metavar="MS",
    )

    def __post_init__(self) -> None:
        if not 0.05 <= self.gil_switch_ms <= 100:
            raise ConfigError(f"--gil-switch-ms {self.gil_switch_ms} is out of range", "use 0.05 to 100 (Python's default is 5)")
        if self.stall_timeout_s < 0:
            raise ConfigError(f"--stall-timeout-s {self.stall_timeout_s} cannot be negative", "use e.g. 10, or 0 to switch the check off")
        if self.slow_stage_ms < 0:
            raise ConfigError(f"--slow-stage-ms {self.slow_stage_ms} cannot be negative", "use e.g. 40, or 0 to switch it off")
        if self.start_timeout_s <= 0:
            raise ConfigError(f"--start-timeout-s {self.start_timeout_s} must be positive", "use e.g. 300")
        if not 1 <= self.queue_size <= 1024:
            raise ConfigError(f"--queue-size {self.queue_size} is out of range", "use 1 to 1024")
        if self.max_consecutive_failures < 1:
            raise ConfigError("--max-consecutive-failures must be at least 1", "use e.g. 30")


@dataclass(frozen=True)
class StatsConfig:
    stats: bool = option(False, "print a one-line status every second")
    report: str | None = option(
        None, "write a JSON latency report (and a PNG plot beside it) here", metavar="PATH"
    )
    quiet: bool = option(False, "print nothing but errors")


def parse_control_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` → (host, port); the host is 127.0.0.1 when only a port is given."""
    host, _, port_text = text.rpartition(":")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"--control {text!r} is not [HOST:]PORT", "e.g. --control 8080 or --control 127.0.0.1:8080") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"--control port {port} is out of range", "use 1 to 65535 (0: any free port)")
    return host.strip("[]") or "127.0.0.1", port


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ControlConfig:
    control: str | None = option(None, "serve the control panel and its JSON API at [HOST:]PORT (127.0.0.1 when only a port is given): preview, faces, per-person mapping, live numbers", metavar="[HOST:]PORT")
    control_remote: bool = option(False, "allow --control on an address other than this machine's loopback (anyone who can reach it and has the token controls the run)")
    control_token: str | None = option(None, "the token every panel request must carry (default: a random one, printed at start)", metavar="TOKEN")
    faces_dir: str | None = option(None, "a folder of face photos the panel offers as a gallery", metavar="DIR")
    record_dir: str = option(".", "where recordings started from the panel are written (recording-DATE-TIME.mp4)", metavar="DIR")

    def __post_init__(self) -> None:
        if self.control is None:
            return
        host, _ = parse_control_address(self.control)
        if host not in LOCAL_HOSTS and not self.control_remote:
            raise ConfigError(f"--control {self.control} would serve the panel beyond this machine", "add --control-remote if that is what you want, or use a port alone (127.0.0.1)")
        if self.control_token is not None and len(self.control_token) < 16:
            raise ConfigError("--control-token is too short", "use at least 16 characters (or leave it out for a random one)")


@dataclass(frozen=True)
class Config:
    capture: CaptureConfig = field(default_factory=CaptureConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    track: TrackConfig = field(default_factory=TrackConfig)
    swap: SwapConfig = field(default_factory=SwapConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    control: ControlConfig = field(default_factory=ControlConfig)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)


_SECTION_TYPES: dict[str, type] = typing.get_type_hints(Config)


def section_types() -> dict[str, type]:
    """Section name -> its dataclass, in the order of ``Config``."""
    return dict(_SECTION_TYPES)


def field_owner() -> dict[str, str]:
    """Field name -> section name; field names are unique across sections (they become flags)."""
    owners: dict[str, str] = {}
    for section, cls in _SECTION_TYPES.items():
        for f in dataclasses.fields(cls):
            if f.name in owners:
                raise AssertionError(f"option {f.name} is defined twice")
            owners[f.name] = section
    return owners


MAX_SETTINGS_BYTES = 1 << 20  # a settings file is a few hundred bytes; /dev/zero is not one


def read_settings_text(path: Path, what: str = "config file", limit: int = MAX_SETTINGS_BYTES) -> str:
    """A small regular text file's contents. A FIFO, a device or anything over ``limit`` bytes is
    refused before it is read (opened without blocking, checked on the open file), so a pipe
    cannot hang the caller and /dev/zero cannot fill its memory."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist", "check the path") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read ({exc.strerror})", "check its permissions") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{what} {path} is not a regular file", "point it at a TOML file, not a pipe or a device")
        if info.st_size > limit:
            raise ConfigError(f"{what} {path} is {info.st_size} bytes, more than a settings file holds ({limit})", "check the path")
        data = os.read(fd, limit + 1)
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text", "save it as a UTF-8 TOML file") from None


def load_toml(path: Path, what: str = "config file") -> dict[str, dict[str, Any]]:
    """Read a TOML config file into ``{section: {field: value}}``, checking every name."""
    text = read_settings_text(path, what)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML ({exc})", "fix the line it names") from None
    types = section_types()
    for section, values in data.items():
        if section not in types or not isinstance(values, dict):
            raise ConfigError(
                f"config file {path} has an unknown section [{section}]",
                f"use one of {', '.join('[' + s + ']' for s in types)}",
            )
        known = {f.name for f in dataclasses.fields(types[section])}
        for key in values:
            if key not in known:
                raise ConfigError(
                    f"config file {path} has an unknown option {section}.{key}",
                    f"valid options in [{section}]: {', '.join(sorted(known))}",
                )
    return data


def build_config(
    file_values: dict[str, dict[str, Any]] | None = None, overrides: dict[str, Any] | None = None
) -> Config:
    """Defaults, then the config file's sections, then flat CLI ``overrides`` (field -> value)."""
    merged: dict[str, dict[str, Any]] = {s: dict(v) for s, v in (file_values or {}).items()}
    owners = field_owner()
    for name, value in (overrides or {}).items():
        if name not in owners:
            raise ConfigError(f"unknown option {name}", "see --help for the options")
        merged.setdefault(owners[name], {})[name] = value
    sections: dict[str, Any] = {}
    for section, cls in section_types().items():
        values = merged.get(section, {})
        hints = typing.get_type_hints(cls)
        for key, value in values.items():
            values[key] = _coerce(f"{section}.{key}", hints[key], value)
        sections[section] = cls(**values)
    return Config(**sections)


def coerce_section_values(section: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` for fields of ``section``, checked against their annotations (ConfigError if not)."""
    hints = typing.get_type_hints(section_types()[section])
    return {key: _coerce(f"{section}.{key}", hints[key], value) for key, value in values.items()}


def _coerce(name: str, hint: Any, value: Any) -> Any:
    """Check a value from TOML or the CLI against its annotation; lists become tuples."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if value is None and type(None) in args:
        return None
    if origin is typing.Union or origin is types.UnionType:
        inner = [a for a in args if a is not type(None)]
        return _coerce(name, inner[0], value)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{name} = {value!r} is not allowed", f"use one of {', '.join(map(str, args))}")
        return value
    if origin is tuple:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"{name} must be a list", "write it like [\"a\", \"b\"]")
        return tuple(_coerce(name, args[0], v) for v in items)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name} = {value!r} is not true/false", "write true or false")
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint is str and isinstance(value, str):
        return value
    raise ConfigError(f"{name} = {value!r} has the wrong type", f"expected {getattr(hint, '__name__', hint)}")
