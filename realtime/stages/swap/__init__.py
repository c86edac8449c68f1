"""The swap: every face of a frame through the generator, in one batch.

``stage`` (SwapStage, and the generators prepared at start), ``batching`` (which faces, which batch
sizes), ``faces`` (the --source face and faces chosen live, embedded once), ``steady`` (a still
face's crop averaged with its previous one). What an operator changes while frames flow (who wears
what, the generator, --steady) comes from ``realtime.live``, read once per frame.


Reads ``frame`` and ``faces`` (their ``crop_from_frame``). Writes on each face with ``alpha > 0``
its ``swapped`` (``bundle.Swapped``: the crop_size² RGB crop and, for generators that make one, its
mask). When the frame is on the GPU (``device_frame``) and the generator runs there, the crops are
cut from that copy and the results stay on the GPU (``swapped.on_device``): nothing crosses the bus
and nothing waits for the GPU here. The pixels go in and out of the generator by
``inference.spec.to_generator``/``from_generator``.
AEI-Net needs the source identity: an embedding computed once, at setup, from ``--source`` with
the identity encoder. Batches are padded to a power of two so a few static shapes (built once,
replayed as CUDA graphs or engines) serve up to ``--max-faces``; at most that many faces reach
the generator (``choose_faces``: established, then larger), and any count is split over the built
sizes (``split_batches``), so more tracks than batches is never an error.
"""

from realtime.stages.swap.batching import batch_bucket, choose_faces, others_of, split_batches
from realtime.stages.swap.stage import SwapStage

__all__ = ["SwapStage", "batch_bucket", "choose_faces", "others_of", "split_batches"]
