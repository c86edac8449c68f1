#!/usr/bin/env bash
# Every GPU-machine measurement in one command; reports go to the folder named first.
#   bench/gpu/all.sh OUTDIR [CLIP]
# CLIP (optional) is fitted into 1920x1080, retimed to 60 fps and looped to 20 s for the capture
# and face-stage benchmarks. On the lent GPU machine:
#   source .devkit/enter.sh; bench/gpu/all.sh "$OUT" .devdata/clip.mp4
# Everything also lands in OUTDIR/results.tgz (the device tool returns at most 8 files).
set -euo pipefail
source bench/gpu/lib.sh
out=${1:?usage: bench/gpu/all.sh OUTDIR [CLIP]}
clip=${2:-}
mkdir -p "$out"
work=$(mktemp -d)
echo "== $(date -u +%FT%TZ) on $(hostname): $(nproc) CPUs"; nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
$py -m realtime doctor | tee "$work/doctor.txt" || true
echo "== GPU tests"
$py -m pytest -q -m gpu tests -p no:cacheprovider 2>&1 | tail -3 | tee "$work/gpu-tests.txt" || true
echo "== engine"
$py -m realtime bench engine --frames 3000 --json "$work/engine.json" | tee "$work/engine.txt"
if [[ -n $clip ]]; then
  clip_one "$clip" "$work/clip1080p60.mp4"
  c="$work/clip1080p60.mp4"
  echo "== capture and face stages, 1080p60, unpaced (throughput)"
  for mode in off sync async; do
    if [[ $mode == off ]]; then opts=(--no-faces); else opts=(--detect-mode "$mode"); fi
    echo "-- faces: $mode"
    $py -m realtime bench --input "$c" --frames 900 "${opts[@]}" --json "$work/unpaced-$mode.json" --quiet
  done
  echo "-- faces: sync, landmarker every 2nd frame"
  $py -m realtime bench --input "$c" --frames 900 --detect-mode sync --detect-every 2 --json "$work/unpaced-sync-every2.json" --quiet
  echo "== paced at 60 fps like a camera (latency)"
  for mode in off sync async; do
    if [[ $mode == off ]]; then opts=(--no-faces); else opts=(--detect-mode "$mode"); fi
    echo "-- faces: $mode"
    $py -m realtime bench --input "$c" --frames 600 --pace native "${opts[@]}" --json "$work/paced-$mode.json" --quiet
  done
fi
pack_dir "$work" "$out/results.tgz"
cp "$work"/*.txt "$out"/ 2>/dev/null || true
