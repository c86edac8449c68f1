"""Running generators: backends (TensorRT, AOTInductor, torch.compile, eager), their selection,
the engine manifest and engine builds."""
