"""What a model file is, read from its content, never its name: a DeepFaceLive ``.dfm`` is an ONNX
file, a checkpoint may be renamed, a download may keep a query string for a suffix.

Both formats are recognised from a few bytes, in bounded memory whatever the file's size:
safetensors by its header (an 8-byte little-endian length, then a JSON object that fits the file);
ONNX by walking the top-level protobuf fields of a ModelProto from the first byte to the last,
reading each tag and length and skipping over the bytes (the graph, megabytes of weights, is one
field), with a graph among them. Fields newer than this reader are skipped as protobuf would.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO, Literal

from realtime.errors import ModelError

ModelFormat = Literal["safetensors", "onnx"]
ONNX_SUFFIXES = (".onnx", ".dfm")
SAFETENSORS_SUFFIXES = (".safetensors",)
MAX_SAFETENSORS_HEADER = 100 << 20  # the safetensors library's own limit
MAX_TOP_LEVEL_FIELDS = 100_000  # a real ModelProto has a few dozen (opsets, metadata)
# ModelProto's fields (onnx.proto) and their wire types: 0 varint, 2 length-delimited.
_ONNX_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}
_ONNX_GRAPH = 7


def _is_safetensors(head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= min(MAX_SAFETENSORS_HEADER, size - 8) and head[8:9] == b"{"


def _varint(handle: BinaryIO) -> int | None:
    value = 0
    for shift in range(0, 64, 7):
        byte = handle.read(1)
        if not byte:
            return None
        value |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return value
    return None


def _is_onnx(handle: BinaryIO, size: int) -> bool:
    """Whether the file is a sequence of ModelProto fields ending exactly at its end, a graph
    among them: read tag by tag, skipping each field's bytes."""
    handle.seek(0)
    seen_graph = False
    for _ in range(MAX_TOP_LEVEL_FIELDS):
        if handle.tell() == size:
            return seen_graph
        tag = _varint(handle)
        if tag is None or tag >> 3 == 0 or _ONNX_FIELDS.get(tag >> 3, tag & 7) != tag & 7:
            return False  # a field a ModelProto cannot have, or a known one of the wrong kind
        wire = tag & 7
        if wire == 0:
            if _varint(handle) is None:
                return False
            continue
        if wire in (1, 5):  # fixed 64 and 32 bits: fields newer than this reader
            handle.seek(8 if wire == 1 else 4, 1)
            if handle.tell() > size:
                return False
            continue
        if wire != 2:
            return False
        length = _varint(handle)
        if length is None or handle.tell() + length > size:
            return False
        seen_graph = seen_graph or tag >> 3 == _ONNX_GRAPH
        handle.seek(length, 1)
    return False


def sniff_model_format(path: Path) -> ModelFormat | None:
    """The format of ``path`` by its content, or None when it is neither (or cannot be read)."""
    try:
        with path.open("rb") as handle:
            size = path.stat().st_size
            if _is_safetensors(handle.read(10), size):
                return "safetensors"
            return "onnx" if _is_onnx(handle, size) else None
    except OSError:
        return None


def describe_format(fmt: ModelFormat | None) -> str:
    return {"safetensors": "a realtime checkpoint (safetensors)", "onnx": "an ONNX model (a DeepFaceLive .dfm is one)", None: "neither a realtime checkpoint nor an ONNX model"}[fmt]


def detect_model_format(path: Path, what: str = "model") -> ModelFormat:
    """The format ``path`` holds, by content. A file that is neither goes to the reader its name
    suggests (which then says what is wrong with it), else it is refused here, named."""
    if not path.is_file():
        raise ModelError(f"{what} {path} does not exist", "check the path")
    found = sniff_model_format(path)
    if found is not None:
        return found
    suffix = path.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return "onnx"
    if suffix in SAFETENSORS_SUFFIXES:
        return "safetensors"
    with path.open("rb") as handle:
        head = handle.read(8)
    raise ModelError(
        f"{what} {path} is {describe_format(None)} (it starts with {head!r})",
        "pass a .safetensors checkpoint written by realtime or an ONNX model; check that the download is complete",
    )
