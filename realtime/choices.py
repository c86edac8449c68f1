"""Every closed set of choices, defined once: the config's options (and so the CLI's choices), the
queue policies, the face states and policies, the kinds of input and output. No imports but
``typing``: any module may use these without pulling in anything else."""

from __future__ import annotations

from typing import Literal

# run options (config.py makes flags of them)
Pace = Literal["auto", "native", "none"]
QueuePolicy = Literal["auto", "latest_wins", "block"]
ErrorPolicy = Literal["passthrough", "stop"]
OutputErrorPolicy = Literal["stop", "drop"]
DetectMode = Literal["auto", "sync", "async"]
TemplateName = Literal["arcface", "ffhq", "insightface_128", "arcface_112_v1", "ffhq_512", "mtcnn_512"]
Smoothing = Literal["kalman", "off"]
ColourMode = Literal["off", "per_frame", "smoothed"]
BlendDevice = Literal["auto", "cpu", "cuda"]
BlendFuse = Literal["auto", "on", "off"]
FaceSafety = Literal["auto", "reveal", "hold", "blur", "pixelate"]
Others = Literal["auto", "swap", "cover", "reveal"]  # faces past --max-faces
SwapMode = Literal["swap", "original", "blur"]  # the panel's privacy switch: swap faces, show them, blur them
VirtualCameraBackend = Literal["auto", "v4l2loopback", "obs", "unitycapture", "akvirtualcamera"]
# users' face parsers: the face regions --parser-regions may name (FaceFusion's names for BiSeNet's
# classes, and three pairs by one name); ears, neck, clothes, hair and hat are never face
ParserRegion = Literal[
    "skin", "left-eyebrow", "right-eyebrow", "brows", "left-eye", "right-eye", "eyes", "glasses", "nose", "mouth",
    "upper-lip", "lower-lip", "lips",
]

ParserCrop = Literal["input", "swapped"]  # which crop a face parser reads
OccluderProfile = Literal["xseg_facefusion", "xseg_visomaster", "occluder_visomaster"]  # byo/masks/profiles.py's
ParserProfile = Literal["bisenet"]
MaskColour = Literal["auto", "rgb", "bgr"]  # an occluder's colour order ('auto': its profile's)
# the generator backends (inference/backend.py's BACKENDS, which a test holds to this list); named
# here so that a bad --backends is a usage error before anything opens, without importing torch
BACKEND_NAMES: tuple[str, ...] = ("tensorrt", "aot", "compiled", "eager-cuda", "eager-cuda-bf16", "eager-cuda-fp32", "onnxruntime", "cpu")
COVERING: tuple[str, ...] = ("hold", "blur", "pixelate")  # face-safety policies that never reveal a face

# the engine and the stages
Policy = Literal["latest_wins", "block"]  # a queue's, once 'auto' is resolved
FaceState = Literal["tentative", "live", "lost"]
CoverAction = Literal["hold", "blur", "pixelate"]
CoverMode = Literal["blur", "pixelate"]
SourceKind = Literal["file", "camera", "url", "demo"]
SinkKind = Literal["file", "stream", "vcam", "null"]


def region_names(items: tuple[str, ...]) -> list[str]:
    """--parser-regions as given (names, or comma-separated lists of them: 'skin,nose') → names."""
    return [name.strip() for item in items for name in item.split(",") if name.strip()]
