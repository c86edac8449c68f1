#!/usr/bin/env bash
# One AEI-Net training chunk on a GPU machine, on every GPU it has (torchrun, DDP).
#   bench/gpu/train_aei.sh RUN OUTDIR LIMIT_S FACES...
# Resumes from RUN/state.pt, or from state.pt.partNNN files put into RUN (a fresh machine);
# trains for at most LIMIT_S seconds; leaves in OUTDIR what a machine can hand back: the FP16
# generator, the state in parts of < 16 MiB, and train.tgz (curves, samples, log, GPU readings).
# BATCH: pairs a step over all GPUs (default 256 a GPU); EXTRA: more train-aei flags, e.g.
# EXTRA="--crop-size 256 --lambda-fm 10" (a resumed run must keep the architecture flags).
set -euo pipefail
run=${1:?usage: bench/gpu/train_aei.sh RUN OUTDIR LIMIT_S FACES...}
out=${2:?usage}
limit=${3:?usage}
shift 3
mkdir -p "$run" "$out/parts"
if [ -n "${REQUIRE_STATE:-}" ] && ! ls "$run"/state.pt* >/dev/null 2>&1; then
  echo "no state in $run (each call gets a fresh working tree: put the handed-back state.pt.part* files into RUN): not training from scratch"; exit 3
fi
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
gpus=$(nvidia-smi -L | wc -l)
{
  echo "== $(date -u +%FT%TZ) $gpus × $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
  nvidia-smi --query-gpu=index,memory.used,utilization.gpu --format=csv -l 60 &
  smi=$!
  status=0
  torchrun --standalone --nproc-per-node "$gpus" -m realtime train-aei --faces "$@" \
    --identity-encoder models/identity-encoder-v1.safetensors --output "$run" \
    --steps "${STEPS:-200000}" --batch "${BATCH:-$((256 * gpus))}" --time-limit-s "$limit" --save-parts "$out/parts" ${EXTRA:-} || status=$?
  kill $smi 2>/dev/null || true
  echo "== exit $status"
} 2>&1 | tee "$run/train.log"
cp "$run/aei-net.safetensors" "$run/discriminator.safetensors" "$out/" 2>/dev/null || true  # a weights-only restart: --init-generator/--init-discriminator
tar -czf "$out/train.tgz" -C "$run" train.log $(cd "$run" && ls losses.png losses.jsonl samples.png 2>/dev/null)
