#!/usr/bin/env bash
# browser_ui.sh: the web UI of `joey serve` in headless Chromium, driven by playwright-core
# (tests/browser/ui.test.mjs): connect Braze, add a destination, preview the plan, run and
# follow it, check the simulator got the users, schedules, record lookup, failed rows and
# retry, the config error banner, the token form, and that HTML in names shows as text.
# Screenshots: $JOEY_ARTIFACTS/browser/ (default: <build dir>/artifacts/browser/).
#
# Needs Debian's chromium (/usr/bin/chromium), node, and tests/browser/node_modules
# (npm ci --prefix tests/browser). Without them it is skipped here, but fails in CI (CI=true).
set -u
SRC=${JOEY_SRC:?JOEY_SRC must point at the source tree}
JOEY=${JOEY_BIN:?JOEY_BIN must point at the joey binary}
CHROMIUM=${JOEY_CHROMIUM:-/usr/bin/chromium}

missing() {
  if [ "${CI:-}" = true ]; then
    echo "FAIL browser_ui: $1 (required in CI)"
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
export JOEY_ARTIFACTS=${JOEY_ARTIFACTS:-$(cd "$(dirname "$JOEY")" && pwd)/artifacts}
cd "$SRC/tests/browser" || exit 1
exec timeout 540 node ui.test.mjs
