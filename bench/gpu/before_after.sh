#!/usr/bin/env bash
# A change's cost on the live path: the one-face 1080p paced 60 fps run of the shipped model, with
# the code before the change and after it, alternated on one machine in one call (before, after,
# before, after), each with engines its own code built. The code before is a copy of the tree at
# the earlier commit, carried in a git-ignored folder:
#   git archive COMMIT realtime bench | tar -x -C .baseline     (here)
#   source .devkit/enter.sh; bench/gpu/before_after.sh OUTDIR .devdata/clip.mp4 .baseline   (there)
# FRAMES (default 2400) frames a run; PAIRS (default 2) before/after pairs. One summary line a run
# in OUTDIR/log.txt, the JSON reports in OUTDIR/results.tgz (packed after every run).
set -uo pipefail
source bench/gpu/lib.sh
out=${1:?usage: bench/gpu/before_after.sh OUTDIR CLIP BASELINE}
clip=${2:?usage: bench/gpu/before_after.sh OUTDIR CLIP BASELINE}
baseline=$(cd "${3:?usage: bench/gpu/before_after.sh OUTDIR CLIP BASELINE}" && pwd)
start_log "$out"
limit=${RUN_TIMEOUT:-150}
frames=${FRAMES:-2400}
work=$(mktemp -d)
results=$work/results
mkdir -p "$results"
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
clip_one "$clip" "$work/one.mp4"
code() {  # which tree runs: 'after' is the checkout, 'before' the baseline copy ahead of it on the path
  if [[ $1 == before ]]; then echo "$baseline:${PYTHONPATH:-}"; else echo "${PYTHONPATH:-}"; fi
}
for side in before after; do
  echo "-- build-engines ($side) $(date -u +%T)"
  PYTHONPATH=$(code $side) $py -m realtime build-engines --generator models/aei-net-v2.safetensors --batch 1 --kinds compiled \
    --engines-dir "$work/engines-$side" | grep -E "in [0-9]+ s|failed" || echo "FAILED: build-engines ($side)"
done
for pair in $(seq 1 "${PAIRS:-2}"); do
  for side in before after; do
    name=paced60-$side-$pair
    echo "-- $name $(date -u +%T)"
    PYTHONPATH=$(code $side) timed "$limit" $py -X faulthandler -m realtime bench --input "$work/one.mp4" --loop \
      --frames "$frames" --pace native --generator models/aei-net-v2.safetensors --identity-encoder models/identity-encoder-v1.safetensors \
      --source demo --engines-dir "$work/engines-$side" --detect-mode async --quiet --json "$results/$name.json" || echo "FAILED: $name"
    [[ -f $results/$name.json ]] && summary "$results/$name.json"
    pack_dir "$results" "$out/results.tgz"
  done
done
