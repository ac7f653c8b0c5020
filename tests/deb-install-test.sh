#!/usr/bin/env bash
# The install test of the Debian packages, run by tests/deb-test.sh inside a
# brand-new Debian 12 root (tests/fresh-root.sh), as root:
#
#   tests/deb-install-test.sh BASE_URL wssignd_V_amd64.deb wssign_V_amd64.deb
#
# fetches the two packages from BASE_URL with apt-helper (part of apt: the
# root gets no other tool), installs them with
# `apt-get install ./wssignd_*.deb ./wssign_*.deb` and checks, in order:
#   - the packages pulled in are runtime dependencies only (no -dev package,
#     no compiler, no build tool), libwebsockets' libuv plugin among them;
#   - the files: binaries, unit files, the conffile, man pages, examples;
#   - the service is enabled as Debian enables daemons (deb-systemd-helper),
#     the agent template is not;
#   - the installed `wssignd --check-config` passes on the installed config;
#   - the installed daemon, started by hand on the installed configuration
#     (free loopback ports: the root shares this machine's network), signs
#     for the installed `wssign agent`, and the signature verifies;
#   - a reinstall keeps an edited conffile, remove keeps it, purge removes it
#     and every file, link and state file the packages created.
# Prints one "ok ..." line per check; exits 1 at the first failure.
set -euo pipefail

base=${1:?usage: $0 BASE_URL DEB...}
shift
[ $# -gt 0 ] || { echo "usage: $0 BASE_URL DEB..." >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive

fail() { echo "deb-install-test: FAIL: $*" >&2; exit 1; }
ok() { echo "ok $*"; }

scratch=$(mktemp -d)
daemon= agent=
cleanup() {
    local rc=$?
    set +e
    for p in $agent $daemon; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$scratch"
    exit "$rc"
}
trap cleanup EXIT

# ---- fetch and install
# apt fetches (and reads local packages) as its own user, _apt
mkdir -p "$scratch/debs"
chmod 0755 "$scratch"
chown _apt "$scratch/debs"
for deb in "$@"; do
    /usr/lib/apt/apt-helper -o Acquire::http::Proxy=DIRECT download-file \
        "$base/$deb" "$scratch/debs/$deb" >/dev/null || fail "cannot fetch $base/$deb"
done
dpkg-query -W -f '${Package}\n' | sort >"$scratch/before"
apt-get update -qq
(cd "$scratch/debs" && apt-get install -y -qq ./wssignd_*.deb ./wssign_*.deb) ||
    fail "apt-get install ./wssignd_*.deb ./wssign_*.deb"
dpkg-query -W -f '${Package}\n' | sort >"$scratch/after"
comm -13 "$scratch/before" "$scratch/after" >"$scratch/new"
echo "packages installed ($(wc -l <"$scratch/new")): $(tr '\n' ' ' <"$scratch/new")"

# ---- what was pulled in
for p in wssignd wssign libwebsockets-evlib-uv libwebsockets17 libsodium23 libjansson4; do
    grep -qx "$p" "$scratch/new" || fail "$p was not installed"
done
if grep -E -- '-dev$|^(gcc|g\+\+|cpp|clang|cmake|make|pkg-config|pkgconf|scdoc|debhelper|dpkg-dev|build-essential)(-[0-9]+)?$' \
    "$scratch/new" >"$scratch/extra"; then
    fail "build-only packages were pulled in: $(tr '\n' ' ' <"$scratch/extra")"
fi
# Every package installed is needed: it is in the dependency closure
# (Depends, Pre-Depends, Recommends) of the two packages.
apt-cache depends --recurse --no-suggests --no-conflicts --no-breaks --no-replaces \
    --no-enhances wssignd wssign 2>/dev/null | sed -n 's/^ *|\{0,1\}[A-Za-z-]*: *<\{0,1\}\([^ >]*\)>\{0,1\}$/\1/p; s/^\([a-z0-9][^ ]*\)$/\1/p' |
    sed 's/:any$//' | sort -u >"$scratch/closure"
if comm -23 "$scratch/new" "$scratch/closure" | grep . >"$scratch/stray"; then
    fail "installed but not a dependency of wssignd or wssign: $(tr '\n' ' ' <"$scratch/stray")"
fi
ok "apt-get pulled in runtime dependencies only"

# ---- files
for f in /usr/sbin/wssignd /usr/bin/wssign /etc/wssignd/wssignd.json \
    /lib/systemd/system/wssignd.service /lib/systemd/system/wssign-agent@.service \
    /usr/share/man/man8/wssignd.8.gz /usr/share/man/man5/wssignd.json.5.gz \
    /usr/share/man/man1/wssign.1.gz \
    /usr/share/doc/wssignd/examples/wssignd.production.json \
    /usr/share/doc/wssignd/examples/tokens.example \
    /usr/share/doc/wssignd/examples/wssignd-dashboard.json \
    /usr/share/doc/wssignd/examples/wssignd-alerts.yml \
    /usr/share/doc/wssign/examples/agent.conf; do
    [ -f "$f" ] || fail "$f is not installed"
done
dpkg-query -W -f '${Conffiles}\n' wssignd | grep -q '^ /etc/wssignd/wssignd.json ' ||
    fail "/etc/wssignd/wssignd.json is not a conffile"
cmp -s /etc/wssignd/wssignd.json config/wssignd.json ||
    fail "/etc/wssignd/wssignd.json is not config/wssignd.json"
ok "files in place, /etc/wssignd/wssignd.json a conffile"

# ---- the unit, enabled through deb-systemd-helper (no systemd runs here)
link=/etc/systemd/system/multi-user.target.wants/wssignd.service
[ "$(readlink "$link")" = /lib/systemd/system/wssignd.service ] || fail "$link: not enabled"
# deb-systemd-helper's record, from which purge removes the link
[ -e /var/lib/systemd/deb-systemd-helper-enabled/wssignd.service.dsh-also ] ||
    fail "deb-systemd-helper has no record of enabling wssignd.service"
ls /etc/systemd/system/multi-user.target.wants/ | grep -q '^wssign-agent@' &&
    fail "the agent template was enabled"
ok "wssignd.service enabled, the agent template not"

# ---- the installed configuration passes the installed check
v=$(tr -d '\n' <VERSION)
[ "$(wssignd --version | cut -d' ' -f2)" = "$v" ] || fail "wssignd --version is not $v"
[ "$(wssign --version | cut -d' ' -f2)" = "$v" ] || fail "wssign --version is not $v"
[ "$(dpkg-query -W -f '${Version}' wssignd)" = "$v" ] || fail "package version is not $v"
out=$(wssignd -c /etc/wssignd/wssignd.json --check-config 2>&1) || fail "--check-config: $out"
[ "$out" = "configuration ok" ] || fail "--check-config said: $out"
ok "wssignd $v: --check-config passes on /etc/wssignd/wssignd.json"

# ---- a signature, daemon to agent, both as installed
wssignd -c /etc/wssignd/wssignd.json --listen 127.0.0.1:0 --control 127.0.0.1:0 \
    >"$scratch/daemon.log" 2>&1 &
daemon=$!
wait_for() {   # wait_for FILE REGEX: up to 10 s
    for _ in $(seq 100); do
        grep -qE "$2" "$1" && return 0
        sleep 0.1
    done
    echo "--- $1:" >&2; cat "$1" >&2
    fail "no line matching '$2' in $1"
}
wait_for "$scratch/daemon.log" 'event=ready'
ready=$(grep -m1 'event=ready' "$scratch/daemon.log")
listen=$(sed -n 's/.* listen=\([^ ]*\).*/\1/p' <<<"$ready")
control=$(sed -n 's/.* control=\([^ ]*\).*/\1/p' <<<"$ready")
pk=$(wssign keygen -o "$scratch/signer.key")
wssign agent --url "ws://$listen/v1/ws" --key "$scratch/signer.key" >"$scratch/agent.log" 2>&1 &
agent=$!
wait_for "$scratch/daemon.log" 'event=introduced'
sig=$(wssign request --control "http://$control" --key "$pk" --message 'deb install test' \
    --signature-only) || fail "wssign request failed"
[ "$(wssign verify --key "$pk" --message 'deb install test' --signature "$sig")" = valid ] ||
    fail "the signature does not verify"
kill "$agent" && wait "$agent" || fail "wssign agent did not stop cleanly"
agent=
kill "$daemon" && wait "$daemon" || fail "wssignd did not exit 0 on SIGTERM"
daemon=
ok "the installed daemon signed for the installed agent ($listen, control $control)"

# ---- reinstall, remove, purge
echo '{"log_level": "debug"}' >/etc/wssignd/wssignd.json
(cd "$scratch/debs" && apt-get install -y -qq --reinstall ./wssignd_*.deb) || fail "reinstall"
[ "$(cat /etc/wssignd/wssignd.json)" = '{"log_level": "debug"}' ] ||
    fail "a reinstall replaced the edited conffile"
dpkg-query -L wssignd wssign | sort -u | while read -r f; do
    [ -d "$f" ] || echo "$f"    # the packages' files and links, not the directories
done >"$scratch/files"
apt-get remove -y -qq wssignd wssign || fail "apt-get remove"
[ -f /etc/wssignd/wssignd.json ] || fail "remove deleted the conffile"
apt-get purge -y -qq wssignd wssign || fail "apt-get purge"
while read -r f; do
    [ -f "$f" ] || [ -L "$f" ] && fail "$f is left after purge"
done <"$scratch/files"
for left in /etc/wssignd "$link" /var/lib/systemd/deb-systemd-helper-enabled/wssignd.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/wssignd.service; do
    [ -e "$left" ] || [ -L "$left" ] && fail "$left is left after purge"
done
if find /etc /var/lib/systemd -name '*wssign*' | grep . >"$scratch/left"; then
    fail "left after purge: $(tr '\n' ' ' <"$scratch/left")"
fi
ok "reinstall keeps the edited conffile, remove keeps it, purge removes everything"
echo "deb-install-test: all checks passed"
