#!/bin/bash
# Runs one whole wssignd measurement and prints one summary line per run (and
# a line of medians when --runs > 1). Starts a daemon on free loopback ports
# with the open-file limit raised, measures its idle RSS, introduces N signers
# (bench_signers), measures its RSS again, optionally restarts it to time a
# reconnect storm (or, with --storm-cut, to cut every signer connection at
# once after a SIGHUP), then drives POST /v1/sign with C keep-alive connections for
# D seconds (bench_requester) while reading the daemon's CPU time from
# /proc/PID/stat. Everything it starts is stopped on exit. See README.md.
#
# --latency: after the closed-loop load, open-loop load (a constant arrival rate)
# at 25 %, 50 % and 75 % of the rate it reached, latency counted from each
# request's due time. --js: the same load on bench/js-peer/server.mjs on Node and
# on Bun, in the same run.
#
# Each run also measures the I/O floor (io_floor + io_peer): the same load on a
# plain epoll server that moves a signature's bytes without JSON or crypto.
#
# --cluster: each run measures one daemon alone (as above), then starts its
# own redis-server and two daemons sharing it, connects the signers to node A
# and drives the requests at node B's control API, so every signature crosses
# nodes; its summary line puts the two side by side (added latency and CPU).
set -u -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
N=1000 C=64 D=10 WARMUP=1 RUNS=1 TLS=0 STORM=0 SMOKE=0 STORM_CUT=0 RESUME=0 TLS_FRONT=0
SILENT=0 REJECT=0 BAD_SIG=0 TIMEOUT_MS=0 MSG_BYTES=32 INFLIGHT=256 VERIFY_THREADS=
PER_PROC=10000 KEEP= DAEMON= TOOLS= LOG_LEVEL=warn CLUSTER=0 REDIS_SERVER=redis-server
LATENCY=0 JS=0 NODE=node BUN=
HAPROXY=haproxy

usage() {
    cat <<EOF
usage: $0 [options]
  -n N             signer connections (default $N)
  -c C             concurrent HTTP keep-alive connections (default $C)
  -d D             measured seconds (default $D), after --warmup S (default $WARMUP)
  --runs R         repeat the whole measurement R times and print medians
  --tls            signer listener over wss:// (self-signed certificate)
  --storm          restart the daemon once all are introduced; time the reconnect storm
  --storm-cut      a storm without a restart: SIGHUP the daemon, then cut every signer
                   connection at once (shutdown(2) in bench_signers); time the reconnects
  --tls-front      TLS terminated by haproxy (TCP mode, on loopback) in front of a ws://
                   signer listener; the signers connect over wss:// to haproxy, whose
                   memory per connection is reported beside the daemon's
  --haproxy PATH   haproxy binary for --tls-front (default: haproxy in PATH)
  --resume         with --tls: signers keep their TLS session and offer it when they
                   reconnect (resumed only after --storm-cut: a restart makes new ticket keys)
  --silent F, --reject F, --bad-sig F
                   fraction of sign requests the signers leave unanswered, reject,
                   or answer with a corrupted signature (default 0)
  --timeout-ms MS  timeout_ms sent with each request (default: the daemon's)
  --msg-bytes B    message size (default $MSG_BYTES)
  --inflight K     handshakes in flight per signer process (default $INFLIGHT)
  --per-proc K     signers per bench_signers process (default $PER_PROC)
  --daemon PATH    wssignd binary (default: ../build/wssignd)
  --tools DIR      directory of bench_signers, bench_requester, verify_floor
  --keep DIR       keep configs and logs in DIR
  --log-level L    the daemon's log_level (default warn; notice and below log every sign)
  --smoke          N=20 C=4 D=2 (D=1 with --latency or --js): a functional check; exits 1
                   unless every request got 200
  --cluster        signers on node A, requests to node B of a two-node cluster (its own
                   redis-server), and the same load on one daemon alone, in each run
  --redis-server PATH  redis-server binary for --cluster (default: redis-server in PATH)
  --latency        then open-loop load at 25, 50 and 75 % of the closed-loop rate (-d each)
  --js             the same load on bench/js-peer (ws + http) on Node and on Bun
  --node PATH, --bun PATH  the runtimes for --js (default: node in PATH,
                   bench/js-peer/node_modules/.bin/bun; without Bun only Node is measured)
EOF
}

while [ $# -gt 0 ]; do
    case $1 in
    -n) N=$2; shift ;;
    -c) C=$2; shift ;;
    -d) D=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --tls) TLS=1 ;;
    --storm) STORM=1 ;;
    --storm-cut) STORM=1 STORM_CUT=1 ;;
    --resume) RESUME=1 ;;
    --tls-front) TLS=1 TLS_FRONT=1 ;;
    --haproxy) HAPROXY=$2; shift ;;
    --silent) SILENT=$2; shift ;;
    --reject) REJECT=$2; shift ;;
    --bad-sig) BAD_SIG=$2; shift ;;
    --timeout-ms) TIMEOUT_MS=$2; shift ;;
    --msg-bytes) MSG_BYTES=$2; shift ;;
    --verify-threads) VERIFY_THREADS=$2; shift ;;
    --inflight) INFLIGHT=$2; shift ;;
    --per-proc) PER_PROC=$2; shift ;;
    --daemon) DAEMON=$2; shift ;;
    --tools) TOOLS=$2; shift ;;
    --keep) KEEP=$2; shift ;;
    --log-level) LOG_LEVEL=$2; shift ;;
    --smoke) SMOKE=1 ;;
    --cluster) CLUSTER=1 ;;
    --redis-server) REDIS_SERVER=$2; shift ;;
    --latency) LATENCY=1 ;;
    --js) JS=1 ;;
    --node) NODE=$2; shift ;;
    --bun) BUN=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
# The load after the daemon's own (the I/O floor, open loop, JS): as long, but shorter with --smoke.
# SETTLE: the pause before reading the RSS and before the load starts.
AUX_D= AUX_WARMUP= SETTLE=1
if [ "$TLS_FRONT" = 1 ] && ! command -v "$HAPROXY" >/dev/null; then
    echo "run.sh: --tls-front needs $HAPROXY (apt-get install haproxy)" >&2
    exit 2
fi
if [ "$RESUME" = 1 ] && [ "$TLS" = 0 ]; then
    echo "run.sh: --resume needs --tls" >&2
    exit 2
fi
if [ "$SMOKE" = 1 ]; then
    N=20 C=4 D=2 WARMUP=0.5 RUNS=1 AUX_D=0.5 AUX_WARMUP=0.2 SETTLE=0.2
    # With more steps in the run, the daemon's own load is as short.
    [ "$LATENCY$JS" != 00 ] && D=1 WARMUP=0.25
fi

DAEMON=${DAEMON:-$HERE/../build/wssignd}
if [ -z "$TOOLS" ]; then
    for t in "$HERE/../build/bench" "$HERE/build"; do
        [ -x "$t/bench_signers" ] && TOOLS=$t && break
    done
fi
for bin in "$DAEMON" "$TOOLS/bench_signers" "$TOOLS/bench_requester" "$TOOLS/verify_floor" \
    "$TOOLS/io_floor" "$TOOLS/io_peer"; do
    if [ ! -x "$bin" ]; then
        echo "run.sh: $bin not found; build the project and bench/ first (or pass --daemon/--tools)" >&2
        exit 2
    fi
done
if [ "$CLUSTER" = 1 ]; then
    if ! command -v "$REDIS_SERVER" >/dev/null || ! command -v redis-cli >/dev/null; then
        echo "run.sh: --cluster needs $REDIS_SERVER and redis-cli (apt-get install redis-server)" >&2
        exit 2
    fi
    if [ "$STORM" = 1 ]; then
        echo "run.sh: --storm does not go with --cluster" >&2
        exit 2
    fi
fi

if [ "$CLUSTER" = 1 ] && [ "$LATENCY$JS" != 00 ]; then
    echo "run.sh: --latency and --js do not go with --cluster" >&2
    exit 2
fi
JS_DIR=$HERE/js-peer
if [ "$JS" = 1 ]; then
    [ "$TLS" = 0 ] || { echo "run.sh: --js measures ws only, not --tls" >&2; exit 2; }
    if ! command -v "$NODE" >/dev/null; then
        echo "SKIP: --js needs node (apt-get install nodejs npm)" >&2
        exit 77
    fi
    if [ ! -d "$JS_DIR/node_modules/ws" ]; then
        command -v npm >/dev/null || { echo "SKIP: --js needs npm to install $JS_DIR's packages" >&2; exit 77; }
        echo "# installing $JS_DIR's npm packages (npm ci)"
        (cd "$JS_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
            { echo "run.sh: npm ci in $JS_DIR failed" >&2; exit 2; }
    fi
    BUN=${BUN:-$JS_DIR/node_modules/.bin/bun}
    # Bun's binary comes with the npm package "bun"; without a Bun that runs, Node alone.
    if ! "$BUN" --version >/dev/null 2>&1; then
        echo "# bun: $BUN does not run here; --js measures Node only" >&2
        BUN=
    fi
fi

WORK=${KEEP:-$(mktemp -d /tmp/wssignd-bench.XXXXXX)}
mkdir -p "$WORK"
# A certificate of an earlier invocation in a --keep directory may have expired.
rm -f "$WORK/cert.pem" "$WORK/key.pem"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do stop_wait "$p" 10 2>/dev/null; done
    [ -z "$KEEP" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The open-file limit: as high as the hard limit allows (the daemon needs N + C + a few).
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
if [ "$NOFILE" != unlimited ] && [ $((N + C + 64)) -gt "$NOFILE" ]; then
    echo "run.sh: N=$N needs more than the open-file limit of $NOFILE" >&2
    exit 2
fi

die() { echo "run.sh: $*" >&2; exit 1; }

free_port() {
    local p i
    for i in $(seq 1 200); do
        # Below the ephemeral range (32768 and up), so no client socket holds it.
        p=$((10000 + RANDOM % 22000))
        # A refused connection means nothing listens there.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# free_ports N [TAKEN...]: N distinct free ports on one line, none of TAKEN.
free_ports() {
    local n=$1 p
    shift
    local taken=" $* " got=()
    while [ ${#got[@]} -lt "$n" ]; do
        p=$(free_port) || return 1
        [[ $taken == *" $p "* ]] && continue
        taken="$taken$p "
        got+=("$p")
    done
    echo "${got[@]}"
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# utime + stime of a process so far, in milliseconds.
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$1/stat"; }

# Waits until FILE holds COUNT lines matching PATTERN, for at most SECS seconds.
wait_lines() {
    local file=$1 pattern=$2 count=$3 secs=$4 i
    for i in $(seq 1 $((secs * 20))); do
        [ "$(grep -c -- "$pattern" "$file" 2>/dev/null)" -ge "$count" ] && return 0
        sleep 0.05
    done
    return 1
}

# GET PATH on the control listener at PORT: the whole answer, headers included.
http_get() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1" &&
        printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3 &&
        cat <&3) 2>/dev/null
}

# start_daemon LOG [CONFIG CONTROL_PORT]: starts a daemon (default: the run's config) and
# waits until its /healthz answers 200; sets DPID.
start_daemon() {
    local log=$1 config=${2:-$WORK/wssignd.json} port=${3:-$CTL_PORT}
    : >"$log"
    "$DAEMON" -c "$config" 2>"$log" &
    DPID=$!
    PIDS+=("$DPID")
    # event=ready is a notice line, hidden at the default bench log level (warn):
    # ready means /healthz answers on the control listener.
    local i answer
    for i in $(seq 1 300); do
        kill -0 "$DPID" 2>/dev/null || die "daemon exited: $(tail -5 "$log")"
        answer=$(http_get "$port" /healthz)
        if head -1 <<<"$answer" | grep -q ' 200'; then
            READY_MS=$(date +%s%3N)
            return 0
        fi
        sleep 0.05
    done
    die "daemon did not get ready: $(tail -5 "$log")"
}

# Waits up to SECS seconds for PID (a child) to exit, then kills it; sets DRC to its status.
stop_wait() {
    local pid=$1 secs=$2 i
    for i in $(seq 1 $((secs * 20))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: pid $pid still running after ${secs}s: killed" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    DRC=$?
}

# stop_daemon [PID]: SIGTERM and wait (default: DPID); sets DRC.
stop_daemon() {
    local pid=${1:-$DPID}
    kill -TERM "$pid" 2>/dev/null
    stop_wait "$pid" 30
}

# key=value lookup in a line.
field() { sed -n "s/.*[ ^]$2=\([^ ]*\).*/\1/p" <<<" $1" | head -1; }

# write_config [FILE [EXTRA]]: a config on WS_PORT and CTL_PORT (default file: the run's
# config); EXTRA is more top-level JSON members, each starting with a comma.
write_config() {
    local file=${1:-$WORK/wssignd.json} extra=${2:-} tls=
    if [ "$TLS" = 1 ] && [ ! -s "$WORK/cert.pem" ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
            -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
            -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 || die "openssl failed"
        chmod 600 "$WORK/key.pem"
    fi
    if [ "$TLS" = 1 ] && [ "$TLS_FRONT" = 0 ]; then
        tls=$(printf ',\n  "tls": {"cert": "%s", "key": "%s"}' "$WORK/cert.pem" "$WORK/key.pem")
    fi
    local per_key=$(( (C / N) + 64 )) vt=
    [ -n "$VERIFY_THREADS" ] && vt=", \"verify_threads\": $VERIFY_THREADS"
    cat >"$file" <<EOF
{
  "listen": "127.0.0.1:$WS_PORT",
  "control": {"listen": "127.0.0.1:$CTL_PORT"},
  "requests": {"max_pending": 200000, "max_pending_per_key": $per_key,
               "default_timeout_ms": 10000$vt},
  "introduction": {"timeout_ms": 60000},
  "log_level": "$LOG_LEVEL"$tls$LIMITS$extra
}
EOF
}

# The per-address connection cap must not stop N signers from one address; a
# daemon that does not know the key runs with the "limits" section left out.
LIMITS=$',\n  "limits": {"max_connections_per_ip": 1000000}'
probe_limits() {
    WS_PORT=1 CTL_PORT=2
    write_config
    "$DAEMON" -c "$WORK/wssignd.json" --check-config >/dev/null 2>&1 || LIMITS=
}

# start_signers TAG PORT: N signers (several processes when N exceeds --per-proc) on the
# listener at PORT; waits until all are introduced. Sets SIG_PIDS, SIG_PROCS and INTRO_MS
# (the largest over processes); their output goes to $WORK/signers.TAG.K.{out,err}.
start_signers() {
    local tag=$1 port=$2 k first count life ms tls_flag=
    SIG_PROCS=$(( (N + PER_PROC - 1) / PER_PROC ))
    life=$(awk -v w="$WARMUP" -v d="$D" -v n="$N" 'BEGIN { print int(w + d + n / 200 + 120) }')
    [ "$TLS" = 1 ] && tls_flag=--tls
    [ "$RESUME" = 1 ] && tls_flag="--tls --resume"
    SIG_PIDS=()
    for k in $(seq 0 $((SIG_PROCS - 1))); do
        first=$((k * PER_PROC))
        count=$(( N - first < PER_PROC ? N - first : PER_PROC ))
        "$TOOLS/bench_signers" --port "$port" $tls_flag --first "$first" --count "$count" \
            --inflight "$INFLIGHT" --duration "$life" --silent "$SILENT" --reject "$REJECT" \
            --bad-sig "$BAD_SIG" >"$WORK/signers.$tag.$k.out" 2>"$WORK/signers.$tag.$k.err" &
        SIG_PIDS+=($!)
        PIDS+=($!)
    done
    INTRO_MS=0
    for k in $(seq 0 $((SIG_PROCS - 1))); do
        wait_lines "$WORK/signers.$tag.$k.out" 'event=introduced' 1 $((60 + N / 100)) ||
            die "signers $k did not all introduce: $(tail -n 3 "$WORK/signers.$tag.$k.out" "$WORK/signers.$tag.$k.err")"
        ms=$(field "$(grep event=introduced "$WORK/signers.$tag.$k.out")" ms)
        INTRO_MS=$(awk -v a="$INTRO_MS" -v b="$ms" 'BEGIN { print (b > a ? b : a) }')
    done
}

# stop_signers TAG: stops them; each prints its counters on the way out. Sets RX_ERRORS
# and INTRO_FAIL, summed over the processes.
stop_signers() {
    local tag=$1 k line
    for k in "${SIG_PIDS[@]}"; do kill -TERM "$k" 2>/dev/null; done
    for k in "${SIG_PIDS[@]}"; do stop_wait "$k" 20; done
    RX_ERRORS=0 INTRO_FAIL=0
    for k in $(seq 0 $((SIG_PROCS - 1))); do
        line=$(grep event=stats "$WORK/signers.$tag.$k.out" | tail -1)
        RX_ERRORS=$((RX_ERRORS + $(field "$line" rx_errors)))
        INTRO_FAIL=$((INTRO_FAIL + $(field "$line" intro_failures)))
    done
}

# run_requester PORT [bench_requester options...]: the requests, on the control listener at
# PORT, for --warmup + -d seconds (with AUX=1 and --smoke: 0.2 + 0.5); prints the requester's
# line.
run_requester() {
    local port=$1 verify= tmo= d=$D w=$WARMUP
    shift
    # The load after the daemon's own is run with AUX=1.
    [ -n "${AUX:-}" ] && [ -n "$AUX_D" ] && d=$AUX_D w=$AUX_WARMUP
    # Answers from the io and JS stand-ins carry no signature to verify (NOVERIFY=1).
    [ "$SMOKE" = 1 ] && [ -z "${NOVERIFY:-}" ] && verify=--verify
    [ "$TIMEOUT_MS" != 0 ] && tmo="--timeout-ms $TIMEOUT_MS"
    "$TOOLS/bench_requester" --port "$port" -c "$C" -d "$d" --warmup "$w" \
        --keys "$N" --msg-bytes "$MSG_BYTES" $tmo $verify "$@" || die "bench_requester failed"
}

# The payload sizes of the two WebSocket frames of one signature with MSG_BYTES of message:
# the daemon's sign_request (its fixed fields, a UUID, the message's base64 and a 13-digit
# expires_at) and bench_signers' sign_response (the same plus a signature's base64).
MSG_B64=$(( (MSG_BYTES + 2) / 3 * 4 ))
REQ_FRAME=$((115 + MSG_B64)) ANS_FRAME=$((192 + MSG_B64))

# io_floor_run TAG RESP_BYTES RATE: the I/O floor. io_floor and N io_peer connections take
# the daemon's place under the same requester load (closed loop, C connections); sets IO_OUT
# (the requester's line, with io_floor's CPU per round trip) and IO_FLOOR. Then the same at
# the daemon's RATE, open loop, since fewer round trips per second share fewer wake-ups:
# IO_RATE_OUT and IO_FLOOR_AT_RATE. With --latency, also open loop at half of RATE, the
# latency of the transport alone at the goal's rate: IO_OPEN50_OUT.
io_floor_run() {
    local tag=$1 resp=$2 rate=$3 pid ppid ctl ws i
    "$TOOLS/io_floor" --req-frame "$REQ_FRAME" --ans-frame "$ANS_FRAME" --resp-bytes "$resp" \
        >"$WORK/io_floor.$tag.out" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_lines "$WORK/io_floor.$tag.out" event=listening 1 10 || die "io_floor did not start"
    ctl=$(field "$(head -1 "$WORK/io_floor.$tag.out")" ctl_port)
    ws=$(field "$(head -1 "$WORK/io_floor.$tag.out")" ws_port)
    "$TOOLS/io_peer" --port "$ws" --count "$N" --ans-frame "$ANS_FRAME" --inflight "$INFLIGHT" \
        >"$WORK/io_peer.$tag.out" 2>&1 &
    ppid=$!
    PIDS+=("$ppid")
    wait_lines "$WORK/io_peer.$tag.out" event=ready 1 $((30 + N / 200)) ||
        die "io_peer did not connect: $(tail -3 "$WORK/io_peer.$tag.out")"
    sleep "$SETTLE"
    IO_OUT=$(AUX=1 NOVERIFY=1 run_requester "$ctl" --daemon-pid "$pid") || exit 1
    IO_RATE_OUT=$(AUX=1 NOVERIFY=1 run_requester "$ctl" --daemon-pid "$pid" --rate "$rate") ||
        exit 1
    if [ "$LATENCY" = 1 ]; then
        IO_OPEN50_OUT=$(AUX=1 NOVERIFY=1 run_requester "$ctl" --daemon-pid "$pid" \
            --rate "$(awk -v r="$rate" 'BEGIN { printf "%.1f", r / 2 }')") || exit 1
    fi
    for i in "$ppid" "$pid"; do
        kill -TERM "$i" 2>/dev/null
        stop_wait "$i" 10
        [ "$DRC" = 0 ] || { echo "run.sh: io floor process exited $DRC" >&2; FAILED=1; }
    done
    IO_FLOOR=$(field "$IO_OUT" cpu_us_per_req)
    IO_FLOOR_AT_RATE=$(field "$IO_RATE_OUT" cpu_us_per_req)
}

# open_loop_runs MAX_RPS: open-loop load on the run's daemon at 25, 50 and 75 % of MAX_RPS
# (-d seconds each after --warmup); sets OPEN_FIELDS (summary fields) and OPEN_LINES.
open_loop_runs() {
    local max=$1 pct rate out watch=() p
    # The signers' CPU per sign is printed apart (watch_cpu_us_per_req): with the daemon's,
    # it tells how much of the 2 cores the load itself took at each rate.
    for p in "${SIG_PIDS[@]}"; do watch+=(--watch-pid "$p"); done
    OPEN_FIELDS=" max_rps=$max" OPEN_LINES=()
    for pct in 25 50 75; do
        rate=$(awk -v m="$max" -v p="$pct" 'BEGIN { printf "%.1f", m * p / 100 }')
        out=$(AUX=1 run_requester "$CTL_PORT" --daemon-pid "$DPID" --rate "$rate" "${watch[@]}") ||
            exit 1
        OPEN_FIELDS="$OPEN_FIELDS open${pct}_rate=$rate open${pct}_rps=$(field "$out" rps)"
        OPEN_FIELDS="$OPEN_FIELDS open${pct}_p50_ms=$(field "$out" p50_ms) open${pct}_p99_ms=$(field "$out" p99_ms)"
        OPEN_FIELDS="$OPEN_FIELDS open${pct}_p999_ms=$(field "$out" p999_ms)"
        OPEN_FIELDS="$OPEN_FIELDS open${pct}_cpu_us_per_sign=$(field "$out" cpu_us_per_req)"
        OPEN_LINES+=("  open loop at $pct %: $out")
    done
}

# js_run TAG RUNTIME CMD: bench/js-peer/server.mjs on CMD (node or bun) with N signers and
# the requester's load; sets JS_OUT (the requester's line, with the server's CPU per sign)
# and JS_RX_ERRORS (the signers' unexpected frames).
js_run() {
    local tag=$1.$2 rt=$2 cmd=$3 pid ctl ws
    "$cmd" "$JS_DIR/server.mjs" --ws-port 0 --ctl-port 0 >"$WORK/js.$tag.out" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_lines "$WORK/js.$tag.out" event=listening 1 20 ||
        die "$rt server.mjs did not start: $(tail -3 "$WORK/js.$tag.out")"
    ctl=$(field "$(grep event=listening "$WORK/js.$tag.out")" ctl_port)
    ws=$(field "$(grep event=listening "$WORK/js.$tag.out")" ws_port)
    start_signers "$tag" "$ws"
    sleep "$SETTLE"
    JS_OUT=$(AUX=1 run_requester "$ctl" --daemon-pid "$pid") || exit 1
    stop_signers "$tag"
    JS_RX_ERRORS=$RX_ERRORS
    kill -TERM "$pid" 2>/dev/null
    stop_wait "$pid" 10
}

# start_front LOG: haproxy terminating TLS on a free loopback port (FRONT_PORT) and passing
# the bytes to the daemon's ws:// listener; one thread, TCP mode, TLS 1.2+. Sets FRONT_PID.
start_front() {
    local log=$1 i
    FRONT_PORT=$(free_port) || die "no free port"
    cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/front.pem"
    chmod 600 "$WORK/front.pem"
    cat >"$WORK/haproxy.cfg" <<EOF
global
    maxconn $((N + C + 100))
    nbthread 1
    ssl-default-bind-options ssl-min-ver TLSv1.2
defaults
    mode tcp
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend signers
    bind 127.0.0.1:$FRONT_PORT ssl crt $WORK/front.pem alpn http/1.1
    default_backend wssignd
backend wssignd
    server wssignd 127.0.0.1:$WS_PORT
EOF
    "$HAPROXY" -f "$WORK/haproxy.cfg" -db >"$log" 2>&1 &
    FRONT_PID=$!
    PIDS+=("$FRONT_PID")
    for i in $(seq 1 200); do
        kill -0 "$FRONT_PID" 2>/dev/null || die "haproxy exited: $(tail -5 "$log")"
        (exec 3<>"/dev/tcp/127.0.0.1/$FRONT_PORT") 2>/dev/null && return 0
        sleep 0.05
    done
    die "haproxy did not listen: $(tail -5 "$log")"
}

# One measurement; prints its summary line and sets FAILED on functional errors.
run_once() {
    local run=$1 k ms req_out
    WS_PORT=$(free_port) && CTL_PORT=$(free_port) || die "no free port"
    [ "$WS_PORT" = "$CTL_PORT" ] && CTL_PORT=$(free_port)
    write_config

    local floor_line floor
    floor_line=$(verify_floor) || exit 1
    floor=$(field "$floor_line" verify_floor_us)

    start_daemon "$WORK/daemon.$run.log"
    sleep "$SETTLE"
    local rss_idle sig_port=$WS_PORT front_idle=0 front=
    rss_idle=$(rss_kib "$DPID")
    if [ "$TLS_FRONT" = 1 ]; then
        start_front "$WORK/haproxy.$run.log"
        sig_port=$FRONT_PORT
        sleep 0.5
        front_idle=$(rss_kib "$FRONT_PID")
    fi

    start_signers "$run" "$sig_port"
    sleep "$SETTLE"
    local rss_n per_conn
    rss_n=$(rss_kib "$DPID")
    per_conn=$(awk -v a="$rss_n" -v b="$rss_idle" -v n="$N" 'BEGIN { printf "%.2f", (a - b) / n }')
    if [ "$TLS_FRONT" = 1 ]; then
        local front_n front_per
        front_n=$(rss_kib "$FRONT_PID")
        front_per=$(awk -v a="$front_n" -v b="$front_idle" -v n="$N" 'BEGIN { printf "%.2f", (a - b) / n }')
        front=" front_rss_idle_kib=$front_idle front_rss_n_kib=$front_n front_rss_per_conn_kib=$front_per total_rss_per_conn_kib=$(awk -v a="$front_per" -v b="$per_conn" 'BEGIN { printf "%.2f", a + b }')"
    fi

    local storm=
    if [ "$STORM_CUT" = 1 ]; then
        storm_cut "$run"
        storm=$STORM_LINE
    elif [ "$STORM" = 1 ]; then
        stop_daemon
        [ "$DRC" = 0 ] || { echo "run.sh: daemon exited $DRC on SIGTERM" >&2; FAILED=1; }
        start_daemon "$WORK/daemon.$run.restart.log"
        local storm_ms=0 storm_ready=0 storm_err=0 l t e
        for k in $(seq 0 $((SIG_PROCS - 1))); do
            wait_lines "$WORK/signers.$run.$k.out" 'event=reintroduced' 1 $((30 + N / 200)) ||
                die "signers $k did not all reconnect"
            l=$(grep event=reintroduced "$WORK/signers.$run.$k.out" | tail -1)
            ms=$(field "$l" ms)
            t=$(( $(field "$l" t_unix_ms) - READY_MS ))
            e=$(field "$l" errors_while_up)
            storm_ms=$(awk -v a="$storm_ms" -v b="$ms" 'BEGIN { print (b > a ? b : a) }')
            storm_ready=$(( t > storm_ready ? t : storm_ready ))
            storm_err=$((storm_err + e))
        done
        # The restarted daemon's CPU time so far: its start plus the whole storm.
        storm=" storm_ms=$storm_ms storm_since_ready_ms=$storm_ready storm_failed_handshakes=$storm_err storm_daemon_cpu_ms=$(cpu_ms "$DPID")"
        [ "$storm_err" = 0 ] || FAILED=1
    fi

    req_out=$(run_requester "$CTL_PORT" --daemon-pid "$DPID") || exit 1
    local latency=
    [ "$LATENCY" = 1 ] && open_loop_runs "$(field "$req_out" rps)" && latency=$OPEN_FIELDS
    stop_signers "$run"
    local rx_errors=$RX_ERRORS intro_fail=$INTRO_FAIL intro_ms=$INTRO_MS
    stop_daemon
    [ "$DRC" = 0 ] || { echo "run.sh: daemon exited $DRC on SIGTERM" >&2; FAILED=1; }

    # wss: what OpenSSL alone keeps per idle server connection, measured in the same run.
    local tls_floor=
    if [ "$TLS" = 1 ]; then
        tls_floor=$("$TOOLS/tls_floor" -c "$WORK/cert.pem" -k "$WORK/key.pem") || die "tls_floor failed"
        tls_floor=" tls_floor_kib=$(field "$tls_floor" tls_floor_kib)$front"
    fi

    # The I/O floor under the same load, right after.
    io_floor_run "$run" "$(field "$req_out" resp_bytes)" "$(field "$req_out" rps)"
    if [ "$LATENCY" = 1 ]; then
        latency="$latency io_open50_p50_ms=$(field "$IO_OPEN50_OUT" p50_ms)"
        latency="$latency io_open50_p99_ms=$(field "$IO_OPEN50_OUT" p99_ms)"
        latency="$latency io_open50_p999_ms=$(field "$IO_OPEN50_OUT" p999_ms)"
        OPEN_LINES+=("  io_floor open loop at 50 %: $IO_OPEN50_OUT")
    fi
    # The JavaScript implementation on Node and on Bun under the same load.
    local js= js_lines=()
    if [ "$JS" = 1 ]; then
        local rt cmd js_cpu
        for rt in node bun; do
            cmd=$NODE
            if [ "$rt" = bun ]; then
                cmd=$BUN
                [ -n "$cmd" ] || { js="$js bun_cpu_us_per_sign=na cpu_vs_bun=na"; continue; }
            fi
            js_run "$run" "$rt" "$cmd"
            js_cpu=$(field "$JS_OUT" cpu_us_per_req)
            js="$js ${rt}_rps=$(field "$JS_OUT" rps) ${rt}_p99_ms=$(field "$JS_OUT" p99_ms) ${rt}_cpu_us_per_sign=$js_cpu"
            js="$js $(awk -v a="$(field "$req_out" cpu_us_per_req)" -v b="$js_cpu" -v rt="$rt" \
                'BEGIN { printf "cpu_vs_%s=%.2f", rt, (b > 0 ? a / b : 0) }')"
            js_lines+=("  $rt: $JS_OUT")
            [ "$SMOKE" = 1 ] && smoke_check "$rt: " "$JS_OUT" "$JS_RX_ERRORS"
        done
    fi

    local cpu ratio floors floors_rate
    cpu=$(field "$req_out" cpu_us_per_req)
    ratio=$(awk -v a="$cpu" -v b="$floor" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    floors=$(awk -v a="$cpu" -v b="$floor" -v c="$IO_FLOOR" \
        'BEGIN { printf "%.2f", (b + c > 0 ? a / (b + c) : 0) }')
    floors_rate=$(awk -v a="$cpu" -v b="$floor" -v c="$IO_FLOOR_AT_RATE" \
        'BEGIN { printf "%.2f", (b + c > 0 ? a / (b + c) : 0) }')
    local transport=ws
    [ "$TLS" = 1 ] && transport=wss
    [ "$TLS_FRONT" = 1 ] && transport=wss-haproxy
    printf 'summary run=%s transport=%s n=%s c=%s d=%s rps=%s requests=%s non200=%s p50_ms=%s p90_ms=%s p99_ms=%s cpu_us_per_sign=%s verify_floor_us=%s io_floor_us=%s cpu_ratio=%s cpu_vs_floors=%s io_floor_rps=%s io_floor_at_rate_us=%s cpu_vs_floors_at_rate=%s rss_idle_kib=%s rss_n_kib=%s rss_per_conn_kib=%s%s intro_ms=%s%s%s%s signer_rx_errors=%s intro_failures=%s\n' \
        "$run" "$transport" "$N" "$C" "$D" "$(field "$req_out" rps)" "$(field "$req_out" requests)" \
        "$(field "$req_out" non200)" "$(field "$req_out" p50_ms)" "$(field "$req_out" p90_ms)" \
        "$(field "$req_out" p99_ms)" "$cpu" "$floor" "$IO_FLOOR" "$ratio" "$floors" \
        "$(field "$IO_OUT" rps)" "$IO_FLOOR_AT_RATE" "$floors_rate" "$rss_idle" "$rss_n" "$per_conn" \
        "$tls_floor" "$intro_ms" "$storm" "$latency" "$js" "$rx_errors" "$intro_fail" |
        tee -a "$WORK/summaries"
    echo "  requester: $req_out"
    [ -n "$latency" ] && printf '%s\n' "${OPEN_LINES[@]}"
    echo "  io_floor: $IO_OUT"
    echo "  io_floor at the daemon's rate: $IO_RATE_OUT"
    [ ${#js_lines[@]} -gt 0 ] && printf '%s\n' "${js_lines[@]}"
    echo "  verify_floor: $floor_line"

    if [ "$SMOKE" = 1 ]; then
        smoke_check "" "$req_out" "$rx_errors"
        smoke_check "io floor: " "$IO_OUT" 0
        smoke_check "io floor at a rate: " "$IO_RATE_OUT" 0
        [ "$LATENCY" = 1 ] && for l in "${OPEN_LINES[@]}"; do smoke_check "open loop: " "$l" 0; done
    fi
}

# metric NAME: one sample's value from the daemon's /metrics (0 if absent).
metric() {
    http_get "$CTL_PORT" /metrics | awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }'
}

# storm_cut RUN: SIGHUP (tickets must survive it), then every signer process cuts all its
# connections at once and they reconnect. Sets STORM_LINE: the time from the first cut to
# the last re-introduction, failed handshakes, resumed ones (as the signers and the daemon
# count them) and the daemon's CPU time over the storm alone. With --smoke, sets FAILED
# unless all reconnected without a failure and, with --resume, every one was resumed.
storm_cut() {
    local run=$1 k l cut_ms=0 t end_ms=0 storm_err=0 resumed=0 cpu0 d_res0 d_full0
    local mark
    mark=$(metric wssignd_config_last_reload_success_timestamp_seconds)
    kill -HUP "$DPID"
    for k in $(seq 1 100); do
        [ "$(metric wssignd_config_last_reload_success_timestamp_seconds)" != "$mark" ] && break
        sleep 0.05
    done
    [ "$(metric wssignd_config_last_reload_successful)" = 1 ] || die "the reload before the storm failed"
    d_res0=$(metric 'wssignd_tls_handshakes_total{resumed="true"}')
    d_full0=$(metric 'wssignd_tls_handshakes_total{resumed="false"}')
    cpu0=$(cpu_ms "$DPID")
    for k in "${SIG_PIDS[@]}"; do kill -USR1 "$k"; done
    for k in $(seq 0 $((SIG_PROCS - 1))); do
        wait_lines "$WORK/signers.$run.$k.out" 'event=reintroduced' 1 $((30 + N / 200)) ||
            die "signers $k did not all reconnect"
        t=$(field "$(grep event=cut "$WORK/signers.$run.$k.out" | tail -1)" t_unix_ms)
        [ "$cut_ms" = 0 ] || [ "$t" -lt "$cut_ms" ] && cut_ms=$t
        l=$(grep event=reintroduced "$WORK/signers.$run.$k.out" | tail -1)
        t=$(field "$l" t_unix_ms)
        [ "$t" -gt "$end_ms" ] && end_ms=$t
        storm_err=$((storm_err + $(field "$l" errors_while_up)))
        resumed=$((resumed + $(field "$l" resumed)))
    done
    local cpu=$(( $(cpu_ms "$DPID") - cpu0 ))
    local d_res=$(( $(metric 'wssignd_tls_handshakes_total{resumed="true"}') - d_res0 ))
    local d_full=$(( $(metric 'wssignd_tls_handshakes_total{resumed="false"}') - d_full0 ))
    STORM_LINE=" storm_ms=$((end_ms - cut_ms)) storm_failed_handshakes=$storm_err storm_resumed=$resumed storm_daemon_resumed=$d_res storm_daemon_full=$d_full storm_daemon_cpu_ms=$cpu"
    [ "$storm_err" = 0 ] || FAILED=1
    if [ "$SMOKE" = 1 ] && [ "$RESUME" = 1 ] && { [ "$resumed" != "$N" ] || [ "$d_res" -lt "$N" ]; }; then
        echo "run.sh: $resumed of $N signers (daemon: $d_res) resumed their TLS session" >&2
        FAILED=1
    fi
}

# The verify floor's line (fewer iterations with --smoke).
verify_floor() {
    local iters=5000
    [ "$SMOKE" = 1 ] && iters=500
    "$TOOLS/verify_floor" -m "$MSG_BYTES" -i "$iters" || die "verify_floor failed"
}

# smoke_check WHAT REQUESTER_LINE RX_ERRORS: sets FAILED unless requests completed, every
# one got 200 with a signature that verifies, and the signers saw no unexpected frame.
smoke_check() {
    local what=$1 reqs non200
    reqs=$(field "$2" requests)
    non200=$(field "$2" non200)
    [ "${reqs:-0}" -gt 0 ] || { echo "run.sh: ${what}no request completed" >&2; FAILED=1; }
    [ "${non200:-1}" = 0 ] || { echo "run.sh: ${what}$non200 requests did not get 200" >&2; FAILED=1; }
    [ "$3" = 0 ] || { echo "run.sh: ${what}signers saw $3 unexpected frames" >&2; FAILED=1; }
}

# ---- --cluster ----

redis_cmd() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@" 2>/dev/null; }

# start_redis LOG: a redis-server on a free loopback port, without persistence; sets
# REDIS_PORT and REDIS_PID.
start_redis() {
    local log=$1 i
    REDIS_PORT=$(free_port) || die "no free port"
    "$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        >"$log" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
    for i in $(seq 1 200); do
        kill -0 "$REDIS_PID" 2>/dev/null || die "redis-server exited: $(tail -5 "$log")"
        [ "$(redis_cmd PING)" = PONG ] && return 0
        sleep 0.05
    done
    die "redis-server did not get ready: $(tail -5 "$log")"
}

# A cluster node's section: the run's Redis, the shared secret, node id $1.
cluster_section() {
    printf ',\n  "cluster": {"redis": "redis://127.0.0.1:%s", "secret_file": "%s", "node_id": "%s"}' \
        "$REDIS_PORT" "$WORK/cluster.secret" "$1"
}

# cluster_metric PORT NAME: the value of one sample of the node's /metrics (0 if absent).
cluster_metric() {
    http_get "$1" /metrics | awk -v n="$2" '$1 == n { v = $2 } END { print v + 0 }'
}

# wait_cluster_up PORT LOG: waits until the node on control PORT reaches Redis.
wait_cluster_up() {
    local i
    for i in $(seq 1 200); do
        [ "$(cluster_metric "$1" wssignd_cluster_up)" = 1 ] && return 0
        sleep 0.05
    done
    die "node on control port $1 did not reach Redis: $(tail -5 "$2")"
}

# Waits until Redis has COUNT key channels subscribed (the signers' keys held on node A).
wait_key_channels() {
    local count=$1 i
    for i in $(seq 1 $(((30 + N / 100) * 20))); do
        [ "$(redis_cmd PUBSUB CHANNELS 'wssign:k:*' | grep -c .)" -ge "$count" ] && return 0
        sleep 0.05
    done
    die "Redis holds $(redis_cmd PUBSUB CHANNELS 'wssign:k:*' | grep -c .) key channels, not $count"
}

# One --cluster measurement: the same load on one daemon alone, then across two nodes.
run_cluster_once() {
    local run=$1 floor_line floor single_out req_out
    floor_line=$(verify_floor) || exit 1
    floor=$(field "$floor_line" verify_floor_us)

    # One daemon alone: signers and requests on it, exactly as without --cluster.
    WS_PORT=$(free_port) && CTL_PORT=$(free_port) || die "no free port"
    [ "$WS_PORT" = "$CTL_PORT" ] && CTL_PORT=$(free_port)
    write_config "$WORK/single.json"
    start_daemon "$WORK/daemon.$run.single.log" "$WORK/single.json" "$CTL_PORT"
    start_signers "$run.single" "$WS_PORT"
    sleep 1
    single_out=$(run_requester "$CTL_PORT" --daemon-pid "$DPID") || exit 1
    stop_signers "$run.single"
    local single_rx=$RX_ERRORS single_intro_fail=$INTRO_FAIL
    stop_daemon
    [ "$DRC" = 0 ] || { echo "run.sh: daemon exited $DRC on SIGTERM" >&2; FAILED=1; }

    # Two nodes sharing a Redis: signers on A, requests to B.
    start_redis "$WORK/redis.$run.log"
    (umask 077 && head -c 32 /dev/urandom | base64 >"$WORK/cluster.secret")
    local a_ws a_ctl b_ws b_ctl pid_a pid_b
    read -r a_ws a_ctl b_ws b_ctl < <(free_ports 4 "$REDIS_PORT") || die "no free port"
    WS_PORT=$a_ws CTL_PORT=$a_ctl write_config "$WORK/node-a.json" "$(cluster_section bench-a)"
    WS_PORT=$b_ws CTL_PORT=$b_ctl write_config "$WORK/node-b.json" "$(cluster_section bench-b)"
    start_daemon "$WORK/node-a.$run.log" "$WORK/node-a.json" "$a_ctl"
    pid_a=$DPID
    start_daemon "$WORK/node-b.$run.log" "$WORK/node-b.json" "$b_ctl"
    pid_b=$DPID
    wait_cluster_up "$a_ctl" "$WORK/node-a.$run.log"
    wait_cluster_up "$b_ctl" "$WORK/node-b.$run.log"
    start_signers "$run.cluster" "$a_ws"
    wait_key_channels "$N"
    sleep 1
    req_out=$(run_requester "$b_ctl" --daemon-pid "$pid_a" --daemon-pid "$pid_b" \
        --watch-pid "$REDIS_PID") || exit 1
    local remote_ok dropped=0 port reason pid
    remote_ok=$(cluster_metric "$b_ctl" 'wssignd_cluster_remote_requests_total{outcome="ok"}')
    for port in "$a_ctl" "$b_ctl"; do
        for reason in bad_tag bad_format replay; do
            dropped=$((dropped + $(cluster_metric "$port" \
                "wssignd_cluster_dropped_messages_total{reason=\"$reason\"}")))
        done
    done
    stop_signers "$run.cluster"
    for pid in "$pid_b" "$pid_a"; do
        stop_daemon "$pid"
        [ "$DRC" = 0 ] || { echo "run.sh: node exited $DRC on SIGTERM" >&2; FAILED=1; }
    done
    stop_daemon "$REDIS_PID"

    # Per sign: both nodes summed, each node, Redis apart; then against the single daemon.
    local cpu each single_cpu
    cpu=$(field "$req_out" cpu_us_per_req)
    each=$(field "$req_out" cpu_us_per_req_each)
    single_cpu=$(field "$single_out" cpu_us_per_req)
    local transport=ws
    [ "$TLS" = 1 ] && transport=wss
    awk -v run="$run" -v tr="$transport" -v n="$N" -v c="$C" -v d="$D" \
        -v rps="$(field "$req_out" rps)" -v reqs="$(field "$req_out" requests)" \
        -v non200="$(field "$req_out" non200)" -v p50="$(field "$req_out" p50_ms)" \
        -v p90="$(field "$req_out" p90_ms)" -v p99="$(field "$req_out" p99_ms)" \
        -v s_rps="$(field "$single_out" rps)" -v s_reqs="$(field "$single_out" requests)" \
        -v s_non200="$(field "$single_out" non200)" -v s_p50="$(field "$single_out" p50_ms)" \
        -v s_p90="$(field "$single_out" p90_ms)" -v s_p99="$(field "$single_out" p99_ms)" \
        -v cpu="$cpu" -v each="$each" -v s_cpu="$single_cpu" \
        -v redis="$(field "$req_out" watch_cpu_us_per_req)" -v floor="$floor" \
        -v remote_ok="$remote_ok" -v dropped="$dropped" -v intro="$INTRO_MS" \
        -v rx="$((single_rx + RX_ERRORS))" -v ifail="$((single_intro_fail + INTRO_FAIL))" 'BEGIN {
        split(each, e, ",")
        printf "summary run=%s mode=cluster transport=%s n=%s c=%s d=%s", run, tr, n, c, d
        printf " rps=%s requests=%s non200=%s p50_ms=%s p90_ms=%s p99_ms=%s", rps, reqs, non200, p50, p90, p99
        printf " single_rps=%s single_requests=%s single_non200=%s", s_rps, s_reqs, s_non200
        printf " single_p50_ms=%s single_p90_ms=%s single_p99_ms=%s", s_p50, s_p90, s_p99
        printf " added_p50_ms=%.3f", p50 - s_p50
        printf " cpu_us_per_sign=%s node_a_cpu_us_per_sign=%s node_b_cpu_us_per_sign=%s", cpu, e[1], e[2]
        printf " single_cpu_us_per_sign=%s cpu_vs_single=%.3f added_cpu_pct=%.1f", s_cpu,
            (s_cpu > 0 ? cpu / s_cpu : 0), (s_cpu > 0 ? (cpu / s_cpu - 1) * 100 : 0)
        printf " redis_cpu_us_per_sign=%s verify_floor_us=%s cpu_ratio=%.2f single_cpu_ratio=%.2f", redis,
            floor, (floor > 0 ? cpu / floor : 0), (floor > 0 ? s_cpu / floor : 0)
        printf " remote_ok=%s dropped_messages=%s intro_ms=%s signer_rx_errors=%s intro_failures=%s\n",
            remote_ok, dropped, intro, rx, ifail
    }' | tee -a "$WORK/summaries"
    echo "  single: $single_out"
    echo "  cluster: $req_out"
    echo "  verify_floor: $floor_line"

    if [ "$SMOKE" = 1 ]; then
        smoke_check "one daemon: " "$single_out" "$single_rx"
        smoke_check "cluster: " "$req_out" "$RX_ERRORS"
        # Every signature crossed nodes: B answered them all through A.
        [ "${remote_ok:-0}" -ge "$(field "$req_out" requests)" ] ||
            { echo "run.sh: cluster: node B answered $remote_ok requests through node A" >&2; FAILED=1; }
        [ "$dropped" = 0 ] || { echo "run.sh: cluster: $dropped messages dropped" >&2; FAILED=1; }
    fi
}

echo "# wssignd bench $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -n) $(nproc) cpus" \
    "nofile=$NOFILE daemon=$DAEMON"
probe_limits
FAILED=0
: >"$WORK/summaries"
for r in $(seq 1 "$RUNS"); do
    if [ "$CLUSTER" = 1 ]; then
        run_cluster_once "$r"
    else
        run_once "$r"
    fi
done

if [ "$RUNS" -gt 1 ]; then
    # The median of every numeric field over the runs.
    awk '{
        for (i = 2; i <= NF; i++) {
            split($i, kv, "="); key[i] = kv[1]; v[i, NR] = kv[2]
        }
        nf = NF; n = NR
    } END {
        line = "median runs=" n
        for (i = 3; i <= nf; i++) {
            if (key[i] ~ /^(mode|transport|n|c|d)$/) { line = line " " key[i] "=" v[i, 1]; continue }
            m = 0
            for (j = 1; j <= n; j++) a[j] = v[i, j] + 0
            for (x = 1; x <= n; x++)
                for (y = x + 1; y <= n; y++)
                    if (a[y] < a[x]) { t = a[x]; a[x] = a[y]; a[y] = t }
            line = line " " key[i] "=" a[int((n + 1) / 2)]
        }
        print line
    }' "$WORK/summaries"
fi
[ "$(grep -c '^summary' "$WORK/summaries")" = "$RUNS" ] || FAILED=1
exit "$FAILED"
