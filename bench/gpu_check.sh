#!/usr/bin/env bash
# The first call of a GPU session: does the GPU path run clean at all? The GPU-marked tests, then a
# short pipeline run unpaced and paced (the issue's 256-px AEI-Net, random weights, warm engines).
#   bench/gpu_check.sh OUTDIR CLIP        (about 5 minutes on the H100; then bench/gpu_pipeline.sh)
# Everything goes to OUTDIR/log.txt as it happens; a run that hangs is stopped after RUN_TIMEOUT
# seconds (default 120) and faulthandler prints every thread's stack into the log.
set -uo pipefail
out=${1:?usage: bench/gpu_check.sh OUTDIR CLIP}
clip=${2:?usage: bench/gpu_check.sh OUTDIR CLIP}
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1
py=${PYTHON:-python3}
limit=${RUN_TIMEOUT:-120}
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name --format=csv,noheader)"
timeout -s ABRT 300 $py -X faulthandler -m pytest -m gpu -q -p no:logging --tb=short tests | tail -30
work=$(mktemp -d)
$py bench/random_aei.py "$work"
$py bench/make_clip.py "$clip" "$work/one.mp4" --size 1920x1080 --fps 60 --seconds 10 | tail -1
$py -m realtime build-engines --checkpoint "$work/aei.safetensors" --batch 1 --kinds compiled --engines-dir "$work/engines" | grep -E "in [0-9]+ s|failed"
swap=(--generator "$work/aei.safetensors" --identity-encoder "$work/id.safetensors" --source "$work/source.png" --engines-dir "$work/engines" --detect-mode async)
for run in "unpaced --frames 2400" "paced60 --frames 1200 --pace native"; do
  read -r name args <<< "$run"
  echo "-- $name $(date -u +%T)"
  # shellcheck disable=SC2086  # $args is a list of flags
  timeout -s ABRT -k 15 "$limit" $py -X faulthandler -m realtime bench --input "$work/one.mp4" --loop $args "${swap[@]}" --quiet --json "$out/$name.json" || echo "FAILED: $name"
done
