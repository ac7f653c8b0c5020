#!/bin/sh
# Long fuzzing run that feeds the committed corpus: each target is fuzzed for
# SECONDS (default 3600) on a working corpus kept between nights in
# $FUZZ_BUILD_DIR/nightly/<target>/, then the inputs that add coverage are
# merged into tests/fuzz/corpus/<target>/ with libFuzzer's -merge=1.
#
#   tests/fuzz/nightly.sh [SECONDS]
#
# Hand-written seeds (any name that is not a 40-digit hex SHA-1) are always
# kept. Entries added by earlier merges (named by SHA-1) are minimised again:
# only those still adding coverage on top of the seeds survive. Review the
# corpus diff and commit it. Exits 1 if any target crashed; crash inputs are
# left in $FUZZ_BUILD_DIR/nightly/<target>/artifacts/ and nothing is merged
# for that target.
set -u

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/targets.sh"

secs=${1:-3600}
build=${FUZZ_BUILD_DIR:-$root/build-fuzz}

"$here/build.sh" "$build" || exit 2
build=$(cd "$build" && pwd)

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

is_sha1() {
    echo "$1" | grep -qE '^[0-9a-f]{40}$'
}

status=0
for t in $FUZZ_TARGETS; do
    bin=$build/fuzz_$t
    committed=$here/corpus/$t
    work=$build/nightly/$t
    if [ ! -x "$bin" ]; then
        echo "== $t: SKIPPED (not built)"
        continue
    fi
    mkdir -p "$work/corpus" "$work/artifacts"
    cp -R "$committed/." "$work/corpus/"
    dict=""
    [ -f "$here/$t.dict" ] && dict="-dict=$here/$t.dict"
    opts="-timeout=5 -rss_limit_mb=1024 -max_len=$(fuzz_max_len "$t")"

    echo "== $t: fuzzing for ${secs}s"
    # shellcheck disable=SC2086
    if ! "$bin" $opts $dict -artifact_prefix="$work/artifacts/" -max_total_time="$secs" \
        -print_final_stats=1 "$work/corpus" >"$work/fuzz.log" 2>&1; then
        echo "== $t: FAILED (log: $work/fuzz.log, inputs: $work/artifacts/)"
        grep -aE "ERROR|check failed|runtime error|SUMMARY" "$work/fuzz.log" | head -5
        status=1
        continue
    fi
    grep -aE '^#[0-9]+[[:space:]]+DONE' "$work/fuzz.log" | tail -n 1

    # Seeds first, then whatever of the old merged entries and tonight's
    # corpus still adds features on top of them.
    tmp=$(mktemp -d)
    mkdir "$tmp/merged" "$tmp/old"
    for f in "$committed"/*; do
        name=$(basename "$f")
        if is_sha1 "$name"; then
            cp "$f" "$tmp/old/"
        else
            cp "$f" "$tmp/merged/"
        fi
    done
    # shellcheck disable=SC2086
    if "$bin" $opts -merge=1 "$tmp/merged" "$tmp/old" "$work/corpus" \
        >"$work/merge.log" 2>&1; then
        for f in "$committed"/*; do
            is_sha1 "$(basename "$f")" && rm -f "$f"
        done
        for f in "$tmp/merged"/*; do
            is_sha1 "$(basename "$f")" && cp "$f" "$committed/"
        done
        echo "== $t: corpus now $(find "$committed" -type f | wc -l) files"
    else
        echo "== $t: merge failed (log: $work/merge.log); corpus left as it was"
        status=1
    fi
    rm -rf "$tmp"
done
exit $status
