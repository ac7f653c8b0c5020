#!/bin/sh
# Runs the browser signer test (signer.test.mjs) in headless Chromium.
# Exits 77 (skipped) when /usr/bin/chromium or node is missing; installs
# playwright-core into tests/browser/node_modules from package-lock.json
# when it is not there yet. WSSIGND_BIN names the daemon binary (default
# <repo>/build/wssignd); CHROMIUM overrides the browser path.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
chromium=${CHROMIUM:-/usr/bin/chromium}
# In CI the browser must be there: a skip would hide a broken set-up.
skip=77
[ -n "${WSSIGND_REQUIRE_BROWSER:-}" ] && skip=1

if [ ! -x "$chromium" ]; then
    echo "SKIP: $chromium not found (apt-get install chromium); browser test not run"
    exit $skip
fi
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node not found (apt-get install nodejs npm); browser test not run"
    exit $skip
fi

cd "$here"
want=$(node -p 'require("./package.json").dependencies["playwright-core"]')
have=$(node -p 'try { require("./node_modules/playwright-core/package.json").version } catch (e) { "" }')
if [ "$have" != "$want" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        echo "SKIP: npm not found and playwright-core $want is not installed; browser test not run"
        exit $skip
    fi
    echo "installing playwright-core $want into $here/node_modules"
    # No browser download: the test drives Debian's chromium.
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi

export CHROMIUM="$chromium"
exec node "$here/signer.test.mjs"
