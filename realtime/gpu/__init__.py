"""GPU concurrency in one place: the gate between capture and replay (``gate``), frames kept on
the device (``frames``) and CUDA-graph replay (``graphs``). The engine (``pipeline/``) and the
generator runtime (``inference/``) never import this package at module level."""
