"""BlendStage: generated crops back into the frame, over each face's box only.

Reads ``frame`` (or ``device_frame``, its GPU copy, when the swap stage left the crops on the
GPU: then only the finished frame is downloaded, see ``gpu/frames.py``) and, per face,
``swapped`` (its crop and mask, on the host or left on the GPU), ``landmarks``,
``crop_from_frame``/``frame_from_crop``, ``alpha`` and ``track_id``. Writes ``frame`` in place,
only inside each face's box: the capture stage decodes a fresh array for every frame and no
earlier stage keeps it, so copying 6 MB per frame at 1080p would buy nothing.

The mask is built in crop space from the smoothed landmarks (so it is as steady as the track):
the feathered face-mesh oval, with optional holes for the original mouth and eyes, times the
generator's own mask when it has one, times the track's fade and the opacity. Colour is matched
in LAB inside the mask, per frame or with statistics smoothed per track so it does not pump.
Settings come from the run's ``LiveSettings`` (``realtime.live``), read once per frame, so they
can change live; so does the operator's choice (the privacy switch, who wears nothing), which
overrides the face-safety policy.

Every face it composites is marked ``blended``. The faces it did not (new, lost, over the limit,
or all of them when the swap or this blend failed) get the face-safety policy (``guard.py``):
held, blurred or pixelated on the host frame, after the GPU's download when the frame was there.
A blend that raises still covers the frame's faces before the error is counted.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from realtime.bundle import Face, FrameBundle, Swapped
from realtime.config import BlendConfig
from realtime.live import LiveSettings, SwapChoice
from realtime.options import live_fields
from realtime.pipeline.stage import Stage
from realtime.stages.blend.cpu import CpuBlender
from realtime.stages.blend.guard import Cover, FaceGuard
from realtime.vision.cover import cover_face, cover_frame, covered_box

if TYPE_CHECKING:
    from realtime.stages.blend.gpu import GpuBlender

log = logging.getLogger("realtime")


def _mark_blended(faces: list[Face]) -> None:
    for face in faces:
        face.blended = True


def resolve_blend_device(choice: str) -> str:
    if choice == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


class BlendStage(Stage):
    name = "blend"
    reads = (
        "frame", "device_frame", "media_time_s", "failed_stages", "faces", "tentative_faces", "faces.swapped", "faces.landmarks",
        "faces.crop_from_frame", "faces.frame_from_crop", "faces.alpha", "faces.track_id", "faces.box", "faces.state",
        "faces.other", "blind",
    )
    # on the GPU path ``frame`` is replaced by the composite's host copy, which ``frame_ready`` guards
    writes = ("frame", "frame_ready", "faces.blended")

    def __init__(
        self, settings: LiveSettings | None = None, *, device: str = "cpu", crop_size: int = 256,
        frame_size: tuple[int, int] | None = None, engines_dir: str | None = None,
        face_safety: str = "reveal", hold_s: float = 1.0, others: str = "cover", generator_mask: bool = False,
    ) -> None:
        self.settings = settings or LiveSettings()  # shared with the swap stage: the operator's choice is the same one
        self.device = device
        self.crop_size = crop_size
        self.frame_size = frame_size  # (width, height): lets the GPU blender build its shapes ahead
        self.engines_dir = engines_dir  # where build-engines saved the fused kernels ('auto' fusing)
        self.generator_mask = generator_mask  # faces come with a mask (--occluder, --parser): the shapes built ahead take it
        self.fused_kernels: str | None = None  # how fusing started: the saved file, or why not
        self.cpu = CpuBlender()
        self.guard = FaceGuard(face_safety, hold_s, others)
        self.cover_failures = 0
        self._gpu: GpuBlender | None = None

    def setup(self) -> None:
        if self.device != "cpu":
            from realtime.stages.blend.gpu import GpuBlender

            settings = self.settings.blend
            self._gpu = GpuBlender(self.device, fuse=self._fuse(settings.blend_compile))
            self._gpu.warm_up(self.crop_size, settings)
            if self.frame_size is not None and self.device == "cuda":
                self._gpu.prebuild(self.crop_size, settings, *self.frame_size, generator_mask=self.generator_mask)
            self._gpu.live = True

    def _fuse(self, mode: str) -> bool:
        """Whether to fuse the crop-space maths (``BlendConfig.blend_compile``); loads the saved kernels."""
        if mode == "off" or self.device != "cuda":
            return False
        from realtime.inference.engine_dir import resolve_engines_dir
        from realtime.stages.blend.kernels import load_blend_cache

        saved = load_blend_cache(resolve_engines_dir(self.engines_dir), self.crop_size) if self.engines_dir else None
        self.fused_kernels = saved or ("compiled at start (none saved: realtime build-engines --kinds compiled)" if mode == "on" else None)
        return saved is not None or mode == "on"

    def teardown(self) -> None:
        if self._gpu is not None:
            self._gpu.close()

    def process(self, bundle: FrameBundle) -> FrameBundle:
        now = self.settings.now()  # once per frame: a change lands on the next frame, whole
        if "track" not in bundle.failed_stages:
            live = {f.track_id for f in bundle.faces}
            self.cpu.forget(live)
            self.guard.forget(live)
            if self._gpu is not None:
                self._gpu.forget(live)
        try:
            self._blend(bundle, now.blend)
        finally:  # also when the blend raised: the faces it did not finish are covered first
            self._protect(bundle, now.blend, now.choice)
        return bundle

    def _blend(self, bundle: FrameBundle, settings: BlendConfig) -> None:
        faces = [f for f in bundle.faces if f.swapped is not None and f.alpha > 0]
        if not faces:
            return
        if self._gpu is not None and bundle.device_frame is not None and all(f.swapped is not None and f.swapped.on_device for f in faces):
            bundle.frame, bundle.frame_ready = self._gpu.composite_device(bundle.device_frame, faces, bundle.media_time_s, settings)
            _mark_blended(faces)
            return
        for face in faces:  # crops left on the GPU by the swap stage, for a host-frame blend
            face.swapped = face.swapped.host() if face.swapped is not None else None
        if self._gpu is not None:
            bundle.frame = self._gpu.composite(bundle.frame, faces, bundle.media_time_s, settings)
            _mark_blended(faces)
            return
        bundle.frame = self.cpu.composite(bundle.frame, faces, bundle.media_time_s, settings)

    def _protect(self, bundle: FrameBundle, settings: BlendConfig, choice: SwapChoice) -> None:
        """The face-safety policy over every face this frame did not get a swap on, as the
        operator's ``choice`` overrides it."""
        covers = self.guard.plan(bundle)
        whole = self.guard.frame_cover(bundle)
        self.guard.remember(bundle)
        if choice.mode == "original":
            covers, whole = [], None  # the operator chose to show faces as they are
        elif choice.mode == "blur":
            covers = [Cover(face, "blur") for face in [*bundle.faces, *bundle.tentative_faces]]
            whole = "blur" if bundle.blind else None
        elif choice.per_track:
            covers = [c for c in covers if not choice.wears_nothing(c.face.track_id)]
        if not covers and whole is None:
            return
        if bundle.frame_ready is not None:  # the GPU's composite is still on its way to the host
            bundle.wait_for_frame()
            bundle.frame_ready = None
        if whole is not None:  # where the new shot's faces are is not known yet: nothing of it shows
            cover_frame(bundle.frame, whole)
            self.guard.frames_covered_whole += 1
        for cover in covers:
            try:
                self._draw(bundle, cover, settings)
            except Exception:  # noqa: BLE001 - a cover that cannot be drawn is drawn flat
                self.cover_failures += 1
                x0, y0, x1, y1 = covered_box(cover.face.box, bundle.width, bundle.height)
                bundle.frame[y0:y1, x0:x1] = 128
        self.guard.count(covers)

    def _draw(self, bundle: FrameBundle, cover: Cover, settings: BlendConfig) -> None:
        if cover.action != "hold" or cover.held is None:
            cover_face(bundle.frame, cover.face.box, "pixelate" if cover.action == "pixelate" else "blur")
            return
        held = Swapped(cover.held.crop, cover.held.mask).host()  # a swap may have been left on the GPU
        # no detail restore: the texture under a held face is the real face's (or, once it moved, none of it)
        self.cpu.paste(bundle.frame, cover.face, held.crop, held.mask, bundle.media_time_s, settings, opacity=settings.opacity)

    def describe(self) -> dict[str, object]:
        settings = self.settings.blend
        info: dict[str, object] = {"device": self.device, **{k: getattr(settings, k) for k in live_fields(BlendConfig)}}
        info["face_safety"] = self.guard.policy
        info["faces_covered"] = dict(self.guard.covered)
        info["others"] = self.guard.others
        info["others_covered"] = self.guard.others_covered
        info["others_revealed"] = self.guard.others_revealed
        info["frames_covered_whole"] = self.guard.frames_covered_whole
        info["cover_failures"] = self.cover_failures
        if self._gpu is not None:
            info["shapes_built_live"] = self._gpu.shapes_built_live  # face sizes not built ahead: one slow frame each
            info["fused"] = self._gpu.fuse
            info["fused_kernels"] = self.fused_kernels
        return info
