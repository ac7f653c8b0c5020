#!/usr/bin/env bash
# Runs the tests against checked builds of wssignd; any finding fails the run.
#
#   tests/run-checked.sh asan       ASan + UBSan build in build-asan; the unit and
#                                   end-to-end tests with ctest, leaks checked at
#                                   every exit
#   tests/run-checked.sh valgrind   plain build in build-valgrind; every unit test
#                                   under valgrind, then the end-to-end tests with
#                                   the daemon under valgrind (the subset below),
#                                   then the hostile-server tests with the agent
#                                   under valgrind
#
# Environment: WSSIGND_CHECK_JOBS (parallel tests, default 2);
# WSSIGND_VALGRIND_E2E="NN-name ..." replaces the valgrind end-to-end subset;
# WSSIGND_VALGRIND_AGENT_E2E="NN-name ..." the files run with `wssign agent`
# under valgrind.
# Debian 12 as root: installs valgrind when it is missing (tests/run.sh installs
# the rest).
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
MODE=${1:-}
JOBS=${WSSIGND_CHECK_JOBS:-2}

case "$MODE" in
asan | valgrind) ;;
*)
    echo "usage: $0 asan|valgrind" >&2
    exit 2
    ;;
esac

# ---------------------------------------------------------------------------
# A runner for tests described by `ctest --show-only=json-v1`: each test's own
# command, working directory and environment, optionally behind a wrapper, with
# extra arguments for some tests. Prints one line per test, the output of
# failed ones, and a closing "N passed, N failed" line; exits 1 on any failure.
RUNNER=$(mktemp --suffix=.py)
trap 'rm -f "$RUNNER"' EXIT
cat >"$RUNNER" <<'PY'
import argparse, json, os, re, shlex, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor

ap = argparse.ArgumentParser()
ap.add_argument("tests_json")
ap.add_argument("--only", default="", help="regex a test name must match")
ap.add_argument("--wrapper", default="", help="shell words put before each command")
ap.add_argument("--log-dir", default="", help="a %%N in --wrapper becomes <log-dir>/<test>")
ap.add_argument("--env", action="append", default=[], help="K=V for every test")
ap.add_argument("--args", action="append", default=[], help="TEST=ARG ARG: extra arguments")
ap.add_argument("--timeout", type=float, default=900)
ap.add_argument("--jobs", type=int, default=2)
a = ap.parse_args()

tests = json.load(open(a.tests_json))["tests"]
if a.only:
    tests = [t for t in tests if re.search(a.only, t["name"])]
extra = {}
for item in a.args:
    name, _, words = item.partition("=")
    extra[name] = shlex.split(words)


def run(t):
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    env = dict(os.environ)
    for kv in props.get("ENVIRONMENT", []) + a.env:
        k, _, v = kv.partition("=")
        env[k] = v
    wrapper = a.wrapper
    if a.log_dir:
        os.makedirs(a.log_dir, exist_ok=True)
        wrapper = wrapper.replace("%N", os.path.join(a.log_dir, t["name"]))
    cmd = shlex.split(wrapper) + t["command"] + extra.get(t["name"], [])
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=props.get("WORKING_DIRECTORY"), env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=a.timeout)
        rc, out = p.returncode, p.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        rc, out = "timeout", (e.stdout or b"").decode("utf-8", "replace")
    return t["name"], rc, time.monotonic() - t0, out


t0 = time.monotonic()
failed = []
passed = 0
with ThreadPoolExecutor(a.jobs) as ex:
    for name, rc, took, out in ex.map(run, tests):
        ok = rc == 0
        print("%-6s %-44s %7.1f s%s" % ("ok" if ok else "FAIL", name, took,
                                        "" if ok else "  (exit %s)" % rc), flush=True)
        if ok:
            passed += 1
        else:
            failed.append((name, out))
for name, out in failed:
    print("\n===== %s =====\n%s" % (name, out[-20000:]))
print("total %.1f s" % (time.monotonic() - t0))
print("%d passed, %d failed" % (passed, len(failed)), flush=True)
sys.exit(1 if failed else 0)
PY

python=/usr/bin/python3

if [ "$MODE" = asan ]; then
    BUILD=build-asan
    cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSSIGND_SANITIZE=ON \
        -DWSSIGND_WERROR=ON -DWSSIGND_BUILD_TESTS=ON
    cmake --build "$BUILD" -j"$(nproc)"
    # A finding stops the process with a non-zero status: a unit test fails, and the
    # e2e harness fails a test whose daemon died or did not exit 0 after SIGTERM.
    # LeakSanitizer runs at every exit (detect_leaks=1), so a leak fails the test too.
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    cd "$BUILD"
    rc=0
    # Two e2e files run the binaries under a tracer that ASan cannot share the
    # process with; they run separately below. The files that check the build,
    # the packaging and the docs (60-63) run no daemon code worth checking here.
    ctest -L "unit|e2e" \
        -E '^e2e\.(20-wssign-cli|30-systemd-unit|60-build-install|61-deb-tree|62-man-pages|63-monitoring-examples)$' \
        --output-on-failure -j"$JOBS" || rc=1
    ctest -L e2e --show-only=json-v1 >e2e-tests.json
    # 30-systemd-unit runs the daemon under strace, and LeakSanitizer cannot work
    # under ptrace: that file runs with leak checking off (ASan and UBSan still on).
    ASAN_OPTIONS=${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0} \
        $python "$RUNNER" e2e-tests.json --only '^e2e\.30-systemd-unit$' --jobs 1 || rc=1
    # 20-wssign-cli's test_valgrind_* runs valgrind on the wssign binary, which cannot
    # run an ASan binary: every other test of the file runs here (the runner selects
    # tests by name), that one runs in the valgrind mode.
    names=$(grep -oE '^(async )?def test_[a-z0-9_]*' "$SRC/tests/integration/20-wssign-cli.py" |
        sed 's/^.*def //' | grep -v valgrind | tr '\n' ' ')
    $python "$RUNNER" e2e-tests.json --only '^e2e\.20-wssign-cli$' --jobs 1 \
        --args "e2e.20-wssign-cli=$names" || rc=1
    exit $rc
fi

# ---------------------------------------------------------------------------
# valgrind

if ! command -v valgrind >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends valgrind >/dev/null
    else
        echo "valgrind is not installed" >&2
        exit 1
    fi
fi
if ! grep -q WSSIGND_TEST_WRAPPER tests/integration/wssd_test.py; then
    echo "tests/integration/wssd_test.py cannot wrap the daemon (WSSIGND_TEST_WRAPPER):" \
        "apply tests/integration/wssd_test.patch" >&2
    exit 1
fi

BUILD=build-valgrind
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWSSIGND_WERROR=ON -DWSSIGND_BUILD_TESTS=ON
cmake --build "$BUILD" -j"$(nproc)"
cd "$BUILD"
LOGS=$PWD/valgrind-logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
SUPP=$SRC/tests/valgrind.supp
VALGRIND="valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 --suppressions=$SUPP --num-callers=30"

# The end-to-end subset run under valgrind (about 5 to 6 minutes with 2 jobs). Left out:
#   23-wssign-reconnect    asserts re-introduction within 2 s of a restart (unscaled)
#   30-systemd-unit        runs the daemon under strace (ptrace); its syscall list
#                          would be valgrind's
#   32-reload-config       asserts answers within fixed times after SIGTERM
#   34-drain               asserts drain and exit times to a fraction of a second
#   52-fault-fd-exhaustion valgrind holds descriptors of its own under the 256 limit,
#                          and the CPU-share bound would measure valgrind's JIT
#   55-fault-kill-restart  20 kill -9 rounds under load: kills a valgrind mid-run, and
#                          its agents' 5 s re-introduction bound is unscaled
# 51-fault-random-signers runs 2000 requests instead of 10 000.
E2E=${WSSIGND_VALGRIND_E2E:-"01-sign-roundtrip 02-sign-roundtrip-wss 03-sign-not-connected
    04-sign-timeout 05-sign-reject 06-sign-bad-signature 07-sign-wrong-connection
    08-intro-bad-proof 09-intro-legacy-optional 10-supersede 11-signer-killed 12-intro-timeout
    13-malformed-frames 14-http-auth 15-config-cli 16-shutdown-pending 17-limits-overload
    18-sign-requester-cancel 19-example-controller 20-wssign-cli 21-wssign-roundtrip
    22-wssign-policy 24-wssign-protocol 25-verify-threads 31-notify 33-reload-tls
    35-journal-priority 36-audit-log 37-metrics 40-hostile-handshake 41-hostile-framing
    42-hostile-protocol 43-hostile-tls 44-hostile-slow 45-wire-vectors 46-hostile-control
    50-fault-signer-stopped 51-fault-random-signers 53-fault-huge-length
    54-fault-sigterm-under-load"}
only="^e2e\.($(echo $E2E | tr ' ' '|'))$"

rc=0
ctest -L unit --show-only=json-v1 >unit-tests.json
echo "== unit tests under valgrind"
# test_jsonflat_diff's corpus is cut to a tenth here (24,000 inputs): the whole
# one runs in the plain and ASan builds, and under valgrind it takes minutes.
$python "$RUNNER" unit-tests.json --jobs "$JOBS" --timeout 600 --log-dir "$LOGS" \
    --wrapper "$VALGRIND --log-file=%N.log" --env WSSIGND_JSONFLAT_DIFF_CASES=12000 || rc=1

ctest -L e2e --show-only=json-v1 >e2e-tests.json
echo "== end-to-end tests with the daemon under valgrind"
# The harness puts WSSIGND_TEST_WRAPPER before every daemon command line and
# stretches its time limits by WSSIGND_TEST_TIME_SCALE; valgrind's exit status
# 99 fails the test, and its reports go to one file per process.
$python "$RUNNER" e2e-tests.json --only "$only" --jobs "$JOBS" --timeout 1800 \
    --env "WSSIGND_TEST_WRAPPER=$VALGRIND --log-file=$LOGS/e2e-%p.log" \
    --env WSSIGND_TEST_TIME_SCALE=10 --env WSSIGND_FAULT_REQUESTS=2000 || rc=1

# The agent holds a private key and parses whatever its server sends: the files
# that feed it hostile frames run with the agent under valgrind (wssign_util.Agent
# puts WSSIGN_TEST_WRAPPER before its command line). Exit status 99 fails the
# test when it stops the agent, and the scan below catches the rest.
AGENT_E2E=${WSSIGND_VALGRIND_AGENT_E2E:-"26-wssign-hostile-server"}
agent_only="^e2e\.($(echo $AGENT_E2E | tr ' ' '|'))$"
echo "== end-to-end tests with the wssign agent under valgrind"
$python "$RUNNER" e2e-tests.json --only "$agent_only" --jobs "$JOBS" --timeout 1800 \
    --env "WSSIGN_TEST_WRAPPER=$VALGRIND --log-file=$LOGS/agent-%p.log" \
    --env WSSIGND_TEST_TIME_SCALE=10 || rc=1

# Every report with an error, whether or not a test noticed it (a daemon killed
# with SIGKILL never reports; one that ended normally always does).
bad=$(grep -l -E "ERROR SUMMARY: [1-9]" "$LOGS"/*.log || true)
if [ -n "$bad" ]; then
    rc=1
    for f in $bad; do
        echo "===== $f"
        cat "$f"
    done
fi
echo "valgrind reports: $(ls "$LOGS" | wc -l), with errors: $(echo -n "$bad" | grep -c . || true)"
exit $rc
