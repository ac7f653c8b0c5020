#!/usr/bin/env bash
# The main job in one command (Debian 12, as root): installs what wssignd
# needs, builds it, starts the daemon on its embedded defaults (signers on
# ws://127.0.0.1:8080/v1/ws, HTTP API on 127.0.0.1:8081), connects a demo
# signer, asks it for one signature through POST /v1/sign and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && [ -z "${WSSIGND_SKIP_INSTALL:-}" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        build-essential cmake pkg-config ca-certificates curl \
        libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libsodium-dev libjansson-dev \
        uuid-dev uthash-dev libcmocka-dev python3 python3-websockets python3-nacl >/dev/null
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

work=$(mktemp -d)
cleanup() {
    kill "${signer_pid:-}" 2>/dev/null || true
    kill -TERM "${daemon_pid:-}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

build/wssignd 2>"$work/wssignd.log" &
daemon_pid=$!
for _ in $(seq 50); do grep -q "event=ready" "$work/wssignd.log" && break; sleep 0.1; done
grep -q "event=ready" "$work/wssignd.log" || { cat "$work/wssignd.log"; exit 1; }

/usr/bin/python3 examples/python_signer.py --url ws://127.0.0.1:8080/v1/ws >"$work/signer.log" 2>&1 &
signer_pid=$!
for _ in $(seq 50); do grep -q "^introduced" "$work/signer.log" && break; sleep 0.1; done
pubkey=$(sed -n 's/^introduced public_key=//p' "$work/signer.log")
[ -n "$pubkey" ] || { cat "$work/signer.log"; exit 1; }

message=$(printf 'hello from wssignd' | base64)
echo "signer public key: $pubkey"
echo "POST /v1/sign message=\"hello from wssignd\""
curl -sS -X POST http://127.0.0.1:8081/v1/sign \
    -H 'content-type: application/json' \
    -d "{\"public_key\":\"$pubkey\",\"message\":\"$message\"}"
echo
echo "--- daemon log"
cat "$work/wssignd.log"
