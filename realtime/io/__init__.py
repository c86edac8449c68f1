"""Media I/O: sources (cameras, files, URLs, the demo clip) and sinks (files, streams, virtual camera)."""
