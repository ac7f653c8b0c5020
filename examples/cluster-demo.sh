#!/usr/bin/env bash
# A cluster on one machine: starts a Redis (no persistence, a free loopback
# port) and three wssignd nodes sharing it, connects a signer (wssign agent
# with a fresh key) to node 1, asks node 3 for a signature (wssign request on
# node 3's control API), prints it and verifies it offline.
#
# Needs what examples/demo.sh installs, plus redis-server; builds wssignd and
# wssign into ./build if they are not there. Success ends with the line
# "cluster demo: signature verified" and exit status 0; any failure prints
# the logs and "cluster demo: FAILED: <step>" and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

show_logs() {
    for f in "$work"/*.log; do
        [ -s "$f" ] && { echo "--- $(basename "$f")"; cat "$f"; }
    done
    return 0
}
fail() {
    show_logs
    echo "cluster demo: FAILED: $*"
    exit 1
}
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() { # file pattern what
    for _ in $(seq 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
    fail "$3"
}

command -v redis-server >/dev/null || fail "redis-server is not installed (apt-get install redis-server)"
if [ ! -x build/wssignd ] || [ ! -x build/src/wssign/wssign ]; then
    echo "cluster demo: building wssignd and wssign"
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$work/build.log" 2>&1 &&
        cmake --build build -j"$(nproc)" --target wssignd wssign >>"$work/build.log" 2>&1 ||
        fail "build"
fi
wssign=build/src/wssign/wssign

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    >"$work/redis.log" 2>&1 &
pids+=($!)
wait_for "$work/redis.log" "Ready to accept connections" "redis-server did not start"

# The secret every node shares: it authenticates every message between them.
head -c 32 /dev/urandom | base64 >"$work/cluster.secret"
chmod 600 "$work/cluster.secret"

for n in 1 2 3; do
    cat >"$work/node$n.json" <<EOF
{
  "listen": "127.0.0.1:0",
  "control": {"listen": "127.0.0.1:0"},
  "cluster": {
    "redis": "redis://127.0.0.1:$redis_port",
    "secret_file": "$work/cluster.secret",
    "node_id": "node$n"
  }
}
EOF
    build/wssignd -c "$work/node$n.json" 2>"$work/node$n.log" &
    pids+=($!)
done
for n in 1 2 3; do
    wait_for "$work/node$n.log" "event=cluster_up" "node$n did not join the cluster"
done
# Port 0 asked each node for free ports; the ready line names them.
port_of() { sed -n "s/.*event=ready.* $2=127.0.0.1:\([0-9]*\).*/\1/p" "$work/$1.log"; }
signer_port=$(port_of node1 listen)
control3=$(port_of node3 control)

pubkey=$("$wssign" keygen -o "$work/signer.key") || fail "wssign keygen"
"$wssign" agent --url "ws://127.0.0.1:$signer_port/v1/ws" --key "$work/signer.key" \
    2>"$work/agent.log" &
pids+=($!)
wait_for "$work/node1.log" "event=introduced" "the agent did not introduce its key on node1"

echo "signer on node1, public key: $pubkey"
echo "asking node3: wssign request --control http://127.0.0.1:$control3 --message \"hello from the cluster\""
result=$("$wssign" request --control "http://127.0.0.1:$control3" --key "$pubkey" \
    --message "hello from the cluster") || fail "wssign request on node3"
echo "$result"
signature=$(printf %s "$result" | sed -n 's/.*"signature":"\([^"]*\)".*/\1/p')
[ -n "$signature" ] || fail "no signature in the answer"
"$wssign" verify --key "$pubkey" --message "hello from the cluster" --signature "$signature" ||
    fail "wssign verify: the signature does not verify"
grep -q "outcome=ok" "$work/node3.log" || fail "node3 did not log the outcome"
echo "cluster demo: signature verified"
