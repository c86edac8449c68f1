#!/usr/bin/env bash
# One per-target training chunk on every GPU of a machine (torchrun, DDP), then its files in OUTDIR
# in pieces a machine can hand back (each < 16 MiB).
#   bench/gpu/train_target.sh RUN OUTDIR LIMIT_S TARGET FACES...
# TARGET: a prepare-faces dataset, a video or a folder of photos of the person; FACES: datasets of
# other people. Resumes from RUN/state.pt (or state.pt.partNNN files put into RUN).
set -euo pipefail
run=${1:?usage: bench/gpu/train_target.sh RUN OUTDIR LIMIT_S TARGET FACES...}
out=${2:?usage}
limit=${3:?usage}
target=${4:?usage}
shift 4
mkdir -p "$run" "$out"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
gpus=$(nvidia-smi -L | wc -l)
{
  echo "== $(date -u +%FT%TZ) $gpus × $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
  status=0
  torchrun --standalone --nproc-per-node "$gpus" -m realtime train-target --target "$target" --faces "$@" --output "$run" \
    --steps "${STEPS:-200000}" --batch "${BATCH:-64}" --time-limit-s "$limit" ${EXTRA:-} || status=$?
  echo "== exit $status"
} 2>&1 | tee "$run/train.log"
# the FP16 model is ~23 MB: hand it back in pieces (cat target.safetensors.part* > target.safetensors)
split -b 15m "$run/target.safetensors" "$out/target.safetensors.part" 2>/dev/null || true
tar -czf "$out/train.tgz" -C "$run" train.log $(cd "$run" && ls losses.png losses.jsonl samples.png 2>/dev/null)
