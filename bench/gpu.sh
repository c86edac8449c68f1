#!/usr/bin/env bash
# Every GPU-machine measurement in one command; reports go to the folder named first.
#   bench/gpu.sh OUTDIR [CLIP]
# CLIP (optional) is scaled to 1920x1080 and looped to 20 s for the capture benchmarks.
# On the lent GPU machine: source .devkit/enter.sh; bench/gpu.sh "$OUT" .devdata/clip.mp4
set -euo pipefail
out=${1:?usage: bench/gpu.sh OUTDIR [CLIP]}
clip=${2:-}
mkdir -p "$out"
py=${PYTHON:-python3}
echo "== $(date -u +%FT%TZ) on $(hostname): $(nproc) CPUs"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
$py -m realtime doctor | tee "$out/doctor.txt" || true
$py -m realtime bench engine --frames 3000 --json "$out/engine.json" | tee "$out/engine.txt"
if [[ -n $clip ]]; then
  tmp=$(mktemp -d)
  $py bench/make_clip.py "$clip" "$tmp/clip1080.mp4" --size 1920x1080 --seconds 20
  $py -m realtime bench --input "$tmp/clip1080.mp4" --frames 500 --json "$out/capture1080.json" --quiet | tee "$out/capture1080.txt"
  $py -m realtime bench --input "$tmp/clip1080.mp4" --frames 500 --pace native --json "$out/capture1080-paced.json" --quiet | tee -a "$out/capture1080.txt"
fi
