#!/bin/sh
# Builds the libFuzzer targets under ASan and UBSan.
#
#   tests/fuzz/build.sh [BUILD_DIR]        (default: <repo>/build-fuzz)
#
# Environment: CC (default clang-14); WSSIGND_SRC, the tree whose src/ and
# include/ are compiled (default: this repository); FUZZ_CFLAGS, extra flags.
# A target whose sources are missing is skipped with a notice (its old binary
# is removed), so the others still build.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/targets.sh"

out=${1:-$root/build-fuzz}
src=${WSSIGND_SRC:-$root}
cc=${CC:-clang-14}

mkdir -p "$out"
out=$(cd "$out" && pwd)

# Fatal on the first finding, whichever sanitizer reports it.
cflags="-g -O1 -fno-omit-frame-pointer"
cflags="$cflags -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"
cflags="$cflags -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wformat=2 -Wno-unused-parameter"
# No target needs lws: the sources under test (src/common/ among them) do not use it.
deps=$(pkg-config --cflags --libs libsodium jansson uuid)

built=0
for t in $FUZZ_TARGETS; do
    files=""
    missing=""
    for f in $(fuzz_sources "$t"); do
        if [ -f "$src/$f" ]; then
            files="$files $src/$f"
        else
            missing="$missing $f"
        fi
    done
    if [ -n "$missing" ]; then
        echo "build.sh: skipping fuzz_$t:$missing not found in $src" >&2
        [ "$t" = http_api_parse ] &&
            echo "build.sh:   (apply tests/fuzz/http_api_parse.patch to add it)" >&2
        rm -f "$out/fuzz_$t"
        continue
    fi
    echo "build.sh: fuzz_$t"
    # shellcheck disable=SC2086 # word splitting of flag lists is intended
    "$cc" $cflags ${FUZZ_CFLAGS:-} -I"$src/include" -I"$src/src" -I"$src/src/common" \
        -I"$src/src/wssign" -I"$src/src/cluster" -o "$out/fuzz_$t" "$here/fuzz_$t.c" $files $deps
    built=$((built + 1))
done
echo "build.sh: $built target(s) in $out"
