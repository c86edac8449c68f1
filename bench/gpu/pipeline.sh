#!/usr/bin/env bash
# The whole pipeline at 1080p on a GPU machine, in one command; reports go to OUTDIR/results.tgz.
#   bench/gpu/pipeline.sh OUTDIR CLIP
#   GENERATOR=models/aei-net-v2.safetensors bench/gpu/pipeline.sh OUTDIR CLIP   # the shipped model
# (one-unpaced-60s: the clip looped, 12000 frames (over 60 s at up to 200 fps), for the 'sustained for 60 s' target.)
# Without GENERATOR: an AEI-Net (256 px) and identity encoder with random weights (timing does not
# depend on the weights). With it: that checkpoint, the shipped identity encoder and --source demo.
# Runs: one face unpaced (throughput) and paced at 60 fps (latency), cold start (torch.compile
# inside setup) and warm (after build-engines saved the compile cache), four faces.
set -euo pipefail
source bench/gpu/lib.sh
out=${1:?usage: bench/gpu/pipeline.sh OUTDIR CLIP}
clip=${2:?usage: bench/gpu/pipeline.sh OUTDIR CLIP}
start_log "$out"
# each run gets a time limit; at it, faulthandler prints every thread's stack (a hang is diagnosed, not lost)
limit=${RUN_TIMEOUT:-420}
work=$(mktemp -d)
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name --format=csv,noheader)"
$py bench/random_aei.py "$work"
echo "-- clips $(date -u +%T)"
clip_one "$clip" "$work/one.mp4"
clip_four "$clip" "$work/four.mp4"
swap=(--generator "$work/aei.safetensors" --identity-encoder "$work/id.safetensors" --source "$work/source.png" --engines-dir "$work/engines" --detect-mode async --quiet)
if [[ -n ${GENERATOR:-} ]]; then
  cp "$GENERATOR" "$work/aei.safetensors"
  swap=(--generator "$work/aei.safetensors" --identity-encoder models/identity-encoder-v1.safetensors --source demo --engines-dir "$work/engines" --detect-mode async --quiet)
fi
# results are packed after every run, so a run cut short by a time limit still hands back the rest
pack() { pack_dir "$work" "$out/results.tgz" --exclude engines --exclude '*.mp4' --exclude '*.safetensors'; }
run() { name=$1; shift; echo "-- $name $(date -u +%T)"; timed "$limit" $py -X faulthandler -m realtime bench "$@" "${swap[@]}" --json "$work/$name.json" || echo "FAILED: $name"; pack; }
[[ -z ${SKIP_COLD:-} ]] && run one-unpaced-cold --input "$work/one.mp4" --frames 450  # SKIP_COLD=1: only the warm runs
# batches 1 2 4: the four-face runs use all three (2 for the frames where one face is missed);
# 'compiled' also saves the fused blend kernels: the pipeline runs and the second blend bench use them (--blend-compile auto)
echo "-- build-engines $(date -u +%T)"
$py -m realtime build-engines --generator "$work/aei.safetensors" --batch 1 2 4 --kinds compiled --engines-dir "$work/engines" | grep -E "^\[|in [0-9]+ s|failed|built" || echo "FAILED: build-engines"
crop=$($py -c "import sys; from pathlib import Path; from realtime.inference.spec import spec_from_checkpoint; print(spec_from_checkpoint(Path(sys.argv[1])).crop_size)" "$work/aei.safetensors")
$py -m realtime bench blend --crop-size "$crop" --blend-compile off --json "$work/blend-$crop.json" | tail -5 || echo "FAILED: blend bench"
$py -m realtime bench blend --crop-size "$crop" --blend-compile auto --engines-dir "$work/engines" --json "$work/blend-$crop-fused.json" | tail -5 || echo "FAILED: fused blend bench"
# the detail restore's cost: the same fused blend without it
$py -m realtime bench blend --crop-size "$crop" --blend-compile auto --engines-dir "$work/engines" --detail 0 --json "$work/blend-$crop-fused-detail0.json" | tail -5 || echo "FAILED: fused blend bench, detail 0"
run one-unpaced-60s --input "$work/one.mp4" --loop --frames 12000
run one-paced60 --input "$work/one.mp4" --loop --frames 3600 --pace native
# STEADY_RUN=1: the same paced run without --steady, right after it, for its per-frame cost
[[ -n ${STEADY_RUN:-} ]] && run one-paced60-steady0 --input "$work/one.mp4" --loop --frames 3600 --pace native --steady 0
[[ -n ${DETAIL_RUN:-} ]] && run one-unpaced-detail0 --input "$work/one.mp4" --loop --frames 6000 --detail 0  # DETAIL_RUN=1: the pipeline without the detail restore
[[ -n ${GIL_RUN:-} ]] && run one-unpaced-gil5ms --input "$work/one.mp4" --frames 900 --gil-switch-ms 5  # Python's default switch interval, for comparison
run four-unpaced --input "$work/four.mp4" --frames 600 --max-faces 4
run four-paced60 --input "$work/four.mp4" --frames 600 --max-faces 4 --pace native
# FOUR_LONG=1: four faces over 1,800 frames, to tell a host's one-off costs from a steady rate
[[ -n ${FOUR_LONG:-} ]] && run four-unpaced-1800 --input "$work/four.mp4" --loop --frames 1800 --max-faces 4
pack
