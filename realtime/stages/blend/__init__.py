"""The blend: generated crops back into the frame over each face's box, and the face-safety policy
over the faces that got none.

``stage`` (BlendStage: reads the record, picks the path, applies the policy; its settings come
live from ``realtime.live``), ``cpu`` (OpenCV) and ``gpu`` (torch, one CUDA graph per face shape):
two blenders of one shape, ``composite(frame, faces, t_s, settings)`` and ``forget(live_ids)``;
``region`` (one face's fixed-shape blend as a pure function of packed parameters), ``plan``
(where each face goes this frame, and those parameters), ``kernels`` (the region's fused kernels
saved by build-engines), ``guard`` (the face-safety decisions).
"""

from realtime.stages.blend.stage import BlendStage, resolve_blend_device

__all__ = ["BlendStage", "resolve_blend_device"]
