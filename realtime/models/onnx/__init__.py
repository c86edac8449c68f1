"""Our own ONNX → torch converter (``graph``: read, fold, run; ``ops``: one torch function per ONNX
op), so a user's ONNX model runs through every backend a torch module has."""
