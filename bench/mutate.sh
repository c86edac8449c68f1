#!/usr/bin/env bash
# Mutation testing of one module that guards users, against only the tests that cover it.
#
#   bench/mutate.sh MODULE      MODULE: guard kalman queues failure sources sinks checkpoint profiles api
#   bench/mutate.sh --list      the modules and the tests each runs against
#
# mutmut (a dev extra) mutates the module one small change at a time (a flipped comparison, a
# changed constant, a dropped argument...) and runs the tests that reach the mutated function; a
# mutant the tests still pass is a "survivor": untested behaviour, or an equivalent change.
# It works in a scratch copy (MUTATE_DIR, default /tmp/realtime-mutate/MODULE), never in the tree,
# so other work in the checkout is not disturbed (MUTATE_REF=HEAD: code and tests as committed). `nice`d, JOBS workers (default 2). Not in CI:
# one module takes 10-60 min on a 2-core machine. Results: MUTATE_DIR/MODULE/results.txt, and
# `cd MUTATE_DIR/MODULE && mutmut show NAME` for a survivor's diff. Scores: docs/DEVELOPMENT.md.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
mutmut="$root/.venv/bin/mutmut"

# module -> "file to mutate|tests that cover it"
declare -A MODULES=(
    [guard]="realtime/stages/blend/guard.py|tests/test_face_safety.py tests/test_face_safety_edges.py tests/test_face_safety_cuts.py"
    [kalman]="realtime/vision/kalman.py|tests/test_kalman.py tests/test_tracking.py"
    [queues]="realtime/pipeline/queues.py|tests/test_queues.py"
    [failure]="realtime/pipeline/pipeline.py|tests/test_faults.py tests/test_pipeline.py"
    [sources]="realtime/io/sources.py|tests/test_sources.py tests/test_faults.py"
    [sinks]="realtime/io/sinks.py|tests/test_sinks.py tests/test_faults.py"
    [checkpoint]="realtime/models/checkpoint.py|tests/test_models.py tests/test_hostile_models.py tests/test_faults.py"
    [profiles]="realtime/byo/profiles.py|tests/test_byo.py"
    [api]="realtime/control/api.py|tests/test_control.py"
)

if [[ $# -ne 1 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
if [[ "$1" == --list ]]; then
    for name in "${!MODULES[@]}"; do printf '%-11s %s\n' "$name" "${MODULES[$name]/|/  <-  }"; done | sort
    exit 0
fi
name=$1
if [[ -z "${MODULES[$name]+set}" ]]; then
    echo "unknown module '$name': use one of ${!MODULES[*]}" >&2
    exit 2
fi
[[ -x "$mutmut" ]] || { echo "mutmut is not installed: .venv/bin/pip install -e '.[dev]'" >&2; exit 2; }
target=${MODULES[$name]%%|*}
tests=${MODULES[$name]#*|}
work=${MUTATE_DIR:-/tmp/realtime-mutate}/$name

# A fresh scratch copy of the code and tests: the working tree as it is (uncommitted edits
# included), or with MUTATE_REF=HEAD (any commit) the code and tests as committed there — for
# when someone's half-done edit elsewhere in the checkout breaks an import.
rm -rf "$work"
mkdir -p "$work"
if [[ -n "${MUTATE_REF:-}" ]]; then
    (cd "$root" && git archive "$MUTATE_REF" realtime tests models pyproject.toml) | tar -xf - -C "$work"
else
    (cd "$root" && tar --exclude=__pycache__ -cf - realtime tests models pyproject.toml) | tar -xf - -C "$work"
fi
# pyproject's [tool.mutmut] names one module and its tests: point both at this module.
"$root/.venv/bin/python" - "$work/pyproject.toml" "$target" $tests <<'EOF'
import json, re, sys
path, target, tests = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(path).read()
text, n1 = re.subn(r'(?m)^only_mutate = .*$', 'only_mutate = ' + json.dumps([target]), text)
text, n2 = re.subn(r'(?m)^pytest_add_cli_args_test_selection = .*$', 'pytest_add_cli_args_test_selection = ' + json.dumps(tests), text)
assert n1 == n2 == 1, "pyproject.toml's [tool.mutmut] must have one-line only_mutate and pytest_add_cli_args_test_selection"
open(path, "w").write(text)
EOF

cd "$work"
echo "mutating $target against: $tests (in $work)"
start=$(date +%s)
nice -n 10 "$mutmut" run --max-children "${JOBS:-2}" > run.log 2>&1 || { tail -30 run.log; exit 1; }
"$mutmut" results --all true > results.txt 2>&1 || "$mutmut" results > results.txt 2>&1
"$root/.venv/bin/python" - "$work" "$(( $(date +%s) - start ))" <<'EOF'
import collections, pathlib, re, sys
work, seconds = pathlib.Path(sys.argv[1]), sys.argv[2]
status = collections.Counter()
survivors = []
for line in (work / "results.txt").read_text().splitlines():
    match = re.match(r"\s*(\S+): (.+)$", line)
    if match:
        status[match.group(2)] += 1
        if match.group(2) == "survived":
            survivors.append(match.group(1))
total = sum(status.values())
killed = status["killed"] + status["timeout"]
print(f"{killed}/{total} killed ({100 * killed / max(total, 1):.0f} %) in {seconds} s: {dict(status)}")
for name in survivors:
    print("  survived:", name)
EOF
