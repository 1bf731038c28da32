#!/usr/bin/env bash
# make stress: the convergence and crash scenarios (tests/integration/crm/
# test_converge.c, test_crash.c) with new seeds, long forms, against every
# CRM of the build, until STRESS_SECONDS have passed. Prints the seeds,
# operations, kills, faulted deliveries and lost and doubled counts, and
# fails on any failed run, loss or doubling. Logs of failed runs are kept
# in $BUILD/stress/ with the seed to replay them (FS_SEED=...).
set -u

BUILD=${BUILD:-build}
SHARED=${SHARED:-../shared}
SECONDS_LIMIT=${STRESS_SECONDS:-900}
OPS=${STRESS_OPS:-1500}
KILLS=${STRESS_KILLS:-8}

crms=$(ctest --test-dir "$BUILD" -N 2>/dev/null |
    sed -n 's/.*integration\.test_converge\.\([a-z0-9_]*\)$/\1/p' | sort -u)
if [ -z "$crms" ]; then
    echo "stress: no integration.test_converge.<crm> in $BUILD" >&2
    exit 1
fi
mkdir -p "$BUILD/stress"
export FS_BIN="$PWD/$BUILD/fieldsync" FS_SIM_BIN="$PWD/$BUILD/crmsim"
export FS_SHARED_DIR="$SHARED"

runs=0 failed=0 ops=0 kills=0 faulted=0 lost=0 doubled=0 coarse=0
# The value of key=N in the lines of a log that start with prefix, summed.
sum() {
    grep "^$2: " "$1" | grep -o " $3=[0-9]*" | cut -d= -f2 |
        awk '{ s += $1 } END { print s + 0 }'
}

# No run starts after the limit, so the whole takes at most the limit and
# one run (a few minutes) more.
end=$((SECONDS + SECONDS_LIMIT))
while [ "$SECONDS" -lt "$end" ]; do
    for crm in $crms; do
        for test in converge crash; do
            [ "$SECONDS" -lt "$end" ] || break 2
            seed=$(od -An -N6 -tu8 /dev/urandom | tr -d ' ')
            log="$BUILD/stress/$test-$crm-$seed.log"
            FS_CRM=$crm FS_SEED=$seed FS_OPS=$OPS FS_KILLS=$KILLS \
                "$BUILD/test_$test" >"$log" 2>&1
            code=$?
            runs=$((runs + 1))
            for p in converge crash crash-points crash-webhooks; do
                ops=$((ops + $(sum "$log" "$p" ops)))
                faulted=$((faulted + $(sum "$log" "$p" faulted)))
                lost=$((lost + $(sum "$log" "$p" lost)))
                doubled=$((doubled + $(sum "$log" "$p" doubled)))
                coarse=$((coarse + $(sum "$log" "$p" coarse)))
            done
            kills=$((kills + $(sum "$log" crash-total kills)))
            if [ "$code" -ne 0 ]; then
                failed=$((failed + 1))
                echo "stress: FAILED $test on $crm, seed $seed: $log"
            else
                echo "stress: passed $test on $crm, seed $seed"
                rm -f "$log"
            fi
        done
    done
done

echo "stress: crms=$(echo $crms | tr ' ' ,) seeds=$runs operations=$ops" \
    "kills=$kills deliveries_faulted=$faulted lost=$lost doubled=$doubled" \
    "coarse=$coarse failed=$failed seconds=$SECONDS"
echo "stress: $((runs - failed)) passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$lost" -eq 0 ] && [ "$doubled" -eq 0 ]
