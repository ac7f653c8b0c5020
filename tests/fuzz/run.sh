#!/usr/bin/env bash
# Builds the fuzz targets, replays tests/fuzz/regressions/<target>/, then
# fuzzes each target for SECONDS (default 60) on a copy of its committed
# corpus, which is never modified here. Prints executions and coverage per
# target; exits 1 on any crash, leak, timeout, out-of-memory or UB report.
#
#   tests/fuzz/run.sh [SECONDS]
#
# Environment: FUZZ_BUILD_DIR (default <repo>/build-fuzz), FUZZ_TARGETS (a
# subset, e.g. "proto b64"), and whatever build.sh reads. Logs and any crash
# inputs are kept under $FUZZ_BUILD_DIR/run/<target>/.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/targets.sh"

secs=${1:-60}
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}

"$here/build.sh" "$build" || exit 2
build=$(cd "$build" && pwd)

# Fatal on the first report; symbolised stacks in the logs.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Targets run FUZZ_JOBS at a time (default: the number of CPUs, at most 2),
# each on its own for the whole time given; the summary keeps the targets' order.
if [ -n "${FUZZ_JOBS:-}" ]; then
    jobs=$FUZZ_JOBS
else
    jobs=$(nproc)
    [ "$jobs" -le 2 ] || jobs=2
fi
[ "$jobs" -ge 1 ] 2>/dev/null || jobs=1

mkdir -p "$build/run"
summary=$build/run/summary.txt
: >"$summary"

# One target: its findings go to stdout, its summary line to $build/run/<t>.line,
# and it returns non-zero on a finding.
fuzz_one() {
    local t=$1 bin out result rc execs line cov ft corp dict opts
    bin=$build/fuzz_$t
    out=$build/run/$t
    if [ ! -x "$bin" ]; then
        printf '%-16s %-8s (not built; see the build.sh output)\n' "$t" SKIPPED \
            >"$build/run/$t.line"
        return 0
    fi
    rm -rf "$out"
    mkdir -p "$out/corpus" "$out/artifacts"
    cp -R "$here/corpus/$t/." "$out/corpus/"
    dict=""
    [ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
    opts="-timeout=5 -rss_limit_mb=1024 -max_len=$(fuzz_max_len "$t")"
    opts="$opts -artifact_prefix=$out/artifacts/"

    # Known findings first: each file once, no mutation.
    result=ok
    if [ -d "$here/regressions/$t" ] && [ -n "$(ls -A "$here/regressions/$t")" ]; then
        # shellcheck disable=SC2086
        if ! "$bin" $opts "$here/regressions/$t"/* >"$out/regressions.log" 2>&1; then
            result=FAILED
            echo "== $t: a regression input fails (log: $out/regressions.log)"
            grep -aE "ERROR|check failed|runtime error|SUMMARY" "$out/regressions.log" | head -5
        fi
    fi

    # shellcheck disable=SC2086
    "$bin" $opts $dict -max_total_time="$secs" -print_final_stats=1 "$out/corpus" \
        >"$out/fuzz.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        result=FAILED
        echo "== $t: fuzzing stopped with status $rc (log: $out/fuzz.log)"
        grep -aE "ERROR|check failed|runtime error|SUMMARY|Test unit written" "$out/fuzz.log" |
            head -8
    fi
    execs=$(grep -a '^stat::number_of_executed_units:' "$out/fuzz.log" | tail -n 1 | tr -dc 0-9)
    # The last status line: "#N DONE cov: C ft: F corp: ..." (or the last one before a crash).
    line=$(grep -aE '^#[0-9]+.* cov: ' "$out/fuzz.log" | tail -n 1)
    cov=$(echo "$line" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$line" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$line" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    [ -n "$execs" ] || execs=$(echo "$line" | sed -n 's/^#\([0-9]*\).*/\1/p')
    printf '%-16s %-8s execs=%-10s cov=%-6s ft=%-6s corpus=%s\n' \
        "$t" "$result" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" >"$build/run/$t.line"
    [ "$result" = ok ]
}

status=0
running=0
for t in $FUZZ_TARGETS; do
    rm -f "$build/run/$t.line"
    fuzz_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || status=1
        running=$((running - 1))
    fi
done
while [ "$running" -gt 0 ]; do
    wait -n || status=1
    running=$((running - 1))
done
for t in $FUZZ_TARGETS; do
    if [ -f "$build/run/$t.line" ]; then
        cat "$build/run/$t.line" >>"$summary"
    else
        printf '%-16s %-8s (no result)\n' "$t" FAILED >>"$summary"
        status=1
    fi
done

echo
echo "fuzz summary (${secs}s per target):"
cat "$summary"
exit $status
