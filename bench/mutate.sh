#!/usr/bin/env bash
# Mutation testing of one module that guards users, against only the tests that cover it.
#
#   bench/mutate.sh MODULE      MODULE: guard kalman queues failure sources sinks checkpoint profiles api
#   bench/mutate.sh --list      the modules and the tests each runs against
#   MUTANTS='realtime.io.sinks.xǁFileSinkǁ*' bench/mutate.sh sinks   only the mutants matching
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
    # checkpoint: test_faults only for its two checkpoint tests (the rest run whole pipelines, minutes a mutant)
    [checkpoint]="realtime/models/checkpoint.py|tests/test_models.py tests/test_checkpoint_metadata.py tests/test_hostile_models.py tests/test_faults.py::test_hostile_checkpoint_metadata_is_blamed_on_the_checkpoint tests/test_faults.py::test_the_teacher_and_training_states_are_never_unpickled_as_code"
    # profiles: the tests that reach profile detection and the DFM binding (test_byo's others run
    # ONNX models through the swap, ~40 s a mutant); first a test that reads the whole profile
    # table (mutmut charges the table's import-time calls to the first test run: see EXTRA below)
    [profiles]="realtime/byo/profiles.py|tests/test_byo.py::test_each_family_is_fed_its_input_range_and_layout_and_its_output_read_back tests/test_byo.py::test_each_profile_feeds_its_family_what_it_was_trained_on tests/test_byo.py::test_profiles_cover_every_family_the_issue_names tests/test_byo.py::test_profile_detection_by_signature_and_override tests/test_byo.py::test_a_file_given_as_dfm_that_is_not_one_names_its_inputs_and_what_a_dfm_takes tests/test_byo.py::test_a_swapper_is_told_by_its_inputs_not_by_how_many_outputs_it_has tests/test_byo.py::test_a_third_party_swapper_is_loaded_with_one_notice_of_its_licence_and_of_consent tests/test_byo.py::test_a_swapper_whose_crop_is_not_rgb_channels_first_is_not_taken_for_inswapper tests/test_byo.py::test_a_profile_named_for_a_file_of_another_kind_says_what_that_profile_takes tests/test_byo.py::test_an_inswapper_shaped_file_is_checked_against_the_profile_the_user_names tests/test_byo.py::test_an_inswapper_file_swaps_through_the_adapter_as_onnxruntime_runs_it tests/test_byo.py::test_converter_families_need_their_converter tests/test_byo.py::test_the_inswapper_identity_is_the_normalised_embedding_through_the_emap tests/test_byo.py::test_dfm_standin_through_the_adapter tests/test_byo.py::test_a_bad_generator_file_is_one_line_and_a_nonzero_exit tests/test_byo.py::test_doctor_lists_user_models_with_profile_sha256_and_licence tests/test_hostile_models.py::test_formats_are_read_from_content_whatever_the_name tests/test_hostile_models.py::test_a_dfm_file_is_a_generator_and_a_renamed_checkpoint_still_loads tests/test_hostile_models.py::test_a_64_px_dfm_names_the_file_and_what_it_declares_not_a_flag"
    [api]="realtime/control/api.py|tests/test_control.py"
)
# Extra [tool.mutmut] lines for a module. profiles builds its table (PROFILES) when it is imported:
# forked from a process that had imported it, a worker never sees a mutant of `_profile`. With a
# fork server that preloads only third-party modules, each worker imports realtime afresh with its
# mutant on, and mutmut charges import-time calls to the first test run, which must read every
# profile. A mutant that breaks the import itself shows as a timeout (the collection fails).
declare -A EXTRA=(
    [profiles]='process_isolation = "forkserver"
forkserver_warmup = "import"
preload_modules_file = "@WORK@/preload.txt"'
    # test_faults and test_sinks encode files and start processes: mutmut's default limit (15x
    # the test's time in the stats run + 1 s) timed out mutants that pass in 30 s, which the score
    # would count as killed (sinks, 2026-12-07). Untried beyond that check.
    [sinks]='timeout_constant = 60.0'
    [sources]='timeout_constant = 60.0'
    [failure]='timeout_constant = 60.0'
)
declare -A PRELOAD=(
    [profiles]="numpy torch onnx onnxruntime pytest"
)

if [[ $# -ne 1 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
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
"$root/.venv/bin/python" - "$work/pyproject.toml" "${EXTRA[$name]:-}" "$target" $tests <<'EOF'
import json, re, sys
path, extra, target, tests = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
text = open(path).read()
text, n1 = re.subn(r'(?m)^only_mutate = .*$', 'only_mutate = ' + json.dumps([target]), text)
text, n2 = re.subn(r'(?m)^pytest_add_cli_args_test_selection = .*$', 'pytest_add_cli_args_test_selection = ' + json.dumps(tests), text)
assert n1 == n2 == 1, "pyproject.toml's [tool.mutmut] must have one-line only_mutate and pytest_add_cli_args_test_selection"
if extra:
    extra = extra.replace("@WORK@", path.rsplit("/", 1)[0])
    text = re.sub(r'(?m)^(pytest_add_cli_args_test_selection = .*)$', lambda m: m.group(1) + "\n" + extra, text, count=1)
open(path, "w").write(text)
EOF

cd "$work"
[[ -n "${PRELOAD[$name]:-}" ]] && tr ' ' '\n' <<< "${PRELOAD[$name]}" > preload.txt
echo "mutating $target against: $tests (in $work)"
start=$(date +%s)
# MUTANTS="pattern ...": only the mutants whose names match (fnmatch, e.g. 'realtime.io.sinks.x_parse*'),
# for a module too slow to run whole; the others stay "not checked" and are left out of the score.
# shellcheck disable=SC2086
nice -n 10 "$mutmut" run --max-children "${JOBS:-2}" ${MUTANTS:-} > run.log 2>&1 || { tail -30 run.log; exit 1; }
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
status.pop("not checked", None)  # MUTANTS chose a subset
total = sum(status.values())
killed = status["killed"] + status["timeout"]
print(f"{killed}/{total} killed ({100 * killed / max(total, 1):.0f} %) in {seconds} s: {dict(status)}")
for name in survivors:
    print("  survived:", name)
EOF
