#!/usr/bin/env bash
# Builds the Debian packages and tests them as a user's fresh machine would
# get them (as root; needs mmdebstrap and python3; .ci/run runs it):
#
#   1. in a brand-new Debian 12 root (tests/fresh-root.sh), `apt-get build-dep`
#      installs debian/control's Build-Depends and nothing else, and
#      `dpkg-buildpackage -us -uc` builds the source package and the .debs:
#      a build dependency missing from debian/control cannot land;
#   2. lintian, installed in that root after the build, checks them
#      (--pedantic, info tags included); every tag left must be overridden,
#      with its reason, in debian/;
#   3. in another brand-new root, tests/deb-install-test.sh installs them with
#      `apt-get install ./wssignd_*.deb ./wssign_*.deb` and checks the
#      dependencies it pulled in, the installed files, the enabled unit, the
#      check of the installed configuration, a signature from the installed
#      daemon to the installed `wssign agent`, and what remove and purge
#      leave behind.
#
#   tests/deb-test.sh [--out DIR]
#
# The committed HEAD is what is built (fresh-root.sh clones it). --out DIR
# keeps the packages there; by default they go with a temporary directory.
# The second root fetches them from this machine over loopback HTTP with
# apt's own apt-helper, so that nothing but the packages and their
# dependencies is installed there.
#
# Exit status: 0 when every step passes; the first failing step's status
# otherwise (2 for a usage or set-up error).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "deb-test: $*" >&2; exit 2; }
out=
while [ $# -gt 0 ]; do
    case $1 in
    --out) out=${2:?--out needs a directory}; shift ;;
    -h | --help) sed -n '2,/^[^#]/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
    esac
    shift
done
[ "$(id -u)" = 0 ] || die "must run as root (tests/fresh-root.sh needs it)"
command -v python3 >/dev/null || die "python3 not found (apt-get install python3)"

work=$(mktemp -d "${TMPDIR:-/var/tmp}/wssignd-deb-test.XXXXXX")
kept= server=
cleanup() {
    local rc=$?
    set +e
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    [ -n "$kept" ] && rm -rf --one-file-system "$kept"
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
[ -n "$out" ] || out=$work/debs
mkdir -p "$out"

step() { printf '\n--- deb-test: %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

# ---- 1. and 2. build and lintian in a new root, kept (--keep) to copy the results out
step "build and lintian in a brand-new Debian 12 root"
t0=$SECONDS
build='set -e
export DEBIAN_FRONTEND=noninteractive
step() { printf "\n--- deb-test: %s (%s)\n" "$1" "$(date -u +%H:%M:%S)"; }
apt-get update -qq
apt-get build-dep -y -qq --no-install-recommends ./ >/dev/null
dpkg-buildpackage -us -uc
mkdir /deb-out && mv ../*.deb ../*.dsc ../*.tar.* ../*.buildinfo ../*.changes /deb-out/
step lintian
apt-get install -y -qq --no-install-recommends lintian >/dev/null
lintian --pedantic --display-info --display-experimental --fail-on error,warning,info,pedantic \
    /deb-out/wssignd_*.changes
echo "deb-test: lintian clean (overrides: debian/*lintian-overrides)"'
set +e
tests/fresh-root.sh --keep "$build" 2>&1 | tee "$work/build.log"
rc=${PIPESTATUS[0]}
set -e
kept=$(sed -n 's/^fresh-root: root kept at //p' "$work/build.log" | tail -n 1)
[ "$rc" = 0 ] || { echo "deb-test: the package build or lintian failed (exit $rc)" >&2; exit "$rc"; }
[ -n "$kept" ] && [ -d "$kept/deb-out" ] || die "no packages in the build root"
cp "$kept"/deb-out/* "$out"/
rm -rf --one-file-system "$kept"
kept=
echo "deb-test: built and checked in $((SECONDS - t0)) s:"
ls -l "$out"

# ---- 3. install test in another new root, the .debs served over loopback
step "install in a brand-new Debian 12 root"
t0=$SECONDS
python3 -u -c '
import http.server, os, sys
os.chdir(sys.argv[1])
class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
print(srv.server_address[1], flush=True)
srv.serve_forever()
' "$out" >"$work/port" &
server=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
port=$(cat "$work/port")
[ -n "$port" ] || die "the loopback HTTP server did not start"
debs=$(cd "$out" && ls wssignd_*.deb wssign_*.deb | tr '\n' ' ')
tests/fresh-root.sh "tests/deb-install-test.sh http://127.0.0.1:$port $debs"
echo "deb-test: install test took $((SECONDS - t0)) s"
echo "deb-test: all steps passed"
