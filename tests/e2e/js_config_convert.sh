#!/usr/bin/env bash
# js_config_convert.sh: the command joey's hint gives for a Grouparoo .js config file
# converts it as Grouparoo read it (configLoaders/index.ts: an export whose only key is
# "default" stands for that value; a function is called and awaited). Grouparoo's own
# examples and loader fixtures export an async function, for which
# JSON.stringify(require(...)) alone prints "undefined". Needs node (skipped without).
set -euo pipefail
source "$(dirname "$0")/lib.bash"

if ! command -v node >/dev/null 2>&1; then
  echo "skipped: no node"; echo "0 passed, 0 failed"; exit 0
fi

C=$TMP/config
mkdir -p "$C/models"
# the three forms Grouparoo accepted (its fixtures, grouparoo/app-example-csv)
cat >"$C/models/a.js" <<'JS'
module.exports = async function getConfig() {
  return [{ class: "Model", id: "a", name: "A", type: "profile" }];
};
JS
cat >"$C/models/b.js" <<'JS'
exports.default = async function buildConfig() {
  return [{ class: "model", id: "b", name: "B", type: "profile" }];
};
JS
cat >"$C/models/c.js" <<'JS'
module.exports = { class: "Model", id: "c", name: "C", type: "account" };
JS

run validate --config "$C"
expect_rc 1 "validate refuses the .js files"
for f in a b c; do
  expect_out "^models/$f.js: error: joey cannot execute JavaScript config files" "models/$f.js is named"
done
# run each hint's command in the file's directory, as it says
for f in a b c; do
  cmd=$(grep -A1 "^models/$f.js: error" <<<"$OUT" | sed -n 's/^hint: convert it to JSON once, in its directory, then delete it: \(.*\) (values it reads.*$/\1/p')
  [ -n "$cmd" ] && ok "the hint for $f.js holds a command" || bad "no command in the hint for $f.js"
  (cd "$C/models" && bash -c "$cmd" && rm "$f.js")
done
# the models alone are not a valid config (no source): only the .js errors must be gone
run validate --config "$C"
expect_no "JavaScript" "no .js file is left"
expect_out 'config ".*" is invalid: 3 errors' "the three models were read (each lacks a source)"
run validate --config "$C" --json
expect_out '"id": "a"' "the function's objects were written (module.exports = async function)"
expect_out '"id": "b"' "the default export's objects were written (exports.default = async function)"
expect_out '"id": "c"' "a plain exported object was written"
finish
