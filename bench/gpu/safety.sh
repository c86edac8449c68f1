#!/usr/bin/env bash
# Any number of faces, fail safe: the runs of issue 16 on a GPU machine, in one command.
#   bench/gpu/safety.sh OUTDIR CLIP           (GENERATOR defaults to the shipped AEI-Net v2)
# Runs, each a `realtime bench --json` report: four faces at 1080p (unpaced, paced 60 fps) with
# engines for batches 1 2 4; one face at 4K with engines for batch 1 only (a second, short-lived
# track used to fail there); one face at 1080p paced 60 fps for 60 s (the latency figures) and
# unpaced. Then a table of every run (bench/summarize_runs.py). Live runs: --face-safety auto is
# 'hold' (paced) or 'reveal' (unpaced file): both are also run explicitly where it matters.
set -euo pipefail
source bench/gpu/lib.sh
out=${1:?usage: bench/gpu/safety.sh OUTDIR CLIP}
clip=${2:?usage: bench/gpu/safety.sh OUTDIR CLIP}
start_log "$out"
limit=${RUN_TIMEOUT:-150}
work=$(mktemp -d)
generator=${GENERATOR:-models/aei-net-v2.safetensors}
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name --format=csv,noheader) generator $generator"
echo "-- clips $(date -u +%T)"
clip_one "$clip" "$work/one.mp4"
clip_four "$clip" "$work/four.mp4"
fit_clip "$clip" "$work/uhd.mp4" --size 3840x2160 --fps 60 --seconds 8
echo "-- build-engines $(date -u +%T)"
$py -m realtime build-engines --generator "$generator" --batch 1 2 4 --kinds compiled --engines-dir "$work/engines" | grep -E "^\[|in [0-9]+ s|failed|built" || echo "FAILED: build-engines"
$py -m realtime build-engines --generator "$generator" --batch 1 --kinds compiled --engines-dir "$work/engines-b1" | grep -E "in [0-9]+ s|failed|built" || echo "FAILED: build-engines b1"
swap=(--generator "$generator" --identity-encoder models/identity-encoder-v1.safetensors --source demo --detect-mode async --quiet)
run() { name=$1; shift; echo "-- $name $(date -u +%T)"; timed "$limit" $py -X faulthandler -m realtime bench "$@" "${swap[@]}" --json "$out/$name.json" || echo "FAILED: $name"; }
# in order of importance: a call cut short by its time limit still has the first ones
run four-unpaced --input "$work/four.mp4" --frames 600 --max-faces 4 --engines-dir "$work/engines"
run uhd-one-b1 --input "$work/uhd.mp4" --loop --frames 1500 --max-faces 1 --engines-dir "$work/engines-b1"
run one-paced60-hold --input "$work/one.mp4" --loop --frames 3600 --pace native --engines-dir "$work/engines"
run four-paced60-hold --input "$work/four.mp4" --frames 600 --max-faces 4 --pace native --engines-dir "$work/engines"
run one-unpaced --input "$work/one.mp4" --loop --frames 3000 --engines-dir "$work/engines"
run one-paced60-reveal --input "$work/one.mp4" --loop --frames 1200 --pace native --face-safety reveal --engines-dir "$work/engines"
[[ -z ${SKIP_UHD_PACED:-} ]] && run uhd-one-b1-paced-hold --input "$work/uhd.mp4" --loop --frames 900 --max-faces 1 --pace native --engines-dir "$work/engines-b1"
echo "-- table $(date -u +%T)"
$py bench/summarize_runs.py "$out"/*.json | tee "$out/table.md"
