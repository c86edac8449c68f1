#!/usr/bin/env bash
# The control panel on a GPU machine, with the shipped model at 1080p: a paced 60 fps run without
# and with the panel (a client streaming the preview and the numbers), then the time from a face
# change to the first output frame wearing it. Reports go to OUTDIR (log.txt, panel-cost.json,
# panel-apply.json).
#   bench/gpu/panel.sh OUTDIR CLIP
set -uo pipefail
source bench/gpu/lib.sh
out=${1:?usage: bench/gpu/panel.sh OUTDIR CLIP}
clip=${2:?usage: bench/gpu/panel.sh OUTDIR CLIP}
start_log "$out"
work=$(mktemp -d)
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name --format=csv,noheader)"
clip_one "$clip" "$work/one.mp4"
$py -m realtime build-engines --generator models/aei-net-v2.safetensors --batch 1 --kinds compiled --engines-dir "$work/engines" | grep -E "in [0-9]+ s|failed|built" || echo "FAILED: build-engines"
swap=(--generator models/aei-net-v2.safetensors --identity-encoder models/identity-encoder-v1.safetensors --source demo --engines-dir "$work/engines" --detect-mode async)
echo "-- panel cost $(date -u +%T)"
$py bench/panel_cost.py --seconds 30 --input "$work/one.mp4" --fps 60 --json "$out/panel-cost.json" -- "${swap[@]}" || echo "FAILED: panel cost"
echo "-- apply to frame $(date -u +%T)"
$py bench/panel_apply.py --times 8 --input "$work/one.mp4" --backends compiled eager-cuda --engines-dir "$work/engines" --json "$out/panel-apply.json" || echo "FAILED: panel apply"
echo "== done $(date -u +%T)"
