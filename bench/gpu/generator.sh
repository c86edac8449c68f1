#!/usr/bin/env bash
# Generator engines and timings on a GPU machine, in one command; reports go to OUTDIR.
#   bench/gpu/generator.sh OUTDIR [CHECKPOINT]
# Without a checkpoint, a default AEI-Net (256 px) with random weights is made: timing and parity
# do not depend on the weights. Builds an AOTInductor FP16 package (batch 1; it is verified in a
# child process) and torch.compile caches (batches 1 2 4), times every backend, runs GPU tests.
set -euo pipefail
source bench/gpu/lib.sh
out=${1:?usage: bench/gpu/generator.sh OUTDIR [CHECKPOINT]}
mkdir -p "$out"
work=$(mktemp -d)
ckpt=${2:-$work/aei256-random.safetensors}
if [[ -z ${2:-} ]]; then
  $py -c "
import torch; from pathlib import Path
from realtime.models.aei_net import AEINet; from realtime.models.checkpoint import save_checkpoint
torch.manual_seed(0)
hp = dict(crop_size=256, id_dim=128, attr_width=12, gen_width=12, max_mult=6)
save_checkpoint(Path('$ckpt'), AEINet(**hp), architecture='aei_net', hyperparameters=hp, training={'note': 'random weights, for timing only'})
print('made', '$ckpt')"
fi
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name --format=csv,noheader)"
echo "== GPU tests"
$py -m pytest -q -m gpu tests -p no:cacheprovider 2>&1 | tail -3 | tee "$out/gpu-tests.txt" || true
echo "== build engines"
$py -m realtime build-engines --generator "$ckpt" --batch 1 --kinds aot --engines-dir "$work/engines" 2>&1 | tee "$out/build.txt" || true
$py -m realtime build-engines --generator "$ckpt" --batch 1 2 4 --kinds compiled --engines-dir "$work/engines" 2>&1 | tee -a "$out/build.txt" || true
echo "== bench generator"
$py -m realtime bench generator --generator "$ckpt" --engines-dir "$work/engines" --backends aot compiled eager-cuda eager-cuda-fp32 --batches 1 2 4 --json "$out/generator.json" 2>&1 | tee "$out/generator.txt"
cp "$work/engines/manifest.json" "$out/manifest.json" 2>/dev/null || true
