#!/bin/sh
# Runs one Node test file of the JavaScript client library (tests/clients/js/)
# with node's test runner. `run-node.sh --install` installs clients/js's npm
# packages (ws, @noble/ed25519, typescript) from its package-lock.json with
# `npm ci` when they are missing or older than the lock file. Exits 77
# (skipped) when node or npm is missing, 1 instead when WSSIGND_REQUIRE_BROWSER
# is set (as in CI). WSSIGND_BIN names the daemon.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
pkg=$(cd "$here/../../clients/js" && pwd)
skip=77
[ -n "${WSSIGND_REQUIRE_BROWSER:-}" ] && skip=1

if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node not found (apt-get install nodejs npm); JavaScript client tests not run"
    exit $skip
fi

if [ "${1:-}" = --install ]; then
    if [ -f "$pkg/node_modules/.package-lock.json" ] &&
        [ "$pkg/node_modules/.package-lock.json" -nt "$pkg/package-lock.json" ]; then
        echo "clients/js: npm packages are installed"
        exit 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "SKIP: npm not found; clients/js's packages are not installed"
        exit $skip
    fi
    echo "installing clients/js's npm packages into $pkg/node_modules"
    cd "$pkg" && exec npm ci --no-audit --no-fund --loglevel=error
fi

if [ ! -d "$pkg/node_modules/ws" ]; then
    echo "SKIP: clients/js/node_modules is missing (run $0 --install)"
    exit $skip
fi
# The runner waits for idle keep-alive sockets of fetch otherwise.
exec node --test --test-force-exit "$here/js/$1"
