"""realtime: a real-time face-swap pipeline for a live webcam."""

__version__ = "0.1.0"
