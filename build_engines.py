#!/usr/bin/env python3
"""Build FP16 generator engines into engines/ (same as `realtime build-engines`).

    python3 build_engines.py --checkpoint models/aei_net.safetensors --batch 1 2 4
"""

from realtime.inference.build import main

if __name__ == "__main__":
    raise SystemExit(main())
