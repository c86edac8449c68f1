# What the GPU wrappers share; each sources it from the repository root, where they all run:
#   source bench/gpu/lib.sh
# The wrappers are written for one call on the lent GPU machine: a call has a time limit and hands
# back a few files (< 16 MiB each), so every run has its own timeout, a log is written as it goes,
# and results are packed after every run (a call cut short still hands back what ran).
# PYTHON: the interpreter (default python3).

py=${PYTHON:-python3}

# start_log OUTDIR: OUTDIR made, and everything the script prints also appended to OUTDIR/log.txt
# (a log that survives the call's own time limit).
start_log() {
  mkdir -p "$1"
  exec > >(tee -a "$1/log.txt") 2>&1
}

# fit_clip CLIP OUT [make_clip flags]: CLIP fitted, retimed and looped by bench/make_clip.py; one line.
# The usual ones: one face at 1080p60 (20 s), four faces (the clip tiled 2×2, 12 s).
fit_clip() {
  local clip=$1 out=$2
  shift 2
  $py bench/make_clip.py "$clip" "$out" "$@" | tail -1
}
clip_one() { fit_clip "$1" "$2" --size 1920x1080 --fps 60 --seconds "${3:-20}"; }
clip_four() { fit_clip "$1" "$2" --size 1920x1080 --fps 60 --seconds 12 --tile 2; }

# timed LIMIT_S COMMAND...: COMMAND stopped after LIMIT_S seconds with SIGABRT, so that a Python
# started with -X faulthandler prints every thread's stack (a hang is diagnosed, not lost); killed
# 15 s later if it still runs.
timed() {
  local limit=$1
  shift
  timeout -s ABRT -k 15 "$limit" "$@"
}

# summary REPORT.json: one line from a `realtime bench --json` report.
summary() {
  $py - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
lat, f = r["latency_ms"], r["frames"]
print(f"   {r['throughput_fps']:.1f} fps, {f['done']} done, {len(r['dropped_frame_ids'])} dropped, {f['failed_frames']} failed, "
      f"latency p50 {lat['p50']:.2f} p95 {lat['p95']:.2f} p99 {lat['p99']:.2f} max {lat['max']:.2f} ms, start {r['startup_s']:.1f} s, error: {r['error']}")
PY
}

# pack DIR TGZ [tar options]: DIR's files into TGZ (after every run; options such as --exclude engines).
pack_dir() {
  local from=$1 into=$2
  shift 2
  tar -czf "$into" -C "$from" "$@" .
}
