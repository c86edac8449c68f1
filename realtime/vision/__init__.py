"""Pure functions on arrays: landmark indices, alignment, masks, colour matching, paste-back,
smoothing (``kalman``), scene cuts, cover, metrics. A torch twin sits beside its NumPy/OpenCV
original and takes its rules from it: ``align_torch``, ``masks_torch``, ``colour_torch``,
``composite_torch``."""
