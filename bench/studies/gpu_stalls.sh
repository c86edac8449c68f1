#!/usr/bin/env bash
# Study (closed; BENCHMARKS-HISTORY.md §9i): why four faces paced at 60 fps drop frames in bursts
# (BENCHMARKS-HISTORY §9h), and where the blend's
# last fraction of a millisecond goes; one call on the GPU machine, results in OUTDIR/results.tgz.
#   bench/studies/gpu_stalls.sh OUTDIR CLIP
# RUNS: "name:--flags;..." four-face runs of 60 s at 60 fps, each sampled from outside by
# bench/thread_monitor.py and explained by bench/stall_analysis.py (default: one run, default flags).
# PROFILE=0 skips bench/profile_blend.py; TESTS=1 runs the blend's GPU tests first; BLEND_BENCH=1 runs
# `realtime bench blend` fused and not; WORK=DIR keeps the models and engines there for a later call
# on the same machine (built once; RUNS="" then stops after the builds).
set -uo pipefail
source bench/gpu/lib.sh
out=${1:?usage: bench/studies/gpu_stalls.sh OUTDIR CLIP}
clip=${2:?usage: bench/studies/gpu_stalls.sh OUTDIR CLIP}
start_log "$out"
limit=${RUN_TIMEOUT:-150}
work=${WORK:-$(mktemp -d)}
results=$work/results
mkdir -p "$results"
if [[ ${TESTS:-0} == 1 ]]; then
  timeout -s ABRT 300 $py -X faulthandler -m pytest -m gpu -q -p no:cacheprovider tests/test_blend.py tests/test_align.py > "$results/gpu-tests.txt" 2>&1
  echo "gpu tests (blend, align): exit $? $(tail -1 "$results/gpu-tests.txt")"
fi
pack() { pack_dir "$results" "$out/results.tgz"; }
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name --format=csv,noheader), $(nproc) CPUs; cpu quota: $(cat /sys/fs/cgroup/cpu.max 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || echo none); $(grep some /proc/pressure/cpu 2>/dev/null)"
if [[ ${PROFILE:-1} != 0 ]]; then
  echo "-- profile_blend $(date -u +%T)"
  timeout -s ABRT 240 $py -X faulthandler bench/profile_blend.py --json "$results/profile-blend.json" > "$results/profile-blend.txt" 2>&1 || echo "FAILED: profile_blend"
  head -12 "$results/profile-blend.txt"; pack
fi
if [[ ! -d $work/engines ]]; then
  $py bench/random_aei.py "$work"
  clip_four "$clip" "$work/four.mp4"
  $py -m realtime build-engines --generator "$work/aei.safetensors" --batch 1 2 4 --kinds compiled --engines-dir "$work/engines" | grep -E "in [0-9]+ s|failed"
fi
if [[ ${BLEND_BENCH:-0} == 1 ]]; then
  for mode in off auto; do
    $py -m realtime bench blend --crop-size 256 --blend-compile $mode --engines-dir "$work/engines" --json "$results/blend-256-$mode.json" | tail -5 || echo "FAILED: blend bench $mode"
  done
  pack
fi
swap=(--generator "$work/aei.safetensors" --identity-encoder "$work/id.safetensors" --source "$work/source.png" --engines-dir "$work/engines" --detect-mode async --quiet)
IFS=";" read -ra runs <<< "${RUNS-four-paced60-60s:--slow-stage-ms 30}"
for run in "${runs[@]}"; do
  name=${run%%:*}
  args=${run#*:}
  echo "-- $name ($args) $(date -u +%T)"
  # shellcheck disable=SC2086  # $args is a list of flags
  timed "$limit" $py bench/thread_monitor.py --out "$results/$name-threads.npz" -- \
    $py -X faulthandler -m realtime bench --input "$work/four.mp4" --loop --frames 3600 --pace native --max-faces 4 $args "${swap[@]}" --json "$results/$name.json" \
    || echo "FAILED: $name"
  if [[ -f $results/$name.json ]]; then
    $py -c "import json,sys; r=json.load(open(sys.argv[1])); f=r['frames']; print(f\"   {r['throughput_fps']} fps, {f['done']} done, {sum(f['dropped'].values())} dropped, latency {r['latency_ms']}, gc {r.get('gc')}\")" "$results/$name.json"
    $py bench/stall_analysis.py "$results/$name.json" "$results/$name-threads.npz" --png "$results/$name-threads.png" | tee "$results/$name-stalls.txt"
  fi
  pack
done
