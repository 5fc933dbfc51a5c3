#!/usr/bin/env bash
# browser_ui.sh: the web UI of `joey serve` in headless Chromium, driven by playwright-core
# (tests/browser/ui.test.mjs): accounts made with `joey user add`, the sign-in page (the
# page carries no credential; HttpOnly SameSite=Strict session cookie; CSRF), then as the
# admin: connect Braze, add a destination, preview the plan, run and follow it, check the
# simulator got the users, schedules, record lookup, failed rows and retry, the config
# error banner, that HTML in names shows as text; personal API tokens, the Team page, the
# audit log; what the viewer, the editor and the admin each may do (hidden or disabled
# controls, 403 from the API); sign-out, password change, an ended session; and on a
# second server without accounts, the one-time setup link and the sign-in rate limit.
# Then ui_product.test.mjs (#16): confirming a destructive change, the guard's approval,
# a refused Braze key, amber partial runs, explained failed rows, live run counters,
# repair mode, and every page at 1280 and 360 px checked with axe-core; and the Audiences
# and Records pages (ui_audiences.test.mjs): the rule builder's live count against
# sqlite3's, saving an audience, a record found by email; and a query source
# (ui_query_source.test.mjs): previewed, its key column picked, saved and reopened with
# its query kept, a property of it.
# Screenshots: $JOEY_ARTIFACTS/browser/ (default: <build dir>/artifacts/browser/).
#
# Needs Debian's chromium (/usr/bin/chromium), node, and tests/browser/node_modules
# (npm ci --prefix tests/browser). Without them it is skipped here, but fails in CI (CI=true).
BROWSER_TEST=browser_ui
source "$(dirname "$0")/browser_lib.bash"
[ -x "$(dirname "$JOEY")/braze-sim" ] || [ -n "${BRAZE_SIM_BIN:-}" ] || missing "no braze-sim beside $JOEY"

# the UI connects a Braze app to the simulator: the operator allows that endpoint
export JOEY_ALLOW_ENDPOINTS=${JOEY_ALLOW_ENDPOINTS:-http://127.0.0.1:*}
cd "$SRC/tests/browser" || exit 1
[ -f "$SRC/tests/browser/node_modules/axe-core/axe.min.js" ] ||
  missing "tests/browser/node_modules/axe-core is missing (npm ci --prefix tests/browser)"
# ui.test.mjs: accounts, forms, runs, roles; ui_product.test.mjs: safety, clarity, repair
# mode, every page at 1280 and 360 px with axe-core (screenshots in <artifacts>/browser-product/);
# ui_audiences.test.mjs: Audiences and Records. The last line sums them.
rc=0
sums=$(mktemp)
timeout 540 node ui.test.mjs | tee -a "$sums"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
timeout 540 node ui_product.test.mjs | tee -a "$sums"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
timeout 300 node ui_audiences.test.mjs | tee -a "$sums"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
timeout 300 node ui_query_source.test.mjs | tee -a "$sums"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
# ui_warehouse_source.test.mjs: Snowflake and BigQuery sources made in the UI (warehouse-fake)
timeout 300 node ui_warehouse_source.test.mjs | tee -a "$sums"
[ "${PIPESTATUS[0]}" = 0 ] || rc=1
awk '/^[0-9]+ passed, [0-9]+ failed$/ {p += $1; f += $3} END {printf "%d passed, %d failed\n", p, f}' "$sums"
rm -f "$sums"
exit $rc
