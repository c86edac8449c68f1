"""GPU concurrency in one place: the gate between capture and replay (``gate``), frames kept on
the device (``frames``), CUDA-graph replay (``graphs``) and the constants a graph may read
(``constants``). The engine (``pipeline/``) and the generator runtime (``inference/``) never import
this package at module level."""
