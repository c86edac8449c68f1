"""The swap stage: every face of a frame through the active generator, in one batch (see the
package's docstring for what it reads and writes)."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch

from realtime.bundle import Face, FrameBundle, HostSwapped, Swapped
from realtime.config import DetectConfig, SwapConfig, TrackConfig
from realtime.errors import ConfigError, ModelError
from realtime.generators import GeneratorRequest, load_spec
from realtime.gpu.frames import same_device
from realtime.gpu.gate import GPU_GATE, register_stream
from realtime.inference.engine_dir import resolve_engines_dir
from realtime.inference.select import PrecisionReference, select_runner
from realtime.inference.spec import GeneratorSpec, Runner, from_generator, to_generator
from realtime.live import LiveSettings, SwapChoice, preview_copy
from realtime.photo import find_one_face
from realtime.pipeline.stage import Stage
from realtime.stages.swap.batching import batch_bucket, choose_faces, others_of, split_batches
from realtime.stages.swap.faces import SourceFaces
from realtime.stages.swap.steady import SteadyCrops
from realtime.vision.align import apply_affine, warp_crop
from realtime.vision.align_torch import warp_crop_torch

if TYPE_CHECKING:
    from realtime.byo.masks.masker import FaceMasker
    from realtime.gpu.frames import DeviceFrames

log = logging.getLogger("realtime")


MAX_IDENTITY_BATCHES = 64  # per choice: batch sizes × sets of tracks seen together


@dataclass
class LoadedGenerator:
    """A generator prepared at start: switching to it between frames costs nothing."""

    name: str
    spec: GeneratorSpec
    runners: dict[int, Runner]
    identity: torch.Tensor | None
    skipped: list[tuple[str, str]]


class SwapStage(Stage):
    name = "swap"
    reads = ("frame", "device_frame", "faces", "tentative_faces", "faces.crop_from_frame", "faces.alpha", "faces.state", "faces.confirmed_for_s", "faces.box")
    writes = ("faces.swapped", "faces.other", "swap_version", "input_preview")

    def __init__(
        self, config: SwapConfig, track: TrackConfig, detect: DetectConfig, *, frames: DeviceFrames | None = None,
        settings: LiveSettings | None = None, others: str = "cover",
    ) -> None:
        if not config.generator:
            raise ConfigError("the swap stage needs --generator", "pass a generator checkpoint")
        self.config = config
        self.track = track
        self.detect = detect
        self.spec: GeneratorSpec | None = None
        self.identity: torch.Tensor | None = None
        self.settings = settings or LiveSettings(swap=config)  # who wears what, --steady: shared with the blend and the panel
        self.sources = SourceFaces(config, detect)  # the --source face and faces chosen live, embedded
        self.loaded: list[LoadedGenerator] = []  # --generator, then each --also-generator
        self.active = 0
        self._identity_batches: dict[tuple[int, int, int, tuple[int, ...]], torch.Tensor] = {}  # (choice, generator, batch, tracks) → identities
        self.runners: dict[int, Runner] = {}
        self.skipped: list[tuple[str, str]] = []
        self.faces_swapped = 0
        self.frames = frames
        self.faces_on_device = 0
        self.faces_left_out = 0  # over --max-faces: left to the face-safety policy
        self.others = others  # faces past --max-faces: 'swap' serves them too, else they are marked 'other'
        self._identity_on_device: dict[int, torch.Tensor] = {}  # per batch size, on the runner's device
        self.steady = SteadyCrops(config.steady)
        # CUDA: the generator's own stream, made at set-up. Not the legacy default stream, which
        # every thread without a stream of its own shares: the swap's work and its allocations stay
        # apart from anything else (sharing it, the pipeline's threads could wait on each other's work).
        self.stream: torch.cuda.Stream | None = None
        self.masker: FaceMasker | None = None  # --occluder / --parser: made at set-up, on the generator's device

    def setup(self) -> None:
        if self.config.occluder or self.config.parser:
            from realtime.byo.masks.masker import load_masker

            self.masker = load_masker(self.config)  # before the generators: their warm-up runs it too
        for path in (self.config.generator, *self.config.also_generator):
            self.loaded.append(self._load(GeneratorRequest.from_swap(self.config, path)))
        self._activate(0)

    def _activate(self, index: int) -> None:
        """Make generator ``index`` the one frames go through (on the swap thread, between frames)."""
        chosen = self.loaded[index]
        self.spec, self.runners, self.identity, self.skipped = chosen.spec, chosen.runners, chosen.identity, chosen.skipped
        self.active = index
        self._identity_on_device = {}
        self._identity_batches = {}
        self.steady.reset()

    def _load(self, request: GeneratorRequest) -> LoadedGenerator:
        """One generator ready to swap: its runners built, warmed up, and its --source identity."""
        spec = load_spec(request)
        if self.loaded and (spec.crop_size, spec.template) != (self.loaded[0].spec.crop_size, self.loaded[0].spec.template):
            first = self.loaded[0].spec
            raise ConfigError(f"{request.path.name} works on {spec.crop_size} px '{spec.template}' crops, {first.architecture} on {first.crop_size} px '{first.template}'", "switch live only between generators of one crop size and template")
        if spec.crop_size != self.track.crop_px:
            raise ConfigError(f"the generator works on {spec.crop_size} px crops but --crop-size is {self.track.crop_px}", f"run with --crop-size {spec.crop_size}")
        if spec.template != self.track.template_name:  # a deliberate choice is allowed, never a silent one
            log.warning("swap: the generator was made for '%s' crops; --template %s frames faces differently", spec.template, self.track.template_name)
        source_crop = None
        self.identity = None
        if spec.id_dim is not None:
            self.identity, source_crop = self._source_identity(spec)
        elif spec.takes_landmarks:
            source_crop = self._wear_photo(spec)
        # reduced precision exists only on the GPU: on a CPU every backend runs FP32
        reference = self._precision_reference(spec, source_crop) if spec.precision_checked and torch.cuda.is_available() else None
        buckets = sorted({batch_bucket(n) for n in range(1, self.detect.max_faces + 1)})
        engines_dir = resolve_engines_dir(self.config.engines_dir)
        self.runners = {}
        for batch in buckets:
            selection = select_runner(spec, batch, engines_dir, self.config.backends, reference=reference)
            self.runners[batch] = selection.runner
            self.skipped = selection.skipped
        self.spec = spec
        self._identity_on_device = {}
        device = self.runners[buckets[0]].device
        if self.masker is not None:
            self.masker.to(device)
        if device.type == "cuda" and self.stream is None:
            self.stream = torch.cuda.Stream(device)
            register_stream("swap", self.stream)
        if self.frames is not None and not same_device(device, self.frames.device):
            self.frames.disable(f"the generator runs on {device}, not {self.frames.device}")
        # one call per batch size through the frame path before frames flow: without it the
        # first real face waits seconds here (first use of this input path); with frames on the
        # device, through that path too (its first frame otherwise costs ~0.1 s)
        with GPU_GATE.exclusive(), self._on_stream():  # compiled backends capture CUDA graphs in these first calls
            for batch in buckets:
                self._generate(np.zeros((batch, spec.crop_size, spec.crop_size, 3), np.uint8), batch)
                if self.frames is not None and self.frames.enabled:
                    self._warm_device_path(batch)
        log.info("swap: %s on %s", spec.architecture, self.runners[buckets[0]].detail)
        return LoadedGenerator(request.path.name, spec, self.runners, self.identity, self.skipped)

    def _source_identity(self, spec: GeneratorSpec) -> tuple[torch.Tensor, np.ndarray]:
        """The identity the generator takes for the --source face, and that face cropped as the
        generator crops faces (the realistic input the precision check runs on)."""
        image, landmarks, embedding = self.sources.source(spec.architecture)
        identity = SourceFaces.identity_for(embedding, spec)
        if identity.numel() != spec.id_dim:
            raise ModelError(f"the identity encoder gives {identity.numel()}-D embeddings, the generator expects {spec.id_dim}", "use the encoder the generator was trained with")
        return identity, SourceFaces.crop(image, landmarks, spec)

    def _wear_photo(self, spec: GeneratorSpec) -> np.ndarray:
        """Give a reenactment refiner the --source photo's face (its aligned crop and landmarks,
        before its runners are built: they read them from the module's buffers); returns the crop."""
        from realtime.models.reenact_refiner import ReenactSwapper

        image, landmarks = self.sources.photo(spec.architecture)
        crop, points = SourceFaces.crop_and_points(image, landmarks, spec)
        cast("ReenactSwapper", spec.module).set_source(to_generator(crop[None])[0], torch.from_numpy(points).float())
        return crop

    def _precision_reference(self, spec: GeneratorSpec, source_crop: np.ndarray | None) -> PrecisionReference:
        """A real face (the source, or the built-in portrait for models without one) and its
        identity: what FP16 output is compared with FP32 on before FP16 is used."""
        crop = source_crop if source_crop is not None else self.sources.portrait_crop(spec)
        inputs = [to_generator(crop[None])]
        if self.identity is not None:
            inputs.append(self.identity[None].float())
        return PrecisionReference(tuple(inputs))

    def embedding_of_face(self, image: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        """The encoder's embedding of the face with ``landmarks`` in ``image``: a source chosen
        while frames flow (each generator turns it into its own identity when it is worn)."""
        if self.spec is not None and self.spec.takes_landmarks:
            raise ConfigError("a reenactment refiner wears the --source photo's own pixels: choosing a face live is not supported for it yet", "restart with --source PHOTO")
        if self.spec is None or self.spec.id_dim is None or not self.config.identity_encoder:
            raise ConfigError("this generator wears one person of its own, not a chosen face", "use an identity-driven generator (AEI-Net, inswapper, ...) to change faces live")
        return self.sources.embed(image, landmarks)

    def embedding_of_image(self, image: np.ndarray, what: str) -> torch.Tensor:
        """The embedding of the largest face in a still image; SourceError when there is none."""
        return self.embedding_of_face(image, find_one_face(image, self.detect, what, Path(what)))

    def use_source_embedding(self, embedding: torch.Tensor) -> None:
        """Wear the face the identity encoder embedded as ``embedding`` (through the generator's
        identity head, for users' ONNX models)."""
        if self.spec is not None and self.spec.identity_head is not None:
            with torch.inference_mode():
                embedding = self.spec.identity_head(embedding[None].float())[0]
        self.use_identity(embedding)

    def use_identity(self, identity: torch.Tensor) -> None:
        """Wear another face from the next frame on: a unit embedding from the same encoder."""
        if self.identity is None or identity.shape != self.identity.shape:
            raise ModelError("this generator takes no identity embedding of that shape", "pass an embedding from the generator's identity encoder")
        self.identity = identity
        self._identity_on_device = {}
        self._identity_batches = {}
        self.steady.reset()

    def process(self, bundle: FrameBundle) -> FrameBundle:
        live = self.settings.now()  # once per frame: a change lands on the next frame, whole
        choice = live.choice
        bundle.swap_version = choice.version
        if choice.input_preview:  # before the blend draws over the frame (the CPU blend works in place)
            bundle.input_preview = preview_copy(bundle.frame)
        if choice.mode != "swap":
            return bundle
        if choice.generator != self.active and 0 <= choice.generator < len(self.loaded):
            self._activate(choice.generator)
        wearing = [face for face in bundle.faces if not choice.wears_nothing(face.track_id)]
        limit = max(self.detect.max_faces, len(wearing)) if self.others == "swap" else self.detect.max_faces
        faces = choose_faces(wearing, limit)
        for face in others_of(wearing, bundle.tentative_faces, faces, limit):
            face.other = True
        self.faces_left_out += sum(1 for face in wearing if face.alpha > 0 and face.state != "tentative") - len(faces)
        self.steady.strength = live.swap.steady
        self.steady.start_frame(choice.version, {face.track_id for face in faces})
        if not faces:
            return bundle
        assert self.spec is not None, "setup() loads the generator"
        start = 0
        for batch, count in split_batches(len(faces), list(self.runners)):
            self._swap_batch(bundle, faces[start : start + count], batch, choice)
            start += count
        return bundle

    def _identities(self, faces: list[Face], batch: int, choice: SwapChoice) -> torch.Tensor | None:
        """Each face's identity, padded to ``batch`` rows, on the runner's device; None when every
        face wears --source (the cached tensors serve then). Made once per choice and set of
        faces, not every frame. For a reenactment refiner: each face's landmarks in its crop,
        every frame (they move)."""
        if self.spec is not None and self.spec.takes_landmarks:
            points = [apply_affine(face.crop_from_frame, face.landmarks) for face in faces]
            points += [points[0]] * (batch - len(points))
            return torch.from_numpy(np.stack(points)).float().to(self.runners[batch].device)
        if self.identity is None or (choice.default is None and not choice.per_track):
            return None
        key = (choice.version, self.active, batch, tuple(face.track_id for face in faces))
        cached = self._identity_batches.get(key)
        if cached is None:
            if len(self._identity_batches) > MAX_IDENTITY_BATCHES or any(k[0] != choice.version for k in self._identity_batches):
                self._identity_batches.clear()  # entries of an older choice can never match again
            assert self.spec is not None
            rows = [choice.identity_for(face.track_id, None) for face in faces]
            chosen = [SourceFaces.identity_for(row, self.spec) if row is not None else self.identity for row in rows]
            chosen += [chosen[0]] * (batch - len(chosen))
            runner = self.runners[batch]
            cached = self._identity_batches[key] = torch.stack(chosen).contiguous().to(runner.device, runner.dtype)
        return cached

    def _swap_batch(self, bundle: FrameBundle, faces: list[Face], batch: int, choice: SwapChoice | None = None) -> None:
        """Up to ``batch`` faces through the generator built for ``batch``. Two heads, where the
        bytes really differ (crops cut on the host by OpenCV, or on the GPU from the frame's copy
        there), and one tail (``_store``)."""
        assert self.spec is not None
        identities = self._identities(faces, batch, choice or SwapChoice())
        size = self.spec.crop_size
        frame = bundle.device_frame
        if frame is not None and same_device(self.runners[batch].device, frame.tensor.device):
            with GPU_GATE.shared(), self._on_stream(), torch.inference_mode():
                device = self.runners[batch].device
                stream = torch.cuda.current_stream(device) if device.type == "cuda" else None
                frame.wait_on(stream)
                pixels = warp_crop_torch(frame.tensor, [face.crop_from_frame for face in faces], size, batch)
                self._store(faces, *self._generate(pixels, len(faces), identities), on_device=True)
                frame.done_on(stream)
            self.faces_on_device += len(faces)
            return
        crops = np.zeros((batch, size, size, 3), np.uint8)
        for index, face in enumerate(faces):
            crops[index] = warp_crop(bundle.frame, face.crop_from_frame, size)
        with GPU_GATE.shared(), self._on_stream():
            images, masks = self._generate(crops, len(faces), identities)
            images, masks = images.cpu(), None if masks is None else masks.cpu()
        self._store(faces, images, masks, on_device=False)

    def _store(self, faces: list[Face], images: torch.Tensor, masks: torch.Tensor | None, *, on_device: bool) -> None:
        """Each face's generated crop, steadied, as its ``swapped``: left where it was made when
        ``on_device``, else as NumPy views of the host tensors."""
        for index, face in enumerate(faces):
            crop = self.steady.smooth(face.track_id, face.landmarks, face.crop_from_frame, images[index])
            mask = None if masks is None else masks[index]
            face.swapped = Swapped(crop, mask) if on_device else HostSwapped(crop.numpy(), None if mask is None else mask.numpy())
        self.faces_swapped += len(faces)

    def _on_stream(self) -> contextlib.AbstractContextManager[object]:
        return torch.cuda.stream(self.stream) if self.stream is not None else contextlib.nullcontext()

    def _warm_device_path(self, batch: int) -> None:
        """A blank device frame cut and through the generator, as a live frame will go."""
        assert self.spec is not None
        size = self.spec.crop_size
        frame = torch.zeros((2 * size, 2 * size, 3), dtype=torch.uint8, device=self.runners[batch].device)
        with torch.inference_mode():
            self._generate(warp_crop_torch(frame, [np.array([[1.0, 0.0, -size / 2], [0.0, 1.0, -size / 2]])] * batch, size, batch), batch)

    def _device_identity(self, batch: int) -> torch.Tensor:
        """The source embedding repeated for ``batch`` faces on the generator's device, made once
        (not uploaded every frame). Contiguous: the same dense layout as the engines' example
        inputs (an expanded, stride-0 tensor once made torch.compile recompile, seconds, on the
        first frame)."""
        cached = self._identity_on_device.get(batch)
        if cached is None:
            assert self.identity is not None
            runner = self.runners[batch]
            cached = self._identity_on_device[batch] = self.identity.expand(batch, -1).contiguous().to(runner.device, runner.dtype)
        return cached

    def _generate(self, pixels: np.ndarray | torch.Tensor, count: int, identities: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Generated RGB crops (count, S, S, 3) uint8 and masks (count, S, S) in [0, 1] (or None:
        the generator makes none) for the first ``count`` of a batch padded to its bucket size,
        ``pixels`` as ``to_generator`` takes them; on the generator's device."""
        batch = len(pixels)
        with torch.inference_mode():
            inputs = [to_generator(pixels)]
            if identities is not None:
                inputs.append(identities)
            elif self.identity is not None:
                inputs.append(self._device_identity(batch))
            elif self.spec is not None and self.spec.takes_landmarks:  # warm-ups: the source's own layout
                inputs.append(cast("torch.Tensor", self.spec.module.source_points).expand(batch, -1, -1))
            outputs = self.runners[batch](*inputs)
            masks = outputs[1][:count, 0].float().clamp(0, 1) if len(outputs) > 1 else None
            if self.masker is not None:  # what is in front of the face, the regions to cover: one more factor
                made = self.masker(inputs[0][:count], outputs[0][:count]).to(outputs[0].device)
                masks = made if masks is None else masks * made
            return from_generator(outputs[0][:count]), masks

    def describe(self) -> dict[str, object]:
        runner = next(iter(self.runners.values()), None)
        return {
            "generator": self.spec.architecture if self.spec else None,
            "generators": [g.name for g in self.loaded],
            "active_generator": self.active,
            "backend": runner.describe() if runner else None,
            "batches": sorted(self.runners),
            "skipped_backends": dict(self.skipped),
            "faces_swapped": self.faces_swapped,
            "faces_swapped_on_device": self.faces_on_device,
            "faces_over_max_faces": self.faces_left_out,
            "steady": {"weight": self.steady.strength, "crops_averaged": self.steady.averaged},
            "masks": self.masker.describe() if self.masker is not None else None,
        }
