# browser_lib.bash: what the browser_*.sh wrappers share (sourced, not a test: CTest
# registers *.sh only). The caller sets BROWSER_TEST to its name first. Sets SRC, JOEY,
# CHROMIUM; missing WHY: without a prerequisite the test is skipped here, but fails in
# CI (CI=true); checks Chromium, node and playwright-core; exports JOEY_CHROMIUM and
# JOEY_ARTIFACTS. The caller checks what else it needs, cd's to tests/browser and runs.
set -u
SRC=${JOEY_SRC:?JOEY_SRC must point at the source tree}
JOEY=${JOEY_BIN:?JOEY_BIN must point at the joey binary}
CHROMIUM=${JOEY_CHROMIUM:-/usr/bin/chromium}

missing() {
  if [ "${CI:-}" = true ]; then
    echo "FAIL $BROWSER_TEST: $1 (required in CI)"
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

export JOEY_CHROMIUM=$CHROMIUM
export JOEY_ARTIFACTS=${JOEY_ARTIFACTS:-$(cd "$(dirname "$JOEY")" && pwd)/artifacts}
