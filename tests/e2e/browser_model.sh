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
BROWSER_TEST=browser_model
source "$(dirname "$0")/browser_lib.bash"
[ -f "$SRC/tests/browser/node_modules/axe-core/axe.min.js" ] ||
  missing "tests/browser/node_modules/axe-core is missing (npm ci --prefix tests/browser)"

cd "$SRC/tests/browser" || exit 1
exec timeout 300 node ui_model.test.mjs
