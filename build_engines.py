#!/usr/bin/env python3
"""Build FP16 generator engines (same as `realtime build-engines`), by default into the user's
cache (~/.cache/realtime/engines), where `realtime run` looks for them.

    python3 build_engines.py --checkpoint models/aei_net.safetensors --batch 1 2 4
    python3 build_engines.py --checkpoint ... --engines-dir engines   # here instead (git-ignored);
                                                                      # then run with --engines-dir engines
"""

import sys

from realtime.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["build-engines", *sys.argv[1:]]))
