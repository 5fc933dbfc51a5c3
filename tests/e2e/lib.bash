# lib.bash: helpers for end-to-end tests of the real joey binary (sourced).
# Each test script: source lib.sh, call check/expect_* functions, end with `finish`.
set -u
JOEY=${JOEY_BIN:?JOEY_BIN must point at the joey binary}
SRC=${JOEY_SRC:?JOEY_SRC must point at the source tree}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/joeye2e.XXXXXX")
STATE_SCHEMA="" # E2E_STATE=postgres: the state store's schema (see "the state store" below)
state_psql() { PGOPTIONS="-c search_path=$STATE_SCHEMA -c client_min_messages=warning" psql "$JOEY_PG_URL" -qAt -v ON_ERROR_STOP=1 "$@"; }
state_drop() { [ -z "$STATE_SCHEMA" ] || state_psql -c "DROP SCHEMA IF EXISTS $STATE_SCHEMA CASCADE" >/dev/null 2>&1 || true; }
# at exit: stop background jobs (the simulator), drop the PostgreSQL state schema, remove TMP
e2e_cleanup() {
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  [ -z "${E2E_CLEANUP_HOOK:-}" ] || $E2E_CLEANUP_HOOK # a server-side database of the test's
  state_drop
  rm -rf "$TMP"
}
trap e2e_cleanup EXIT
PASS=0
FAIL=0

# run CMD...: runs joey with the args, capturing OUT, ERR and RC
run() {
  set +e
  "$JOEY" "$@" >"$TMP/out" 2>"$TMP/err"
  RC=$?
  set -e
  OUT=$(cat "$TMP/out")
  ERR=$(cat "$TMP/err")
}

ok() { PASS=$((PASS + 1)); echo "ok   $1"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL $1"; echo "  exit: $RC"; echo "  stdout: ${OUT:0:2000}"; echo "  stderr: ${ERR:0:2000}"; }

expect_rc() { # expect_rc N NAME
  if [ "$RC" -eq "$1" ]; then ok "$2 (exit $1)"; else bad "$2: expected exit $1"; fi
}
expect_out() { # expect_out PATTERN NAME  (grep -E on stdout)
  if grep -qE -- "$1" <<<"$OUT"; then ok "$2"; else bad "$2: stdout lacks /$1/"; fi
}
expect_err() { # expect_err PATTERN NAME  (fixed string on stderr)
  if grep -qF -- "$1" <<<"$ERR"; then ok "$2"; else bad "$2: stderr lacks \"$1\""; fi
}
expect_no() { # expect_no STRING NAME: neither stdout nor stderr contains STRING
  if grep -qF -- "$1" <<<"$OUT$ERR"; then bad "$2: output contains \"$1\""; else ok "$2"; fi
}

# demo_copy DIR: a private copy of examples/demo with its database built
demo_copy() {
  mkdir -p "$1"
  cp -r "$SRC/examples/demo/config" "$1/config"
  sqlite3 "$1/demo.db" < "$SRC/examples/demo/demo.sql"
}

finish() {
  echo "$PASS passed, $FAIL failed"
  [ "$FAIL" -eq 0 ]
}

# ---- the Braze simulator ----
SIM_BIN=${BRAZE_SIM_BIN:-$(dirname "$JOEY")/braze-sim}
SIM_URL=""
SIM_PID=""
# sim_start [ARGS...]: start braze-sim on a free loopback port (stops by itself in 600 s)
sim_start() {
  rm -f "$TMP/sim.port"
  "$SIM_BIN" --port 0 --port-file "$TMP/sim.port" --api-key test-key --max-lifetime 600 --quiet --seed 7 "$@" &
  SIM_PID=$!
  for _ in $(seq 1 100); do [ -s "$TMP/sim.port" ] && break; sleep 0.05; done
  SIM_URL="http://127.0.0.1:$(cat "$TMP/sim.port")"
  trap e2e_cleanup EXIT
}
sim_stop() { kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null || true; }
# sim_check NAME EXPR: assertion on the simulator's users/requests (see sim.py)
sim_check() {
  if python3 "$(dirname "${BASH_SOURCE[0]}")/sim.py" check "$SIM_URL" "$2" 2>"$TMP/simcheck"; then ok "$1"
  else FAIL=$((FAIL + 1)); echo "FAIL $1"; sed 's/^/  /' "$TMP/simcheck" | head -c 4000; echo; fi
}
sim_mark() { python3 "$(dirname "${BASH_SOURCE[0]}")/sim.py" mark "$SIM_URL"; }
sim_post() { curl -s -X POST -H 'Content-Type: application/json' "$SIM_URL$1" -d "$2" >/dev/null; }
# run_killed_when CHECK ARGS...: `joey run ARGS` with the simulator holding every answer
# (it applies each request at once), killed -9 as soon as the sim.py expression CHECK
# holds (20 s at most); the answers then come at once again. Fails (status 1) when
# CHECK never held: Braze did not get what the run sent. Its output: $TMP/killed.out.
run_killed_when() {
  local check=$1 pid applied=1
  shift
  sim_post /_sim/config '{"latency_ms":20000}'
  "$JOEY" run "$@" >"$TMP/killed.out" 2>&1 &
  pid=$!
  for _ in $(seq 1 400); do
    python3 "$(dirname "${BASH_SOURCE[0]}")/sim.py" check "$SIM_URL" "$check" 2>/dev/null && { applied=0; break; }
    sleep 0.05
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  sim_post /_sim/config '{"latency_ms":0}'
  return $applied
}

# ---- the state store: SQLite by default, or PostgreSQL (E2E_STATE=postgres) ----
# With E2E_STATE=postgres, JOEY_STATE_URL names a fresh schema in $JOEY_PG_URL's
# database (dropped at exit), so every joey command without --state uses it; without
# JOEY_PG_URL the whole script is skipped. Scripts reach the store through these
# helpers, given the SQLite path they would use otherwise (usually the default,
# $TMP/.joey/state.db):
#   state_query PATH SQL        print the result of SQL (one value per line)
#   state_exists PATH           the store exists (the file, or the schema)
#   state_make_version PATH N   a store that says it has schema version N
#   state_remove PATH           remove the store
#   state_contains PATH TEXT    TEXT appears anywhere in the store
STATE_BACKEND=${E2E_STATE:-sqlite}
case $STATE_BACKEND in
sqlite) ;;
postgres)
  [ -n "${JOEY_PG_URL:-}" ] || { echo "skipped: JOEY_PG_URL is not set (E2E_STATE=postgres)"; echo "0 passed, 0 failed"; exit 0; }
  STATE_SCHEMA="e2e_state_$$_$RANDOM"
  case $JOEY_PG_URL in *\?*) JOEY_STATE_URL="$JOEY_PG_URL&schema=$STATE_SCHEMA" ;; *) JOEY_STATE_URL="$JOEY_PG_URL?schema=$STATE_SCHEMA" ;; esac
  export JOEY_STATE_URL
  unset JOEY_STATE ;;
*) echo "unknown E2E_STATE $STATE_BACKEND"; exit 2 ;;
esac
state_query() {
  if [ "$STATE_BACKEND" = postgres ]; then state_psql -c "$2"; else sqlite3 "$1" "$2"; fi
}
state_exists() {
  if [ "$STATE_BACKEND" = postgres ]; then
    [ "$(state_psql -c "SELECT count(*) FROM pg_namespace WHERE nspname = '$STATE_SCHEMA'")" = 1 ]
  else [ -e "$1" ]; fi
}
state_make_version() {
  if [ "$STATE_BACKEND" = postgres ]; then
    state_psql -c "CREATE SCHEMA $STATE_SCHEMA; CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      INSERT INTO meta VALUES ('application_id', '1246709081'), ('schema_version', '$2')" >/dev/null
  else
    mkdir -p "$(dirname "$1")"
    sqlite3 "$1" "PRAGMA application_id=0x4a4f4559; CREATE TABLE meta(key PRIMARY KEY, value); INSERT INTO meta VALUES('schema_version', $2);"
  fi
}
state_remove() {
  if [ "$STATE_BACKEND" = postgres ]; then state_drop; else rm -rf "$(dirname "$1")"; fi
}
state_contains() {
  if [ "$STATE_BACKEND" = postgres ]; then "$JOEY" state export 2>/dev/null | grep -qF -- "$2"
  else grep -rqaF -- "$2" "$(dirname "$1")"; fi
}

# ---- the warehouse a test reads: SQLite by default, or a real server ----
# db_setup: picks E2E_BACKEND (sqlite | postgres | mysql); defines sq SQL (run a
# statement), DB_APP (the App object, JSON) and DB_ST (source type prefix). A server
# backend without its URL (JOEY_PG_URL / JOEY_MYSQL_URL) skips the whole script.
url_part() { # url_part URL user|password|host|port|database
  local rest=${1#*://} userpass hostport
  userpass=${rest%%@*}; rest=${rest#*@}; hostport=${rest%%/*}
  case $2 in
  user) echo "${userpass%%:*}" ;; password) echo "${userpass#*:}" ;;
  host) echo "${hostport%%:*}" ;; port) echo "${hostport#*:}" ;; database) echo "${rest#*/}" ;;
  esac
}
# ch_setup PREFIX: a ClickHouse database of its own (DB, PREFIX_<pid>_<n>), dropped by
# e2e_cleanup, and chq SQL [DB] (one statement over HTTP, fails loudly); CH_USER, CH_PW, CH_HOST,
# CH_PORT from $JOEY_CLICKHOUSE_URL. Without it: skipped, except CI=true (a failure).
ch_setup() {
  if [ -z "${JOEY_CLICKHOUSE_URL:-}" ]; then
    if [ "${CI:-}" = true ]; then echo "FAIL: JOEY_CLICKHOUSE_URL is not set and CI=true"; exit 1; fi
    echo "skipped: JOEY_CLICKHOUSE_URL is not set (scripts/test-servers.sh start)"; echo "0 passed, 0 failed"; exit 0
  fi
  CH_USER=$(url_part "$JOEY_CLICKHOUSE_URL" user)
  CH_PW=$(url_part "$JOEY_CLICKHOUSE_URL" password)
  CH_HOST=$(url_part "$JOEY_CLICKHOUSE_URL" host)
  CH_PORT=$(url_part "$JOEY_CLICKHOUSE_URL" port)
  DB="$1_$$_$RANDOM"
  chq() {
    curl -sS --fail-with-body -H "X-ClickHouse-User: $CH_USER" -H "X-ClickHouse-Key: $CH_PW" \
      "http://$CH_HOST:$CH_PORT/?database=${2:-default}" --data-binary "$1"
  }
  ch_drop() { chq "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true; }
  E2E_CLEANUP_HOOK=ch_drop # e2e_cleanup, whoever set the trap last (sim_start does)
  chq "CREATE DATABASE $DB" >/dev/null
}
db_setup() {
  DB_BACKEND=${E2E_BACKEND:-sqlite}
  case $DB_BACKEND in
  sqlite)
    sq() { sqlite3 "$TMP/data.db" "$1"; }
    DB_APP='{"class":"App","id":"db","type":"sqlite","options":{"file":"data.db"}}'
    DB_ST=sqlite ;;
  postgres)
    [ -n "${JOEY_PG_URL:-}" ] || { echo "skipped: JOEY_PG_URL is not set"; echo "0 passed, 0 failed"; exit 0; }
    DB_SCHEMA="e2e_$$_$RANDOM"
    psql "$JOEY_PG_URL" -qAt -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $DB_SCHEMA" >/dev/null
    sq() { psql "$JOEY_PG_URL" -qAt -v ON_ERROR_STOP=1 -c "SET search_path = $DB_SCHEMA; $1" >/dev/null; }
    DB_APP=$(printf '{"class":"App","id":"db","type":"postgres","options":{"host":"%s","port":%s,"database":"%s","user":"%s","password":"${E2E_DB_PASSWORD}","schema":"%s"}}' \
      "$(url_part "$JOEY_PG_URL" host)" "$(url_part "$JOEY_PG_URL" port)" "$(url_part "$JOEY_PG_URL" database)" \
      "$(url_part "$JOEY_PG_URL" user)" "$DB_SCHEMA")
    export E2E_DB_PASSWORD=$(url_part "$JOEY_PG_URL" password)
    DB_ST=postgres ;;
  mysql)
    [ -n "${JOEY_MYSQL_URL:-}" ] || { echo "skipped: JOEY_MYSQL_URL is not set"; echo "0 passed, 0 failed"; exit 0; }
    DB_NAME="joey_case_e2e_$$_$RANDOM"
    MY=(mariadb --no-defaults -h "$(url_part "$JOEY_MYSQL_URL" host)" -P "$(url_part "$JOEY_MYSQL_URL" port)"
        -u "$(url_part "$JOEY_MYSQL_URL" user)" "-p$(url_part "$JOEY_MYSQL_URL" password)")
    "${MY[@]}" -e "CREATE DATABASE $DB_NAME CHARACTER SET utf8mb4"
    sq() { "${MY[@]}" "$DB_NAME" -e "$1"; }
    DB_APP=$(printf '{"class":"App","id":"db","type":"mysql","options":{"host":"%s","port":%s,"database":"%s","user":"%s","password":"${E2E_DB_PASSWORD}"}}' \
      "$(url_part "$JOEY_MYSQL_URL" host)" "$(url_part "$JOEY_MYSQL_URL" port)" "$DB_NAME" "$(url_part "$JOEY_MYSQL_URL" user)")
    export E2E_DB_PASSWORD=$(url_part "$JOEY_MYSQL_URL" password)
    DB_ST=mysql ;;
  *) echo "unknown E2E_BACKEND $DB_BACKEND"; exit 2 ;;
  esac
}

# The small users project several tests share:
# users_db FILE ROWS [n]: an SQLite file with a users table of ROWS rows (id, email
# u<id>@example.com, and with "n" a column n = 0).
users_db() {
  local cols="id INTEGER PRIMARY KEY, email TEXT" vals="i, 'u' || i || '@example.com'"
  [ "${3:-}" = n ] && cols="$cols, n INTEGER" vals="$vals, 0"
  sqlite3 "$1" "CREATE TABLE users ($cols);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < $2)
INSERT INTO users SELECT $vals FROM s;"
}
# users_config FILE ENDPOINT KEYREF [n]: a config (data.db beside the config directory's
# parent, as users_db makes it) with one sync Braze destination at ENDPOINT, apiKey
# KEYREF (e.g. '${BRAZE_KEY}'), mapping external_id, email (and with "n" the property n).
users_config() {
  local nprop="" nmap=""
  if [ "${4:-}" = n ]; then
    nprop='
 {"class":"Property","id":"n","type":"integer","sourceId":"src","options":{"column":"n"}},'
    nmap=',"n":"n"'
  fi
  mkdir -p "$(dirname "$1")"
  cat > "$1" <<CFG
[
 {"class":"App","id":"db","type":"sqlite","options":{"file":"data.db"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"$3","restEndpoint":"$2"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"sqlite-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},$nprop
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email"$nmap}}
]
CFG
}
