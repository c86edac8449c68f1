"""The blend on a torch device: each face's box up, ``blend_region`` there, the box back down.

On CUDA each region shape is captured once as a CUDA graph (``region.py`` explains why) and
replayed on the blender's own stream, with reused pinned host buffers: per face and frame that
is four small uploads, one replay, one download and one wait. Only the face's box crosses the
bus (a tenth of a 1080p frame). On "torch-cpu" the same function runs eagerly: tests check it
against the OpenCV path. If capturing a graph fails, that shape runs eagerly, with one log line.

When the frame itself is on the GPU (``composite_device``, see ``gpu/frames.py``) the
box is read from and written back into that copy with device-to-device copies, nothing waits on
the host, and the whole frame goes back once, after the last face.

Shapes are built ahead, at set-up: every square a face of 128–1024 px can take (``prebuild``).
A face of another size gets its shape built when it first appears, in that frame (tens of ms,
once). Captures never run beside the other stages' GPU work (``gpu/gate.py``): built on a
worker thread beside live frames, captures hung and crashed the pipeline.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch

from realtime.bundle import Face, HostSwapped
from realtime.config import BlendConfig
from realtime.gpu.frames import DeviceFrame, download
from realtime.gpu.gate import GPU_GATE, register_stream
from realtime.stages.blend.plan import FacePlan, plan_face, region_sizes
from realtime.stages.blend.region import (
    CropCore,
    RegionShape,
    blend_region,
    compile_crop_core,
    crop_space,
    fused_crop_core,
    new_colour_state,
    params_size,
)
from realtime.vision.align import invert_affine
from realtime.vision.colour import smoothing_weight
from realtime.vision.landmarks import LANDMARK_COUNT
from realtime.vision.masks_torch import mask_holes

log = logging.getLogger("realtime")
PARAM_BUFFERS = 4  # per region shape: see _Slot.take_params
MAX_GRAPHS = 40  # region shapes kept captured: the ~15 built ahead for one setting, and room for a live change


@dataclass
class _Slot:
    """Device inputs and outputs of one region shape, their pinned host twins, and its graph."""

    region: torch.Tensor
    crop: torch.Tensor
    generator_mask: torch.Tensor
    params: torch.Tensor
    state: torch.Tensor
    host_region: torch.Tensor
    host_crop: torch.Tensor
    host_mask: torch.Tensor
    host_params: list[torch.Tensor]  # a ring: see take_params
    host_out: torch.Tensor
    out_region: torch.Tensor | None = None
    out_state: torch.Tensor | None = None
    graph: Any = None
    released: list[Any] = field(default_factory=lambda: [None] * PARAM_BUFFERS)  # per params buffer: CUDA event, its last upload is done
    turn: int = 0  # the params buffer in use

    def take_params(self) -> torch.Tensor:
        """The next pinned params buffer, once its last upload is done. A ring of them, because
        faces of one frame often share a shape: with one buffer, the second face waited on the
        host for the first one's upload, which is queued behind that frame's generator."""
        self.turn = (self.turn + 1) % len(self.host_params)
        if self.released[self.turn] is not None:
            self.released[self.turn].synchronize()
        return self.host_params[self.turn]

    @property
    def params_in_use(self) -> torch.Tensor:
        return self.host_params[self.turn]


class GpuBlender:
    def __init__(self, device: str = "cuda", *, fuse: bool = False) -> None:
        self.device = torch.device("cuda" if device == "cuda" else "cpu")
        self.cuda = self.device.type == "cuda"
        # CUDA: crop-space maths compiled per crop-space shape (region.fused_crop_core)
        # when its first slot is built; if compiling fails, the eager maths
        self.fuse = fuse and self.cuda
        self._fused_ready: set[RegionShape] = set()
        self.stream = torch.cuda.Stream(self.device) if self.cuda else None
        self.slots: OrderedDict[RegionShape, _Slot] = OrderedDict()
        self.states: dict[int, torch.Tensor] = {}
        self.track_times: dict[int, float] = {}
        self.graphs_failed = False
        self.capture_stream = torch.cuda.Stream(self.device) if self.cuda else None
        if self.stream is not None:
            register_stream("blend", self.stream)
            register_stream("blend-capture", self.capture_stream)
        # one memory pool for every graph's intermediates: they all replay on one stream, one after
        # another, and copy their outputs out before the next replay, so they can share it
        self._pool = torch.cuda.graph_pool_handle() if self.cuda else None
        self.live = False  # frames flow: a shape built now was not built ahead (counted, logged)
        self.shapes_built_live = 0

    def warm_up(self, crop_size: int, settings: BlendConfig) -> None:
        """One blend of a blank face before frames flow: the first real face must not pay for
        CUDA's lazy start-up (libraries, kernels: about half a second)."""
        frame = np.zeros((2 * crop_size, 2 * crop_size, 3), np.uint8)
        angles = np.linspace(0.0, 2 * np.pi, LANDMARK_COUNT, endpoint=False)  # any points: a circle
        points = crop_size * (1.0 + 0.3 * np.stack([np.cos(angles), np.sin(angles)], axis=1))
        crop_from_frame = np.array([[1.0, 0, -crop_size / 2], [0, 1.0, -crop_size / 2]])
        face = Face(-1, points, None, (0.0, 0.0, 1.0, 1.0), 1.0, crop_from_frame, invert_affine(crop_from_frame), crop_size)
        face.swapped = HostSwapped(np.zeros((crop_size, crop_size, 3), np.uint8))
        self.composite(frame, [face], 0.0, settings)
        self.forget(set())
        self.slots.clear()  # a real face has another region shape: keep no buffers for this one

    def prebuild(self, crop_size: int, settings: BlendConfig, width: int, height: int, *, generator_mask: bool = False) -> int:
        """Build the slots (and graphs) of every region shape a face of the usual sizes can take in
        a ``width``×``height`` frame with these settings, before frames flow: a capture holds the
        other stages' GPU work back for tens of ms, which is when paced runs dropped frames.
        Returns how many were built."""
        holes = mask_holes(settings.keep_mouth, settings.keep_eyes)
        built = 0
        for h, w in region_sizes(width, height):
            shape = RegionShape(h, w, crop_size, LANDMARK_COUNT, holes, generator_mask, settings.colour != "off")
            if shape not in self.slots:
                self._slot(shape)
                built += 1
        return built

    def close(self) -> None:
        self.slots.clear()  # their graphs and buffers go with them

    def forget(self, live_ids: set[int]) -> None:
        for track_id in [k for k in self.states if k not in live_ids]:
            del self.states[track_id], self.track_times[track_id]

    def _plan(self, face: Face, width: int, height: int, t_s: float, settings: BlendConfig, has_mask: bool) -> FacePlan | None:
        return plan_face(face, width, height, settings, has_mask=has_mask, colour_weight=self._colour_weight(face.track_id, t_s, settings))

    def composite(self, frame: np.ndarray, faces: list[Face], t_s: float, settings: BlendConfig) -> np.ndarray:
        """Blend ``faces`` into ``frame`` (in place, returned)."""
        height, width = frame.shape[:2]
        for face in faces:
            assert face.swapped is not None  # the stage blends swapped faces only
            swapped = face.swapped.host()  # the stage brought every crop to the host: no copy here
            plan = self._plan(face, width, height, t_s, settings, swapped.mask is not None)
            if plan is None:
                continue
            x0, y0, x1, y1 = plan.box
            state = self.states.get(face.track_id)
            slot = self._slot(plan.shape)
            plan.pack(slot.take_params().numpy())  # straight into a pinned buffer of the slot
            slot.host_region.numpy()[...] = frame[y0:y1, x0:x1]
            slot.host_crop.numpy()[...] = swapped.crop
            if swapped.mask is not None:
                slot.host_mask.numpy()[...] = swapped.mask
            frame[y0:y1, x0:x1], self.states[face.track_id] = self._run(plan.shape, slot, state)
        return frame

    def composite_device(self, frame: DeviceFrame, faces: list[Face], t_s: float, settings: BlendConfig) -> tuple[np.ndarray, Any]:
        """Blend faces whose crops are on the device into the frame's device copy, then queue
        its one download: (the host frame, the event to wait for before reading it)."""
        tensor = frame.tensor
        height, width = tensor.shape[:2]
        with GPU_GATE.shared(), torch.cuda.stream(self.stream) if self.stream is not None else nullcontext():
            frame.wait_on(self.stream)
            for face in faces:
                assert face.swapped is not None and face.swapped.on_device  # the stage sends only such faces here
                crop, mask = cast("torch.Tensor", face.swapped.crop), cast("torch.Tensor | None", face.swapped.mask)
                plan = self._plan(face, width, height, t_s, settings, mask is not None)
                if plan is None:
                    continue
                for made_elsewhere in (crop, mask):  # by the swap stage's stream: keep it for ours
                    if self.stream is not None and made_elsewhere is not None:
                        made_elsewhere.record_stream(self.stream)
                x0, y0, x1, y1 = plan.box
                region = tensor[y0:y1, x0:x1]
                state = self.states.get(face.track_id)
                slot = self._slot(plan.shape)
                plan.pack(slot.take_params().numpy())
                slot.region.copy_(region)
                slot.crop.copy_(crop)
                if mask is not None:
                    slot.generator_mask.copy_(mask)
                out, new_state = self._replay(slot, plan.shape, state)
                region.copy_(out)
                self.states[face.track_id] = new_state.clone()  # the graph's buffer is overwritten next replay
            return download(frame, self.stream)  # on the stream that did the blend: ordered after it

    def _colour_weight(self, track_id: int, t_s: float, settings: BlendConfig) -> float:
        """How far the smoothed target statistics move towards this frame's (1: all the way)."""
        previous = self.track_times.get(track_id)
        self.track_times[track_id] = t_s
        if settings.colour != "smoothed" or previous is None:
            return 1.0
        return smoothing_weight(t_s - previous, settings.colour_smoothing_s)

    def _run(self, shape: RegionShape, slot: _Slot, state: torch.Tensor | None) -> tuple[np.ndarray, torch.Tensor]:
        if not self.cuda:  # host and device are one memory: run on the host buffers directly
            out, new_state = blend_region(slot.host_region, slot.host_crop, slot.host_mask, slot.params_in_use, new_colour_state(self.device) if state is None else state, shape)
            return out.numpy(), new_state
        with GPU_GATE.shared(), torch.cuda.stream(self.stream):
            slot.region.copy_(slot.host_region, non_blocking=True)
            slot.crop.copy_(slot.host_crop, non_blocking=True)
            if shape.generator_mask:
                slot.generator_mask.copy_(slot.host_mask, non_blocking=True)
            out, new_state = self._replay(slot, shape, state)
            slot.host_out.copy_(out, non_blocking=True)
            kept_state = new_state.clone()  # the graph's output buffer is overwritten by the next replay
        assert self.stream is not None  # a CUDA blender always has its stream
        self.stream.synchronize()
        return slot.host_out.numpy(), kept_state

    def _replay(self, slot: _Slot, shape: RegionShape, state: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """The slot's graph (or ``blend_region`` on its buffers) after its params and colour state
        are in place; region, crop and mask must be in the slot already. On the current stream."""
        slot.params.copy_(slot.params_in_use, non_blocking=True)
        if self.cuda:  # that buffer may be rewritten once this copy is done (not the whole blend)
            slot.released[slot.turn] = torch.cuda.current_stream(self.device).record_event()
        if state is None:
            slot.state.zero_()
        else:
            slot.state.copy_(state)
        if slot.graph is not None:
            slot.graph.replay()
            out, new_state = slot.out_region, slot.out_state
        else:
            out, new_state = blend_region(slot.region, slot.crop, slot.generator_mask, slot.params, slot.state, shape, self._ready_core(shape))
        assert out is not None and new_state is not None
        return out, new_state

    def _capture(self, shape: RegionShape, slot: _Slot) -> None:
        """Capture ``blend_region`` for this shape on the capture stream; on failure, slots run
        eagerly from now on (one log line)."""
        if self.graphs_failed:
            return
        assert self.capture_stream is not None
        # live (a setting changed mid-run): never compile here, seconds would freeze the video;
        # a crop-space shape not fused yet is captured with the eager maths (~0.35 ms slower)
        core = self._ready_core(shape) if self.live else self._compile_core(shape)
        try:
            with torch.cuda.stream(self.capture_stream):
                for _ in range(2):  # warm-up outside the graph: kernels chosen, device constants made
                    blend_region(slot.region, slot.crop, slot.generator_mask, slot.params, slot.state, shape, core)
            self.capture_stream.synchronize()
            graph = torch.cuda.CUDAGraph()
            # thread-local: other threads' calls that only query CUDA (event waits) stay allowed
            with torch.cuda.graph(graph, pool=self._pool, stream=self.capture_stream, capture_error_mode="thread_local"):
                slot.out_region, slot.out_state = blend_region(slot.region, slot.crop, slot.generator_mask, slot.params, slot.state, shape, core)
            slot.graph = graph
        except Exception as exc:  # noqa: BLE001 - an optimisation: never worth a broken frame
            log.warning("blend: CUDA graph capture failed (%s: %s); blending op by op", type(exc).__name__, exc)
            self.graphs_failed = True

    def _ready_core(self, shape: RegionShape) -> CropCore | None:
        """The fused crop-space maths if already compiled."""
        key = crop_space(shape)
        return fused_crop_core(key) if key in self._fused_ready else None

    def _compile_core(self, shape: RegionShape) -> CropCore | None:
        """Compile the fused maths (once per crop-space shape, when its first slot is built at
        set-up); None if fusing is off or compiling fails. Tests check the fused pixels against
        the eager ones."""
        key = crop_space(shape)
        if not self.fuse or key in self._fused_ready:
            return self._ready_core(shape)
        try:
            with torch.cuda.stream(self.capture_stream):
                core = compile_crop_core(key, self.device)
        except Exception as exc:  # noqa: BLE001 - an optimisation: the eager maths still work
            log.warning("blend: fusing the mask and colour maths failed (%s: %s); not fused", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
            self.fuse = False
            return None
        self._fused_ready.add(key)
        return core

    def _slot(self, shape: RegionShape) -> _Slot:
        """The slot of ``shape``, built now if it is new."""
        slot = self.slots.get(shape)
        if slot is not None:
            self.slots.move_to_end(shape)
            return slot
        if self.live:
            self.shapes_built_live += 1
            log.info("blend: a %d×%d px face region was not built ahead: building it now (one slow frame)", shape.width, shape.height)
        return self._build(shape)

    def _build(self, shape: RegionShape) -> _Slot:
        """Buffers (pinned on the host) and, on CUDA, the captured graph of one region shape."""
        s, h, w = shape.crop_size, shape.height, shape.width

        def host(size: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
            tensor = torch.zeros(size, dtype=dtype)
            return tensor.pin_memory() if self.cuda else tensor

        def device(size: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
            return torch.zeros(size, dtype=dtype, device=self.device)

        # CUDA: the buffers too are made inside the gate and on the blend's stream, never beside the
        # generator's warm-up or another thread's frame work
        with GPU_GATE.exclusive() if self.cuda else nullcontext(), torch.cuda.stream(self.stream) if self.stream is not None else nullcontext():
            slot = _Slot(
                region=device((h, w, 3), torch.uint8), crop=device((s, s, 3), torch.uint8), generator_mask=device((s, s), torch.float32),
                params=device((params_size(shape.points),), torch.float32), state=new_colour_state(self.device),
                host_region=host((h, w, 3), torch.uint8), host_crop=host((s, s, 3), torch.uint8), host_mask=host((s, s), torch.float32),
                host_params=[host((params_size(shape.points),), torch.float32) for _ in range(PARAM_BUFFERS)], host_out=host((h, w, 3), torch.uint8),
            )
            if self.stream is not None:
                self.stream.synchronize()  # the zeroed buffers exist before the capture stream reads them
                self._capture(shape, slot)
        if len(self.slots) >= MAX_GRAPHS:
            self.slots.popitem(last=False)
        self.slots[shape] = slot
        return slot

