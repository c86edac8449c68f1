"""Pure functions on arrays: landmark indices, alignment, smoothing, tracking, metrics."""
