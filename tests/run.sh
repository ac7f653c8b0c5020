#!/usr/bin/env bash
# Installs what the build and the tests need (Debian 12, as root), builds
# wssignd into ./build and runs the whole test suite with ctest.
#   tests/run.sh                  # everything
#   tests/run.sh -L unit          # extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && [ -z "${WSSIGND_SKIP_INSTALL:-}" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        build-essential cmake pkg-config ca-certificates openssl \
        libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libsodium-dev libjansson-dev \
        uuid-dev uthash-dev libcmocka-dev libsystemd-dev systemd strace \
        python3 python3-websockets python3-nacl python3-prometheus-client chromium >/dev/null
    # The browser signer test drives Chromium from Node (playwright-core from npm).
    command -v node >/dev/null && command -v npm >/dev/null ||
        apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSSIGND_WERROR=ON
cmake --build build -j"$(nproc)"
cd build
ctest --output-on-failure -j2 "$@"
