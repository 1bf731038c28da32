#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz for a set time: `make fuzz`.
#
#   scripts/fuzz.sh BUILD_DIR [TARGET...]
#
# BUILD_DIR is a tree configured with CC=clang -DFS_FUZZ=ON and built (its
# fuzz_targets.txt lists the targets; none named: all of them). Each target
# runs FUZZ_SECONDS (default 600), FUZZ_JOBS at a time (default 1; 2 is the
# most this 2-core machine should take), starting from its corpus in
# tests/fuzz/corpus/NAME. New inputs are found in a scratch folder, then
# only those that add coverage are merged into the corpus folder. A crash,
# leak, timeout or out-of-memory stops with the input's path; reproduce it
# with `BUILD_DIR/tests/fuzz/fuzz_NAME PATH`. Logs: BUILD_DIR/fuzz-logs/.
set -uo pipefail

build=${1:?usage: fuzz.sh BUILD_DIR [TARGET...]}
shift
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${FUZZ_SECONDS:-600}
jobs=${FUZZ_JOBS:-1}
logs="$build/fuzz-logs"
mkdir -p "$logs"

if [ $# -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < "$build/fuzz_targets.txt"
fi

# Runs one target; prints one summary line; exit status 1 on a finding.
run_one() {
    local name=$1
    local bin="$build/tests/fuzz/fuzz_$name"
    local corpus="$root/tests/fuzz/corpus/$name"
    local scratch="$build/fuzz-new/$name"
    local artifacts="$build/fuzz-artifacts/$name/"
    local log="$logs/$name.log"

    if [ ! -x "$bin" ]; then
        echo "fuzz: $name: no binary $bin (build it first)" >&2
        return 1
    fi
    mkdir -p "$corpus" "$scratch" "$artifacts"
    touch "$logs/.started-$name"
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$artifacts" "$scratch" "$corpus" >"$log" 2>&1
    local rc=$?
    local stats
    stats=$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -1)
    if [ $rc -ne 0 ]; then
        local found
        found=$(grep -oE "Test unit written to [^ ]+" "$log" | tail -1 |
            sed 's/Test unit written to //')
        echo "fuzz: $name: FAILED (exit $rc) input: ${found:-see $log}"
        echo "fuzz: $name: log: $log"
        return 1
    fi
    # Keep only what adds coverage to the corpus the repository holds.
    "$bin" -merge=1 -max_len=65536 "$corpus" "$scratch" >>"$log" 2>&1
    rm -rf "$scratch"
    local runs
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | tail -1 |
        awk '{print $2}')
    echo "fuzz: $name: ok ${seconds}s runs=${runs:-?} last: $stats"
    # A slow unit is not a failure (a busy machine stalls a run too), but
    # say so: replay it to see whether it is slow by itself.
    local slow
    for slow in $(find "$artifacts" -name 'slow-unit-*' \
        -newer "$logs/.started-$name"); do
        echo "fuzz: $name: note: slow input kept: $slow"
    done
    return 0
}

export -f run_one
export build root seconds logs

printf '%s\n' "${targets[@]}" |
    xargs -P "$jobs" -I{} bash -c 'run_one "$1"' _ {}
status=$?
if [ $status -ne 0 ]; then
    echo "fuzz: a target failed (see above)" >&2
    exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s without a finding"
