"""Carrying a source file's audio into the processed video, after the video is finished.

Audio never enters the frame pipeline (it would only add latency there); because file-to-file runs
are lossless and keep the source's timestamps, remuxing afterwards keeps lip sync exactly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

# Codecs MP4/MOV can hold as they are; anything else is re-encoded to AAC.
_COPYABLE = {"aac", "mp3", "alac", "ac3", "eac3", "opus", "flac"}


def mux_audio(video_path: Path, audio_source: Path, out_path: Path, *, loop: bool = False) -> None:
    """Write ``out_path``: the video stream of ``video_path`` plus the first audio stream of
    ``audio_source``, cut to the video's length (and, with ``loop``, repeated to fill it, as the
    video repeated the file). Atomic: ``out_path`` appears only when complete."""
    import av

    tmp = out_path.with_name(f".{out_path.stem}.muxing{out_path.suffix}")
    try:
        with av.open(str(video_path)) as vin, av.open(str(audio_source)) as ain, av.open(str(tmp), "w") as out:
            v_in = vin.streams.video[0]
            a_in = ain.streams.audio[0]
            v_out = out.add_stream_from_template(v_in)
            end_s = float(vin.duration / 1e6) if vin.duration else None
            copy = a_in.codec_context.name in _COPYABLE and out.format.name not in ("mpegts",)
            if copy:
                a_out = out.add_stream_from_template(a_in)
                audio_packets = _looped_packets(ain, a_in, end_s) if loop else _packets(ain, a_in, end_s)
            else:
                a_out = out.add_stream("aac", rate=a_in.codec_context.sample_rate or 48000)
                audio_packets = _transcoded(ain, a_in, a_out, end_s, loop=loop)
            video_packets = _packets(vin, v_in, None)
            for packet, stream in _interleave(video_packets, v_out, audio_packets, a_out):
                packet.stream = stream
                out.mux(packet)
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)


def _packets(container: Any, stream: Any, end_s: float | None) -> Any:
    for packet in container.demux(stream):
        if packet.dts is None:  # the demuxer's flush packet
            continue
        if end_s is not None and packet.pts is not None and float(packet.pts * stream.time_base) >= end_s:
            return
        yield packet


def _looped_packets(container: Any, stream: Any, end_s: float | None) -> Any:
    """The stream's packets again and again, each pass shifted to follow the last, up to ``end_s``."""
    shift = 0
    while True:
        first = last_end = None
        for packet in container.demux(stream):
            if packet.dts is None or packet.pts is None:
                continue
            if first is None:
                first = packet.pts
            last_end = max(last_end or 0, packet.pts + (packet.duration or 0))
            packet.pts += shift
            packet.dts += shift
            if end_s is not None and float(packet.pts * stream.time_base) >= end_s:
                return
            yield packet
        if first is None or last_end is None or last_end <= first or end_s is None:
            return  # an empty or zero-length pass would loop for ever
        shift += last_end - first
        container.seek(0, stream=stream)


def _transcoded(container: Any, a_in: Any, a_out: Any, end_s: float | None, *, loop: bool = False) -> Any:
    played_s = 0.0
    while True:
        pass_s, decoded = 0.0, False
        for frame in container.decode(a_in):
            decoded = True
            duration_s = frame.samples / (frame.sample_rate or 48000)
            if end_s is not None and played_s + pass_s >= end_s:
                yield from a_out.encode(None)
                return
            pass_s += duration_s
            frame.pts = None  # let the encoder number samples itself
            yield from a_out.encode(frame)
        played_s += pass_s
        if not loop or not decoded or end_s is None:
            break
        container.seek(0, stream=a_in)
    yield from a_out.encode(None)


def _interleave(video: Any, v_out: Any, audio: Any, a_out: Any) -> Any:
    """Merge two packet streams by decode time, as a player reads them."""
    def seconds(packet: Any) -> float:
        ts = packet.dts if packet.dts is not None else packet.pts
        return float(ts * packet.time_base) if ts is not None else 0.0

    v_next, a_next = next(video, None), next(audio, None)
    while v_next is not None or a_next is not None:
        if a_next is None or (v_next is not None and seconds(v_next) <= seconds(a_next)):
            yield v_next, v_out
            v_next = next(video, None)
        else:
            yield a_next, a_out
            a_next = next(audio, None)
