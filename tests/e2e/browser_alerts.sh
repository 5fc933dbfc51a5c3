#!/usr/bin/env bash
# browser_alerts.sh: the Alerts pages of `joey serve` in headless Chromium, driven by
# playwright-core (tests/browser/alerts.test.mjs): an admin creates a webhook alert with
# the form, sends a test message (the receiver checks its signature), secrets show only
# as ****; a viewer may look but not change or test.
#
# Needs Debian's chromium (/usr/bin/chromium), node, and tests/browser/node_modules
# (npm ci --prefix tests/browser). Without them it is skipped here, but fails in CI (CI=true).
set -u
SRC=${JOEY_SRC:?JOEY_SRC must point at the source tree}
JOEY=${JOEY_BIN:?JOEY_BIN must point at the joey binary}
CHROMIUM=${JOEY_CHROMIUM:-/usr/bin/chromium}

missing() {
  if [ "${CI:-}" = true ]; then
    echo "FAIL browser_alerts: $1 (required in CI)"
    echo "0 passed, 1 failed"
    exit 1
  fi
  echo "skipped: $1"
  echo "0 passed, 0 failed"
  exit 0
}
[ -x "$CHROMIUM" ] || missing "no Chromium at $CHROMIUM (apt-get install -y chromium chromium-driver)"
command -v node >/dev/null 2>&1 || missing "node is not installed (apt-get install -y nodejs npm)"
[ -f "$SRC/tests/browser/node_modules/playwright-core/package.json" ] ||
  missing "tests/browser/node_modules is missing (npm ci --prefix tests/browser)"
[ -x "$(dirname "$JOEY")/braze-sim" ] || [ -n "${BRAZE_SIM_BIN:-}" ] || missing "no braze-sim beside $JOEY"

export JOEY_CHROMIUM=$CHROMIUM
# the UI connects a Braze app to the simulator: the operator allows that endpoint
export JOEY_ALLOW_ENDPOINTS=${JOEY_ALLOW_ENDPOINTS:-http://127.0.0.1:*}
export JOEY_ARTIFACTS=${JOEY_ARTIFACTS:-$(cd "$(dirname "$JOEY")" && pwd)/artifacts}
cd "$SRC/tests/browser" || exit 1
exec timeout 540 node alerts.test.mjs
