#!/usr/bin/env bash
# browser_alerts.sh: the Alerts pages of `joey serve` in headless Chromium, driven by
# playwright-core (tests/browser/alerts.test.mjs): an admin creates a webhook alert with
# the form, sends a test message (the receiver checks its signature), secrets show only
# as ****; a viewer may look but not change or test.
#
# Needs Debian's chromium (/usr/bin/chromium), node, and tests/browser/node_modules
# (npm ci --prefix tests/browser). Without them it is skipped here, but fails in CI (CI=true).
BROWSER_TEST=browser_alerts
source "$(dirname "$0")/browser_lib.bash"
[ -x "$(dirname "$JOEY")/braze-sim" ] || [ -n "${BRAZE_SIM_BIN:-}" ] || missing "no braze-sim beside $JOEY"

# the UI connects a Braze app to the simulator: the operator allows that endpoint
export JOEY_ALLOW_ENDPOINTS=${JOEY_ALLOW_ENDPOINTS:-http://127.0.0.1:*}
cd "$SRC/tests/browser" || exit 1
exec timeout 540 node alerts.test.mjs
