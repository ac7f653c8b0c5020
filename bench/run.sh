#!/bin/bash
# Runs one whole wssignd measurement and prints one summary line per run (and
# a line of medians when --runs > 1). Starts a daemon on free loopback ports
# with the open-file limit raised, measures its idle RSS, introduces N signers
# (bench_signers), measures its RSS again, optionally restarts it to time a
# reconnect storm, then drives POST /v1/sign with C keep-alive connections for
# D seconds (bench_requester) while reading the daemon's CPU time from
# /proc/PID/stat. Everything it starts is stopped on exit. See README.md.
set -u -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
N=1000 C=64 D=10 WARMUP=1 RUNS=1 TLS=0 STORM=0 SMOKE=0
SILENT=0 REJECT=0 BAD_SIG=0 TIMEOUT_MS=0 MSG_BYTES=32 INFLIGHT=256 VERIFY_THREADS=
PER_PROC=10000 KEEP= DAEMON= TOOLS= LOG_LEVEL=warn

usage() {
    cat <<EOF
usage: $0 [options]
  -n N             signer connections (default $N)
  -c C             concurrent HTTP keep-alive connections (default $C)
  -d D             measured seconds (default $D), after --warmup S (default $WARMUP)
  --runs R         repeat the whole measurement R times and print medians
  --tls            signer listener over wss:// (self-signed certificate)
  --storm          restart the daemon once all are introduced; time the reconnect storm
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
  --smoke          N=20 C=4 D=2: a functional check; exits 1 unless every request got 200
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
    -h | --help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
if [ "$SMOKE" = 1 ]; then
    N=20 C=4 D=2 WARMUP=0.5 RUNS=1
fi

DAEMON=${DAEMON:-$HERE/../build/wssignd}
if [ -z "$TOOLS" ]; then
    for t in "$HERE/../build/bench" "$HERE/build"; do
        [ -x "$t/bench_signers" ] && TOOLS=$t && break
    done
fi
for bin in "$DAEMON" "$TOOLS/bench_signers" "$TOOLS/bench_requester" "$TOOLS/verify_floor"; do
    if [ ! -x "$bin" ]; then
        echo "run.sh: $bin not found; build the project and bench/ first (or pass --daemon/--tools)" >&2
        exit 2
    fi
done

WORK=${KEEP:-$(mktemp -d /tmp/wssignd-bench.XXXXXX)}
mkdir -p "$WORK"
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

start_daemon() {
    local log=$1
    : >"$log"
    "$DAEMON" -c "$WORK/wssignd.json" 2>"$log" &
    DPID=$!
    PIDS+=("$DPID")
    # event=ready is a notice line, hidden at the default bench log level (warn):
    # ready means /healthz answers on the control listener.
    local i
    for i in $(seq 1 300); do
        kill -0 "$DPID" 2>/dev/null || die "daemon exited: $(tail -5 "$log")"
        if (exec 3<>"/dev/tcp/127.0.0.1/$CTL_PORT" &&
            printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3 &&
            head -1 <&3) 2>/dev/null | grep -q ' 200'; then
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

stop_daemon() {
    kill -TERM "$DPID" 2>/dev/null
    stop_wait "$DPID" 30
}

# key=value lookup in a line.
field() { sed -n "s/.*[ ^]$2=\([^ ]*\).*/\1/p" <<<" $1" | head -1; }

write_config() {
    local tls=
    if [ "$TLS" = 1 ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
            -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
            -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 || die "openssl failed"
        chmod 600 "$WORK/key.pem"
        tls=$(printf ',\n  "tls": {"cert": "%s", "key": "%s"}' "$WORK/cert.pem" "$WORK/key.pem")
    fi
    local per_key=$(( (C / N) + 64 )) vt=
    [ -n "$VERIFY_THREADS" ] && vt=", \"verify_threads\": $VERIFY_THREADS"
    cat >"$WORK/wssignd.json" <<EOF
{
  "listen": "127.0.0.1:$WS_PORT",
  "control": {"listen": "127.0.0.1:$CTL_PORT"},
  "requests": {"max_pending": 200000, "max_pending_per_key": $per_key,
               "default_timeout_ms": 10000$vt},
  "introduction": {"timeout_ms": 60000},
  "log_level": "$LOG_LEVEL"$tls$LIMITS
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

# One measurement; prints its summary line and sets FAILED on functional errors.
run_once() {
    local run=$1 k procs first count sig_out req_out line
    WS_PORT=$(free_port) && CTL_PORT=$(free_port) || die "no free port"
    [ "$WS_PORT" = "$CTL_PORT" ] && CTL_PORT=$(free_port)
    write_config

    local floor_line
    local vf_iters=5000
    [ "$SMOKE" = 1 ] && vf_iters=500
    floor_line=$("$TOOLS/verify_floor" -m "$MSG_BYTES" -i "$vf_iters") || die "verify_floor failed"
    local floor
    floor=$(field "$floor_line" verify_floor_us)

    start_daemon "$WORK/daemon.$run.log"
    sleep 0.5
    local rss_idle
    rss_idle=$(rss_kib "$DPID")

    # Signers: several processes when N exceeds --per-proc.
    procs=$(( (N + PER_PROC - 1) / PER_PROC ))
    local life
    life=$(awk -v w="$WARMUP" -v d="$D" -v n="$N" 'BEGIN { print int(w + d + n / 200 + 120) }')
    local tls_flag=
    [ "$TLS" = 1 ] && tls_flag=--tls
    SIG_PIDS=()
    for k in $(seq 0 $((procs - 1))); do
        first=$((k * PER_PROC))
        count=$(( N - first < PER_PROC ? N - first : PER_PROC ))
        sig_out="$WORK/signers.$run.$k.out"
        "$TOOLS/bench_signers" --port "$WS_PORT" $tls_flag --first "$first" --count "$count" \
            --inflight "$INFLIGHT" --duration "$life" --silent "$SILENT" --reject "$REJECT" \
            --bad-sig "$BAD_SIG" >"$sig_out" 2>"$WORK/signers.$run.$k.err" &
        SIG_PIDS+=($!)
        PIDS+=($!)
    done
    local intro_ms=0 ms
    for k in $(seq 0 $((procs - 1))); do
        wait_lines "$WORK/signers.$run.$k.out" 'event=introduced' 1 $((60 + N / 100)) ||
            die "signers $k did not all introduce: $(tail -n 3 "$WORK/signers.$run.$k.out" "$WORK/signers.$run.$k.err")"
        ms=$(field "$(grep event=introduced "$WORK/signers.$run.$k.out")" ms)
        intro_ms=$(awk -v a="$intro_ms" -v b="$ms" 'BEGIN { print (b > a ? b : a) }')
    done
    sleep 1
    local rss_n per_conn
    rss_n=$(rss_kib "$DPID")
    per_conn=$(awk -v a="$rss_n" -v b="$rss_idle" -v n="$N" 'BEGIN { printf "%.2f", (a - b) / n }')

    local storm=
    if [ "$STORM" = 1 ]; then
        stop_daemon
        [ "$DRC" = 0 ] || { echo "run.sh: daemon exited $DRC on SIGTERM" >&2; FAILED=1; }
        start_daemon "$WORK/daemon.$run.restart.log"
        local storm_ms=0 storm_ready=0 storm_err=0 l t e
        for k in $(seq 0 $((procs - 1))); do
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

    local verify=
    [ "$SMOKE" = 1 ] && verify=--verify
    local tmo=
    [ "$TIMEOUT_MS" != 0 ] && tmo="--timeout-ms $TIMEOUT_MS"
    req_out=$("$TOOLS/bench_requester" --port "$CTL_PORT" -c "$C" -d "$D" --warmup "$WARMUP" \
        --keys "$N" --msg-bytes "$MSG_BYTES" --daemon-pid "$DPID" $tmo $verify) ||
        die "bench_requester failed"

    # Stop the signers; each prints its counters on the way out.
    for k in "${SIG_PIDS[@]}"; do kill -TERM "$k" 2>/dev/null; done
    for k in "${SIG_PIDS[@]}"; do stop_wait "$k" 20; done
    local rx_errors=0 intro_fail=0
    for k in $(seq 0 $((procs - 1))); do
        line=$(grep event=stats "$WORK/signers.$run.$k.out" | tail -1)
        rx_errors=$((rx_errors + $(field "$line" rx_errors)))
        intro_fail=$((intro_fail + $(field "$line" intro_failures)))
    done
    stop_daemon
    [ "$DRC" = 0 ] || { echo "run.sh: daemon exited $DRC on SIGTERM" >&2; FAILED=1; }

    # wss: what OpenSSL alone keeps per idle server connection, measured in the same run.
    local tls_floor=
    if [ "$TLS" = 1 ]; then
        tls_floor=$("$TOOLS/tls_floor" -c "$WORK/cert.pem" -k "$WORK/key.pem") || die "tls_floor failed"
        tls_floor=" tls_floor_kib=$(field "$tls_floor" tls_floor_kib)"
    fi

    local cpu ratio
    cpu=$(field "$req_out" cpu_us_per_req)
    ratio=$(awk -v a="$cpu" -v b="$floor" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    local transport=ws
    [ "$TLS" = 1 ] && transport=wss
    printf 'summary run=%s transport=%s n=%s c=%s d=%s rps=%s requests=%s non200=%s p50_ms=%s p90_ms=%s p99_ms=%s cpu_us_per_sign=%s verify_floor_us=%s cpu_ratio=%s rss_idle_kib=%s rss_n_kib=%s rss_per_conn_kib=%s%s intro_ms=%s%s signer_rx_errors=%s intro_failures=%s\n' \
        "$run" "$transport" "$N" "$C" "$D" "$(field "$req_out" rps)" "$(field "$req_out" requests)" \
        "$(field "$req_out" non200)" "$(field "$req_out" p50_ms)" "$(field "$req_out" p90_ms)" \
        "$(field "$req_out" p99_ms)" "$cpu" "$floor" "$ratio" "$rss_idle" "$rss_n" "$per_conn" \
        "$tls_floor" "$intro_ms" "$storm" "$rx_errors" "$intro_fail" | tee -a "$WORK/summaries"
    echo "  requester: $req_out"
    echo "  verify_floor: $floor_line"

    if [ "$SMOKE" = 1 ]; then
        local reqs non200
        reqs=$(field "$req_out" requests)
        non200=$(field "$req_out" non200)
        [ "${reqs:-0}" -gt 0 ] || { echo "run.sh: no request completed" >&2; FAILED=1; }
        [ "${non200:-1}" = 0 ] || { echo "run.sh: $non200 requests did not get 200" >&2; FAILED=1; }
        [ "$rx_errors" = 0 ] || { echo "run.sh: signers saw $rx_errors unexpected frames" >&2; FAILED=1; }
    fi
}

echo "# wssignd bench $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -n) $(nproc) cpus" \
    "nofile=$NOFILE daemon=$DAEMON"
probe_limits
FAILED=0
: >"$WORK/summaries"
for r in $(seq 1 "$RUNS"); do
    run_once "$r"
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
            if (key[i] ~ /^(transport|n|c|d)$/) { line = line " " key[i] "=" v[i, 1]; continue }
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
