#!/usr/bin/env bash
# The first call of a GPU session: does the GPU path run clean at all, and if not, which part fails?
# The GPU-marked tests, then short pipeline runs of the issue's 256-px AEI-Net (random weights, warm
# engines): the default path unpaced and paced, twice each, and one run each with one GPU part
# swapped out (the generator eager, without a CUDA graph; frames kept on the host).
#   bench/gpu/check.sh OUTDIR CLIP                  (about 7 minutes on the H100)
#   RUNS="name1:--flags;name2:--flags" bench/gpu/check.sh OUTDIR CLIP   (other runs; RUNS="": tests only)
# Everything goes to OUTDIR/log.txt as it happens, with one summary line per run (reports in
# OUTDIR/results.tgz, the tests' output in OUTDIR/tests.txt); a run that hangs
# is stopped by the pipeline's stall watchdog (10 s, every stack printed) or after RUN_TIMEOUT s.
set -uo pipefail
source bench/gpu/lib.sh
out=${1:?usage: bench/gpu/check.sh OUTDIR CLIP}
clip=${2:?usage: bench/gpu/check.sh OUTDIR CLIP}
start_log "$out"
limit=${RUN_TIMEOUT:-120}
default_runs="unpaced:--frames 2400;paced60:--frames 1200 --pace native;unpaced-again:--frames 2400;paced60-again:--frames 1200 --pace native"
default_runs+=";eager-generator:--frames 2400 --backends eager-cuda"
default_runs+=";host-frames:--frames 2400 --no-device-frames"
echo "== $(date -u +%FT%TZ) $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
# the GPU-marked tests, one process per file (a crash in one file does not hide the others' results);
# every line in OUTDIR/tests.txt, a summary per file here
if [[ -z ${SKIP_TESTS:-} ]]; then
  for file in $(grep -l "mark.gpu" tests/test_*.py); do
    timeout -s ABRT 240 $py -X faulthandler -m pytest -m gpu -v -p no:logging -p no:cacheprovider --tb=short "$file" >> "$out/tests.txt" 2>&1
    echo "tests $file: exit $? $(grep -E '^(=+ )?[0-9]+ (passed|failed)|(passed|failed|error).* in [0-9.]+s' "$out/tests.txt" | tail -1)"
  done
fi
work=$(mktemp -d)
results=$work/results
mkdir -p "$results"
$py bench/random_aei.py "$work"
clip_one "$clip" "$work/one.mp4" 10
$py -m realtime build-engines --generator "$work/aei.safetensors" --batch 1 --kinds compiled --engines-dir "$work/engines" | grep -E "in [0-9]+ s|failed"
swap=(--generator "$work/aei.safetensors" --identity-encoder "$work/id.safetensors" --source "$work/source.png" --engines-dir "$work/engines" --detect-mode async)
IFS=";" read -ra runs <<< "${RUNS-$default_runs}"
for run in "${runs[@]}"; do
  name=${run%%:*}
  args=${run#*:}
  echo "-- $name ($args) $(date -u +%T)"
  # shellcheck disable=SC2086  # $args is a list of flags
  timed "$limit" $py -X faulthandler -m realtime bench --input "$work/one.mp4" --loop $args "${swap[@]}" --quiet --json "$results/$name.json"
  status=$?
  [[ $status -ne 0 ]] && echo "FAILED: $name (exit $status)"
  [[ -f $results/$name.json ]] && summary "$results/$name.json"
  pack_dir "$results" "$out/results.tgz"  # after every run: a call cut short keeps the rest
done
echo "-- kernel log (GPU faults show as NVRM Xid lines)"
dmesg 2>/dev/null | grep -iE "xid|nvrm" | tail -20 || echo "(dmesg not readable)"
