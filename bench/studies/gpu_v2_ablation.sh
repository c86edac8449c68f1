#!/usr/bin/env bash
# Study (closed; BENCHMARKS-HISTORY.md §16): short ablations for AEI-Net v2 on a GPU machine: every variant starts from the same weights
# (v1 as the core), trains LIMIT_S seconds eager (compiling costs ~2 min a process, more than it
# saves in a chunk this short) on the same faces, and hands back its generator and curves.
#   bench/studies/gpu_v2_ablation.sh OUTDIR LIMIT_S TEACHER FACES...
# CORE: the 128-px model every variant starts from (v1, no longer in models/: see the error below).
# VARIANTS picks some of: core (v1 at 128 px, trained on), base (256 px: v1 core + detail stage,
# FaceShifter's objective), fm, id2, perc (base plus one added term each).
set -euo pipefail
out=${1:?usage: bench/studies/gpu_v2_ablation.sh OUTDIR LIMIT_S TEACHER FACES...}
limit=${2:?usage}
teacher=${3:?usage}
shift 3
mkdir -p "$out"
work=$(mktemp -d)
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
v1=${CORE:?set CORE to the 128-px starting model, e.g. v1: git show 674a0a5:models/aei-net-v1.safetensors > .devdata/aei-net-v1.safetensors}
detail="--crop-size 256 --detail-width ${DETAIL_WIDTH:-16} --init-generator $v1"
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
for variant in ${VARIANTS:-core base fm id2 perc}; do
  case $variant in
    core) flags="--crop-size 128 --init-generator $v1" ;;
    base) flags="$detail" ;;
    fm) flags="$detail --lambda-fm ${LAMBDA_FM:-10}" ;;
    id2) flags="$detail --lambda-id2 ${LAMBDA_ID2:-5} --second-identity-encoder $teacher" ;;
    perc) flags="$detail --lambda-perceptual ${LAMBDA_PERC:-5}" ;;
    *) echo "unknown variant $variant"; exit 2 ;;
  esac
  echo "== $variant: $flags"
  mkdir -p "$work/$variant"
  python3 -m realtime train-aei --faces "$@" --identity-encoder models/identity-encoder-v1.safetensors \
    --output "$work/$variant" --steps 1000000 --batch "${BATCH:-256}" --time-limit-s "$limit" --no-compile $flags 2>&1 \
    | tee "$work/$variant/train.log" || echo "== $variant failed"
  tail -n 3 "$work/$variant/losses.jsonl" 2>/dev/null || true
  cp "$work/$variant/aei-net.safetensors" "$out/$variant.safetensors" 2>/dev/null || true
  nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv,noheader || true
  # after every variant: a call cut short still hands back what ran
  tar -czf "$out/ablation.tgz" -C "$work" $(cd "$work" && ls -d */train.log */losses.png */losses.jsonl */discriminator.safetensors 2>/dev/null)  # the faces: bench/swap_probe.py; D: to go on from a variant
done
