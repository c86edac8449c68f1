"""Average the weights of one run's generator chunks (``realtime.train.average``: a coarse weight EMA).
    python3 bench/average_generators.py OUT.safetensors A.safetensors B.safetensors ... [--weight-storage int8]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from realtime.errors import ModelError  # noqa: E402
from realtime.train.average import average_generators  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("generators", type=Path, nargs="+")
    parser.add_argument("--weight-storage", choices=("float", "int8"), default="int8")
    args = parser.parse_args()
    try:
        count = average_generators(args.out, args.generators, args.weight_storage)
    except ModelError as error:
        sys.exit(str(error))
    print(f"wrote {args.out}: the mean of {count} generators")


if __name__ == "__main__":
    main()
