#!/usr/bin/env bash
# Runs a command in a brand-new, minimal Debian 12 root, as on a user's fresh
# machine: only apt, ca-certificates and git are installed and nothing this
# machine has installed leaks in. It proves that the README's commands install
# what they need; .ci/run runs examples/demo.sh this way.
#
#   tests/fresh-root.sh [--keep] [--refresh] [--] COMMAND...   (as root)
#
# The committed HEAD of the checkout this script is in is cloned to /src in the
# new root (uncommitted changes are not), and COMMAND runs there with bash -c,
# as root, with a clean environment, sharing this machine's network: apt-get
# works, and loopback ports are shared with this machine.
#
# The root is made once with mmdebstrap (Debian package mmdebstrap) and cached
# as a tarball in $WSSIGND_FRESH_ROOT_CACHE (default /var/cache/wssignd-fresh-root),
# made again when older than 7 days or with --refresh. Each run unpacks a new
# copy under $TMPDIR (default /var/tmp) and deletes it afterwards (--keep leaves
# it for a look). COMMAND runs in its own mount and PID namespaces, so its mounts
# and any process it leaves behind end with it, however it exits.
#
# Exit status: COMMAND's; 2 for a usage or set-up error.

# One compound command: bash reads it whole before running it, so editing or
# checking out another version of this file during a run cannot change it.
{
set -euo pipefail

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "fresh-root: $*" >&2; exit 2; }

keep=0 refresh=0
while [ $# -gt 0 ]; do
    case $1 in
    --keep) keep=1 ;;
    --refresh) refresh=1 ;;
    -h | --help) usage; exit 0 ;;
    --) shift; break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) break ;;
    esac
    shift
done
[ $# -gt 0 ] || { usage >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root: it unpacks a root file system, mounts /proc and /dev in it and chroots (try: sudo $0 $*)"
for tool in git tar unshare chroot flock; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
command -v mmdebstrap >/dev/null ||
    die "mmdebstrap not found: install it with 'apt-get install mmdebstrap' (Debian 11 or later)"

top=$(git -C "$(dirname "$0")" rev-parse --show-toplevel 2>/dev/null) ||
    die "$(dirname "$0") is not in a git checkout"
head=$(git -C "$top" rev-parse --verify HEAD) || die "the checkout $top has no commit"
if [ -n "$(git -C "$top" status --porcelain --untracked-files=no)" ]; then
    echo "fresh-root: note: uncommitted changes in $top are not in the fresh root" >&2
fi

# Everything this script creates goes on every exit path: a half-made
# tarball, the unpacked root (unless --keep). The mounts are not here: they
# live in the command's own mount namespace and are gone with it.
building= root=
cleanup() {
    local rc=$?
    [ -n "$building" ] && rm -f "$building"
    if [ -n "$root" ]; then
        if [ "$keep" = 1 ]; then
            echo "fresh-root: root kept at $root" >&2
        else
            # --one-file-system: a second guard should a mount ever be visible here
            rm -rf --one-file-system "$root"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the cached root: one tarball, made under a lock, replaced atomically
cache=${WSSIGND_FRESH_ROOT_CACHE:-/var/cache/wssignd-fresh-root}
tarball=$cache/bookworm.tar
mkdir -p "$cache" || die "cannot create the cache directory $cache"
exec 9>"$cache/lock"
flock 9
if [ "$refresh" = 1 ] || [ ! -s "$tarball" ] ||
    [ -n "$(find "$tarball" -mtime +7 2>/dev/null)" ]; then
    echo "fresh-root: making a minimal Debian 12 root with mmdebstrap (cached in $cache)" >&2
    building=$(mktemp "$cache/building.XXXXXX.tar")
    mmdebstrap --quiet --variant=apt --include=ca-certificates,git bookworm "$building" ||
        die "mmdebstrap failed (is the network or a Debian mirror reachable?)"
    mv -f "$building" "$tarball"
    building=
fi
flock -u 9
exec 9>&-

# ---- a fresh copy of it
root=$(mktemp -d "${TMPDIR:-/var/tmp}/wssignd-fresh-root.XXXXXX")
tar -C "$root" -xf "$tarball"
git clone -q --no-hardlinks --no-checkout "$top" "$root/src"
git -C "$root/src" checkout -q --detach "$head"
echo "fresh-root: running at $(git -C "$top" log -1 --format='%h %s' "$head")" >&2

# What any installed machine has and a bootstrapped root lacks: a name
# server and localhost in /etc/hosts.
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
# Certificate authorities this machine adds locally (a TLS-inspecting proxy,
# a private mirror): the root reaches the same mirrors this machine does.
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    mkdir -p "$root/usr/local/share/ca-certificates"
    cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
    chroot "$root" update-ca-certificates >/dev/null 2>&1 || true
fi
[ -f /etc/npmrc ] && cp /etc/npmrc "$root/etc/npmrc"

# PID 1 of the new PID namespace mounts what a running system has, then runs
# COMMAND; when it exits the kernel ends every process left in the namespace
# and the mount namespace (with its mounts) goes with them.
set +e
unshare --mount --pid --fork --propagation private -- /bin/bash -c '
    set -e
    root=$1; shift
    mount -t proc proc "$root/proc"
    mount -t sysfs -o ro sysfs "$root/sys"
    mount --bind /dev "$root/dev"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$root/dev/pts"
    mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
    mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
    set +e
    chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        /bin/bash -c "cd /src && $*"
' fresh-root "$root" "$*"
rc=$?
set -e
echo "fresh-root: exit $rc" >&2
exit $rc
}
