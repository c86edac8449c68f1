#!/usr/bin/env bash
# One chunk of the reenactment refiner's training (issue 33, design b) on one GPU.
#   bench/gpu/train_reenact.sh RUN OUTDIR LIMIT_S FACES...
# Resumes from RUN/state.pt, or from state.pt.partNNN files put into RUN (a fresh machine);
# trains for at most LIMIT_S seconds; leaves in OUTDIR what a machine can hand back: the FP16
# refiner, the state in parts of < 16 MiB, and train.tgz (curves, samples, log).
# BATCH (default 64), STEPS (default 200000), EXTRA: more train-reenact flags.
set -euo pipefail
run=${1:?usage: bench/gpu/train_reenact.sh RUN OUTDIR LIMIT_S FACES...}
out=${2:?usage}
limit=${3:?usage}
shift 3
mkdir -p "$run" "$out/parts"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
{
  echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
  status=0
  python3 -m realtime train-reenact --faces "$@" --identity-encoder models/identity-encoder-v1.safetensors --output "$run" \
    --steps "${STEPS:-200000}" --batch "${BATCH:-64}" --time-limit-s "$limit" --save-parts "$out/parts" --sample-every 200 ${EXTRA:-} || status=$?
  echo "== exit $status"
} 2>&1 | tee "$run/train.log"
cp "$run/reenact-refiner.safetensors" "$out/" 2>/dev/null || true
tar -czf "$out/train.tgz" -C "$run" train.log $(cd "$run" && ls losses.png losses.jsonl samples.png 2>/dev/null)
