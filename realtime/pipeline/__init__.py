"""Threads, queues and wiring: the engine that moves ``FrameBundle`` records between stages."""
