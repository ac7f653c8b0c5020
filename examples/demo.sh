#!/usr/bin/env bash
# The main job in one command (Debian 12, as root): installs what wssignd
# needs to build and run (no test-only package), builds wssignd and wssign,
# starts the daemon on the shipped default configuration (config/wssignd.json:
# signers on ws://127.0.0.1:8080/v1/ws, HTTP API on 127.0.0.1:8081), connects
# a demo signer (wssign agent with a fresh key), asks it for one signature
# through POST /v1/sign (wssign request), prints it and verifies it offline.
#
# Success ends with the line "demo: signature verified" and exit status 0;
# any failure prints the logs and "demo: FAILED: <step>" and exits 1.
# WSSIGND_SKIP_INSTALL=1 skips apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
signer_pid= daemon_pid=
cleanup() {
    [ -n "$signer_pid" ] && kill "$signer_pid" 2>/dev/null
    [ -n "$daemon_pid" ] && kill -TERM "$daemon_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

show_logs() {
    for f in agent wssignd; do
        [ -s "$work/$f.log" ] && { echo "--- $f log"; cat "$work/$f.log"; }
    done
    return 0
}
fail() {
    show_logs
    echo "demo: FAILED: $*"
    exit 1
}
# Runs a step with its output kept aside, shown only if the step fails.
quiet() {
    local what=$1
    shift
    "$@" >"$work/step.log" 2>&1 || { cat "$work/step.log"; fail "$what"; }
}

if [ "$(id -u)" = 0 ] && [ -z "${WSSIGND_SKIP_INSTALL:-}" ]; then
    export DEBIAN_FRONTEND=noninteractive
    echo "demo: installing the build dependencies (apt-get)"
    quiet "apt-get update" apt-get update
    quiet "apt-get install" apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config ca-certificates curl \
        libwebsockets-dev libwebsockets-evlib-uv libuv1-dev libsodium-dev libjansson-dev \
        uuid-dev uthash-dev libssl-dev libhiredis-dev libsystemd-dev
fi
echo "demo: building wssignd and wssign"
quiet "cmake (configure)" cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
quiet "cmake --build" cmake --build build -j"$(nproc)" --target wssignd wssign
wssign=build/src/wssign/wssign

build/wssignd -c config/wssignd.json 2>"$work/wssignd.log" &
daemon_pid=$!
for _ in $(seq 50); do grep -q "event=ready" "$work/wssignd.log" && break; sleep 0.1; done
grep -q "event=ready" "$work/wssignd.log" || fail "wssignd did not start (ports 8080 and 8081 in use?)"

# The signer side: a fresh key and an agent holding it.
pubkey=$("$wssign" keygen -o "$work/signer.key") || fail "wssign keygen"
"$wssign" agent --url ws://127.0.0.1:8080/v1/ws --key "$work/signer.key" 2>"$work/agent.log" &
signer_pid=$!
key_url=$(printf %s "$pubkey" | tr '+/' '-_' | tr -d =)
for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:8081/v1/keys/$key_url" >/dev/null && break
    sleep 0.1
done
curl -sf "http://127.0.0.1:8081/v1/keys/$key_url" >/dev/null ||
    fail "the agent did not connect and introduce its key"

echo "signer public key: $pubkey"
echo "wssign request --message \"hello from wssignd\""
result=$("$wssign" request --key "$pubkey" --message "hello from wssignd") ||
    fail "wssign request"
echo "$result"
signature=$(printf %s "$result" | sed -n 's/.*"signature":"\([^"]*\)".*/\1/p')
[ -n "$signature" ] || fail "no signature in the answer"
"$wssign" verify --key "$pubkey" --message "hello from wssignd" --signature "$signature" ||
    fail "wssign verify: the signature does not verify"
echo
show_logs
echo "demo: signature verified"
