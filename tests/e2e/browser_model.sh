#!/usr/bin/env bash
# browser_model.sh: "New model" in the web UI of `joey serve` in headless Chromium, driven
# by playwright-core (tests/browser/ui_model.test.mjs): an editor makes a model from a
# SQLite table in one step (table preview, key column and type guessed, email column),
# a taken ID is said at its field, the model's page and records; the form and the page
# at 1280 and 360 px with axe-core; the viewer gets no form; then `joey validate` and
# `joey plan` on the written directory. Screenshots: <artifacts>/browser-model/.
#
# Needs Debian's chromium (/usr/bin/chromium), node, and tests/browser/node_modules
# (npm ci --prefix tests/browser). Without them it is skipped here, but fails in CI (CI=true).
set -u
SRC=${JOEY_SRC:?JOEY_SRC must point at the source tree}
JOEY=${JOEY_BIN:?JOEY_BIN must point at the joey binary}
CHROMIUM=${JOEY_CHROMIUM:-/usr/bin/chromium}

missing() {
  if [ "${CI:-}" = true ]; then
    echo "FAIL browser_model: $1 (required in CI)"
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
[ -f "$SRC/tests/browser/node_modules/axe-core/axe.min.js" ] ||
  missing "tests/browser/node_modules/axe-core is missing (npm ci --prefix tests/browser)"

export JOEY_CHROMIUM=$CHROMIUM
export JOEY_ARTIFACTS=${JOEY_ARTIFACTS:-$(cd "$(dirname "$JOEY")" && pwd)/artifacts}
cd "$SRC/tests/browser" || exit 1
exec timeout 300 node ui_model.test.mjs
