#!/usr/bin/env bash
# drift_selftest.sh: tests/docs/drift.py fails when the code gains a CLI option, an API
# route or a connector type the docs do not have, or the docs one the code does not.
# Each case edits a scratch copy of the sources and docs.
#   JOEY_SRC: the source tree (default: two levels up)
set -u
src=${JOEY_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/joey-drift.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fails=0

copy() {
  rm -rf "$tmp/t" && mkdir -p "$tmp/t"
  tar -C "$src" -cf - README.md docs src/cli src/server src/config/catalog.c src/source | tar -C "$tmp/t" -xf -
}
# expect NAME PATTERN: drift.py (source mode) fails and says PATTERN
expect() {
  if python3 "$src/tests/docs/drift.py" "$tmp/t" >"$tmp/out" 2>&1; then
    echo "FAIL: $1: drift.py passed"; fails=$((fails + 1))
  elif ! grep -q -- "$2" "$tmp/out"; then
    echo "FAIL: $1: drift.py did not say: $2"; cat "$tmp/out"; fails=$((fails + 1))
  else
    echo "ok: $1"
  fi
}

copy
python3 "$src/tests/docs/drift.py" "$tmp/t" >"$tmp/out" 2>&1 || { echo "FAIL: the unchanged copy drifts"; cat "$tmp/out"; exit 1; }

copy; sed -i 's|{ "--force", &opts.force },|{ "--frobnicate", \&opts.force }, &|' "$tmp/t/src/cli/cmd_run.c"
expect "an undocumented option" 'joey run --frobnicate` is not in the docs'

copy; sed -i 's|{ "POST", "/api/v1/reload", act_reload, ROLE_EDITOR },|&\n\t{ "POST", "/api/v1/frobnicate", act_reload, ROLE_EDITOR },|' "$tmp/t/src/server/api.c"
expect "an undocumented route" 'route POST /api/v1/frobnicate (src/server) is not in docs/api.md'

copy; sed -i 's#^| `POST /api/v1/reload` .*#&\n| `DELETE /api/v1/runs/{id}` | none | 204 |#' "$tmp/t/docs/api.md"
expect "a documented route the code does not have" 'documents DELETE /api/v1/runs/{}'

copy; sed -i 's#`--force` passes the mass-delete guard#`joey run --yes` and &#' "$tmp/t/README.md"
expect "a documented option the code does not have" 'joey run has no option --yes'

copy; sed -i 's|{ "csv-import-table", "csv", false, NULL, csv_source_opts },|&\n\t{ "csv-import-files", "csv", false, NULL, csv_source_opts },|' "$tmp/t/src/config/catalog.c"
expect "an undocumented source type" 'source type "csv-import-files" (src/config/catalog.c) is not in the Connectors table'

copy; sed -i 's#^| app | `csv` |#| app | `oracle` | `file` |\n&#' "$tmp/t/docs/config.md"
expect "a documented app type the code does not have" 'documents app type "oracle"'

copy; sed -i 's#"host", "port", "database", "user", "password",#"host", "port", "database", "user", "password", "tls",#' "$tmp/t/src/source/mysql.c"
python3 - "$tmp/t/src/config/catalog.c" <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
a = 'mysql_app_opts[] = {'
i = s.index(a) + len(a)
s = s[:i] + '\n\t{ "tls", OPT_BOOL, false, false },' + s[i:]
open(p, "w").write(s)
PY
expect "an undocumented app option" 'option "tls" of app type "mysql" is not in its docs/config.md row'

[ "$fails" -eq 0 ] || exit 1
