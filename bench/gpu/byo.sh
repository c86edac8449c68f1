#!/usr/bin/env bash
# Users' ONNX swappers on a GPU machine: full-size random-weight stand-ins (the inswapper_128
# architecture, 138 M parameters; the same architecture at 256 px and half width for a
# hyperswap-sized model), made here from the published architecture (nothing third-party).
#   bench/gpu/byo.sh OUTDIR CLIP            STAGES="parity generator pipeline boost hyper" (default: all)
# Everything is logged to OUTDIR/log.txt; reports are packed into OUTDIR/results.tgz after each step.
set -uo pipefail
source bench/gpu/lib.sh
out=${1:?usage: bench/gpu/byo.sh OUTDIR CLIP}
clip=${2:?usage: bench/gpu/byo.sh OUTDIR CLIP}
stages=${STAGES:-parity generator pipeline boost hyper}
start_log "$out"
limit=${RUN_TIMEOUT:-240}
work=${WORK:-$(mktemp -d)}
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name --format=csv,noheader) work=$work stages: $stages"
pack() { pack_dir "$work" "$out/results.tgz" --exclude engines --exclude '*.mp4' --exclude '*.onnx'; }
if [[ ! -f $work/inswapper.onnx ]]; then
  $py -c "
from pathlib import Path
from realtime.testing_onnx import make_inswapper_standin, make_arcface_standin
w = Path('$work')
make_inswapper_standin(w / 'inswapper.onnx', base=128, blocks=6)
make_inswapper_standin(w / 'hyper256.onnx', base=64, blocks=6, size=256, emap=False)
make_arcface_standin(w / 'arcface.onnx', width=32)
print('stand-ins written')"
  ls -la "$work"/*.onnx
  clip_one "$clip" "$work/one.mp4"
  clip_four "$clip" "$work/four.mp4"
fi
swap=(--generator "$work/inswapper.onnx" --identity-encoder "$work/arcface.onnx" --source demo --engines-dir "$work/engines" --detect-mode async --quiet)
run() { name=$1; shift; echo "-- $name $(date -u +%T)"; timed "$limit" $py -X faulthandler -m realtime bench "$@" --json "$work/$name.json" || echo "FAILED: $name"; pack; }
if [[ $stages == *parity* ]]; then
  echo "-- parity $(date -u +%T)"
  $py bench/byo_parity.py "$work/inswapper.onnx" --json "$work/parity-inswapper.json" || echo "FAILED: parity inswapper"
  $py bench/byo_parity.py "$work/hyper256.onnx" --generator-profile hyperswap_256 --json "$work/parity-hyper256.json" || echo "FAILED: parity hyper256"
  pack
fi
if [[ $stages == *generator* ]]; then
  echo "-- build-engines $(date -u +%T)"
  $py -m realtime build-engines --generator "$work/inswapper.onnx" --batch 1 2 4 --kinds compiled --engines-dir "$work/engines" | grep -E "^\[|in [0-9]+ s|failed|built" || echo "FAILED: build-engines"
  echo "-- bench generator $(date -u +%T)"
  $py -m realtime bench generator --generator "$work/inswapper.onnx" --engines-dir "$work/engines" --backends compiled eager-cuda eager-cuda-fp32 --batches 1 2 4 --json "$work/generator-inswapper.json" || echo "FAILED: generator inswapper"
  $py -m realtime bench generator --generator "$work/hyper256.onnx" --generator-profile hyperswap_256 --engines-dir "$work/engines" --backends eager-cuda eager-cuda-fp32 --batches 1 4 --json "$work/generator-hyper256.json" || echo "FAILED: generator hyper256"
  pack
fi
if [[ $stages == *pipeline* ]]; then
  run byo-one-unpaced --input "$work/one.mp4" --frames 1500 "${swap[@]}"
  run byo-one-paced60 --input "$work/one.mp4" --frames 1800 --pace native "${swap[@]}"
  run byo-four-unpaced --input "$work/four.mp4" --frames 600 --max-faces 4 "${swap[@]}"
fi
if [[ $stages == *boost* ]]; then
  $py -m realtime build-engines --generator "$work/inswapper.onnx" --pixel-boost 2 --batch 1 --kinds compiled --engines-dir "$work/engines" | grep -E "in [0-9]+ s|failed|built" || echo "FAILED: build-engines boost"
  run byo-boost2-one-unpaced --input "$work/one.mp4" --frames 900 --pixel-boost 2 "${swap[@]}"
  run byo-boost2-one-paced60 --input "$work/one.mp4" --frames 900 --pace native --pixel-boost 2 "${swap[@]}"
fi
if [[ $stages == *hyper* ]]; then  # the 256-px stand-in (hyperswap-sized): compiled, then the pipeline
  hyper=(--generator "$work/hyper256.onnx" --generator-profile hyperswap_256 --identity-encoder "$work/arcface.onnx" --source demo --engines-dir "$work/engines" --detect-mode async --quiet)
  $py -m realtime build-engines --generator "$work/hyper256.onnx" --generator-profile hyperswap_256 --batch 1 2 4 --kinds compiled --engines-dir "$work/engines" | grep -E "in [0-9]+ s|failed|built" || echo "FAILED: build-engines hyper"
  $py -m realtime bench generator --generator "$work/hyper256.onnx" --generator-profile hyperswap_256 --engines-dir "$work/engines" --backends compiled --batches 1 2 4 --json "$work/generator-hyper256-compiled.json" || echo "FAILED: generator hyper256 compiled"
  run hyper-one-unpaced --input "$work/one.mp4" --frames 1200 "${hyper[@]}"
  run hyper-one-paced60 --input "$work/one.mp4" --frames 1200 --pace native "${hyper[@]}"
  run hyper-four-unpaced --input "$work/four.mp4" --frames 600 --max-faces 4 "${hyper[@]}"
fi
pack
echo "== done $(date -u +%T)"
