#!/usr/bin/env bash
# The whole test suite, as CI runs it (Debian 12, as root): installs what the
# build and the tests need, builds wssignd into ./build, then runs
#   1. ctest: unit, codec cases, end-to-end, hostile input, faults, the
#      browser signer in headless Chromium, the bench smoke run;
#   2. every fuzz target for WSSIGND_FUZZ_SECONDS (default 20) each;
#   3. the unit and end-to-end tests against an ASan+UBSan build;
#   4. the unit tests and an end-to-end subset with the daemon under valgrind.
# Any failure fails the run.
#
#   tests/run.sh                 everything
#   tests/run.sh -L unit         only step 1, with these arguments for ctest
# WSSIGND_SKIP_INSTALL=1 skips apt-get; WSSIGND_QUICK=1 runs only step 1.
set -euo pipefail
cd "$(dirname "$0")/.."

# As root, the packages come from .ci/run's list (CI has installed them already).
if [ "$(id -u)" = 0 ] && [ -z "${WSSIGND_SKIP_INSTALL:-}" ]; then
    .ci/run --install-only >/dev/null
fi

step() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step "build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSSIGND_WERROR=ON -DWSSIGND_BUILD_TESTS=ON
cmake --build build -j"$(nproc)"

step "ctest"
(cd build && ctest --output-on-failure -j2 "$@")
if [ $# -gt 0 ] || [ -n "${WSSIGND_QUICK:-}" ]; then
    exit 0
fi

step "fuzz"
tests/fuzz/run.sh "${WSSIGND_FUZZ_SECONDS:-20}"

step "asan"
tests/run-checked.sh asan

step "valgrind"
tests/run-checked.sh valgrind

step "all passed"
