#!/usr/bin/env bash
# The main job in one command (Debian 12, as root): installs what wssignd
# needs, builds it, starts the daemon on its embedded defaults (signers on
# ws://127.0.0.1:8080/v1/ws, HTTP API on 127.0.0.1:8081), connects a demo
# signer (wssign agent with a fresh key), asks it for one signature through
# POST /v1/sign (wssign request) and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ] && [ -z "${WSSIGND_SKIP_INSTALL:-}" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        build-essential cmake pkg-config ca-certificates curl \
        libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libsodium-dev libjansson-dev \
        uuid-dev uthash-dev libsystemd-dev python3 >/dev/null
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

# The signer side: a fresh key and an agent holding it.
build/src/wssign/wssign keygen -o "$work/signer.key" >"$work/pubkey"
pubkey=$(cat "$work/pubkey")
build/src/wssign/wssign agent --url ws://127.0.0.1:8080/v1/ws --key "$work/signer.key" \
    2>"$work/agent.log" &
signer_pid=$!
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:8081/v1/keys/$(printf %s "$pubkey" | tr '+/' '-_' | tr -d =)" \
        >/dev/null && break
    sleep 0.1
done

echo "signer public key: $pubkey"
echo "wssign request --message \"hello from wssignd\""
result=$(build/src/wssign/wssign request --key "$pubkey" --message "hello from wssignd")
echo "$result"
signature=$(printf %s "$result" | sed -n 's/.*"signature":"\([^"]*\)".*/\1/p')
build/src/wssign/wssign verify --key "$pubkey" --message "hello from wssignd" --signature "$signature" &&
    echo "signature verified offline"
echo
echo "--- agent log"
cat "$work/agent.log"
echo "--- daemon log"
cat "$work/wssignd.log"
