#!/usr/bin/env bash
# Study (closed; BENCHMARKS-HISTORY.md §15, §20): AEI-Net training throughput on a GPU machine, before and after the step was made fast: the
# trainer of an earlier commit (unpacked into BASELINE, e.g. `git archive <commit> realtime bench |
# tar -x -C .baseline`) and today's, on random 112-px crops (timing only; the data sit on the GPU
# either way), one GPU. Each run writes profile.json and phases.png; all are packed into OUTDIR/speed.tgz.
#   bench/studies/gpu_train_speed.sh OUTDIR BASELINE
set -uo pipefail
source bench/gpu/lib.sh
out=${1:?usage: bench/studies/gpu_train_speed.sh OUTDIR BASELINE}
base=${2:?usage: bench/studies/gpu_train_speed.sh OUTDIR BASELINE}
mkdir -p "$out/speed"
exec > >(tee -a "$out/speed/log.txt") 2>&1
enc=$PWD/models/identity-encoder-v1.safetensors
prof() { name=$1; shift; echo "-- $name $(date -u +%T)"; timeout -k 10 "${LIMIT:-200}" "$@" --encoder "$enc" | grep -E "warm-up 1/|pairs_per_s|step_ms|achieved|gflop|warmup_s" || echo "FAILED: $name"; }
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name --format=csv,noheader)"
prof before-b32 $py "$base/bench/profile_train_aei.py" "$out/speed/before-b32" --batch 32 --steps 40 --trace
prof before-b128 $py "$base/bench/profile_train_aei.py" "$out/speed/before-b128" --batch 128 --steps 30
prof after-b128-eager $py bench/profile_train_aei.py "$out/speed/after-b128-eager" --batch 128 --steps 30 --no-compile
prof after-b256-eager $py bench/profile_train_aei.py "$out/speed/after-b256-eager" --batch 256 --steps 30 --no-compile
prof after-b256-compiled $py bench/profile_train_aei.py "$out/speed/after-b256-compiled" --batch 256 --steps 40 --warmup 6
tar -czf "$out/speed.tgz" -C "$out" --exclude trace.json speed && rm -rf "$out/speed"/*/trace.json
echo "== done $(date -u +%T)"
