#!/usr/bin/env bash
# warehouse_sessions.sh: joey's sessions on the warehouse are read-only, each wait on
# the database is limited by the app's statementTimeout, and a statement is cancelled
# on the server when joey stops (SIGINT/SIGTERM: PQcancel, KILL QUERY; kill -9 on
# PostgreSQL 14+: the server's client_connection_check_interval). Against the real
# PostgreSQL and MariaDB servers of JOEY_PG_URL / JOEY_MYSQL_URL (each part skipped
# without its URL). docs/security.md, "SQL".
set -e
source "$(dirname "$0")/lib.bash"
[ -n "${JOEY_PG_URL:-}${JOEY_MYSQL_URL:-}" ] || { echo "skipped: neither JOEY_PG_URL nor JOEY_MYSQL_URL is set"; echo "0 passed, 0 failed"; exit 0; }
RC=0; OUT=""; ERR=""
MARK="$$$RANDOM" # our statements on the servers: pg_sleep(600.MARK), SLEEP(601.MARK)

# config APP_JSON SOURCE_TYPE QUERY: a model read by a query source, one Braze destination
config() {
  rm -rf "$TMP/cfg"; mkdir -p "$TMP/cfg"
  python3 - "$1" "$2" "$3" > "$TMP/cfg/config.json" <<'PY'
import json, sys
app, st, q = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
print(json.dumps([app,
  {"class": "App", "id": "braze", "type": "braze", "options": {"apiKey": "${BRAZE_KEY}", "restEndpoint": "http://127.0.0.1:9"}},
  {"class": "Model", "id": "users", "name": "Users", "type": "profile"},
  {"class": "Source", "id": "src", "type": st, "appId": "db", "modelId": "users", "options": {"query": q}, "mapping": {"id": "user_id"}},
  {"class": "Property", "id": "user_id", "type": "integer", "unique": True, "sourceId": "src", "options": {"column": "id"}},
  {"class": "Property", "id": "email", "type": "email", "sourceId": "src", "options": {"column": "email"}},
  {"class": "Destination", "id": "d", "type": "braze-export-users", "appId": "braze", "modelId": "users", "syncMode": "sync",
   "collection": "model", "mapping": {"external_id": "user_id", "email": "email"}}], indent=1))
PY
}
export BRAZE_KEY=test-key
J="--config $TMP/cfg --state $TMP/.joey/state.db"
# timed CMD...: run joey, ELAPSED in seconds
timed() { local t0; t0=$(date +%s.%N); run "$@"; ELAPSED=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))"); }
within() { # within SECONDS NAME
  if python3 -c "import sys; sys.exit(0 if $ELAPSED < $1 else 1)"; then ok "$2 (${ELAPSED} s)"; else bad "$2: took ${ELAPSED} s, over $1 s"; fi
}
# bg_joey CMD...: joey in the background, BG_PID; bg_wait: its exit status in RC, output in OUT/ERR
# (with SIGINT as in a terminal: a non-interactive shell starts background jobs with it ignored)
bg_joey() {
  python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
    "$JOEY" "$@" >"$TMP/bg.out" 2>"$TMP/bg.err" &
  BG_PID=$!; BG_T0=$(date +%s.%N)
}
bg_wait() { # at most 30 s: a joey that does not stop is killed (exit 124 here)
  for _ in $(seq 1 300); do kill -0 "$BG_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$BG_PID" 2>/dev/null && { kill -9 "$BG_PID"; echo "joey did not stop within 30 s: killed" >>"$TMP/bg.err"; }
  set +e; wait "$BG_PID"; RC=$?; set -e
  ELAPSED=$(python3 -c "print(round($(date +%s.%N) - $BG_T0, 1))")
  OUT=$(cat "$TMP/bg.out"); ERR=$(cat "$TMP/bg.err")
}
# gone NAME SECONDS COUNT_CMD...: COUNT_CMD prints 0 within SECONDS
gone() {
  local name=$1 secs=$2 n=""; shift 2
  for _ in $(seq 1 $((secs * 10))); do n=$("$@"); [ "$n" = 0 ] && break; sleep 0.1; done
  if [ "$n" = 0 ]; then ok "$name"; else bad "$name: still $n"; fi
}

# ---------------------------------------------------------------- PostgreSQL
if [ -n "${JOEY_PG_URL:-}" ]; then
  S="e2e_ro_$$_$RANDOM"
  pg() { psql "$JOEY_PG_URL" -qAt -v ON_ERROR_STOP=1 -c "$1"; }
  trap 'pg "DROP SCHEMA IF EXISTS '"$S"' CASCADE" >/dev/null 2>&1 || true; e2e_cleanup' EXIT
  pg "CREATE SCHEMA $S; CREATE TABLE $S.users (id INTEGER PRIMARY KEY, email TEXT);
      INSERT INTO $S.users VALUES (1, 'a@b.co'), (2, 'c@d.co'), (3, 'e@f.co'); CREATE SEQUENCE $S.seq;" >/dev/null
  export E2E_DB_PASSWORD=$(url_part "$JOEY_PG_URL" password)
  pg_app() { # pg_app [EXTRA_OPTIONS_JSON]
    printf '{"class":"App","id":"db","type":"postgres","options":{"host":"%s","port":%s,"database":"%s","user":"%s","password":"${E2E_DB_PASSWORD}","schema":"%s"%s}}' \
      "$(url_part "$JOEY_PG_URL" host)" "$(url_part "$JOEY_PG_URL" port)" "$(url_part "$JOEY_PG_URL" database)" \
      "$(url_part "$JOEY_PG_URL" user)" "$S" "${1:-}"
  }
  sleeping() { pg "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(600.$MARK)%' AND pid <> pg_backend_pid() AND state = 'active'"; }

  config "$(pg_app)" postgres-import-query "SELECT id, email FROM users"
  run plan $J; expect_rc 0 "postgres: a plain query source plans"

  config "$(pg_app)" postgres-import-query "SELECT id, 'u' || nextval('seq') || '@b.co' AS email FROM users"
  run plan $J; expect_rc 1 "postgres: nextval() in a query source fails"
  expect_err "read-only transaction" "postgres: ... because the session is read-only"
  V=$(pg "SELECT is_called FROM $S.seq")
  if [ "$V" = f ]; then ok "postgres: the sequence did not move"; else bad "postgres: the sequence moved"; fi

  LO=$(pg "SELECT count(*) FROM pg_largeobject_metadata")
  config "$(pg_app)" postgres-import-query "SELECT id, email, lo_create(0) AS n FROM users"
  # PostgreSQL allows lo_create (and lo_import) in a read-only transaction: the
  # transaction joey reads in is rolled back, so nothing is left
  run plan $J
  if [ "$(pg "SELECT count(*) FROM pg_largeobject_metadata")" = "$LO" ]; then ok "postgres: lo_create() in a query source leaves no large object"; else bad "postgres: a large object was made"; fi

  # statementTimeout: a wait longer than it is cancelled, on the server too
  SLEEPQ="SELECT u.id, u.email FROM users u CROSS JOIN (SELECT pg_sleep(600.$MARK)) s"
  config "$(pg_app ',"statementTimeout":2')" postgres-import-query "$SLEEPQ"
  timed plan $J; expect_rc 1 "postgres: pg_sleep(600) with statementTimeout 2 fails"
  within 10 "postgres: ... after about 2 s"
  expect_err "query cancelled" "postgres: ... cancelled by joey"
  expect_err "statementTimeout" "postgres: ... naming statementTimeout"
  gone "postgres: the statement is gone from the server" 3 sleeping

  # SIGINT of plan: the server's statement is cancelled (default statementTimeout 300)
  config "$(pg_app)" postgres-import-query "$SLEEPQ"
  bg_joey plan $J; sleep 1.5; kill -INT "$BG_PID"; bg_wait
  if [ "$RC" -ne 0 ]; then ok "postgres: SIGINT stops plan (exit $RC)"; else bad "postgres: plan succeeded after SIGINT"; fi
  within 8 "postgres: ... at once"
  gone "postgres: SIGINT: the statement is cancelled on the server" 3 sleeping

  # SIGTERM of run: interrupted, the statement cancelled, the destination's lock released
  bg_joey run $J; sleep 1.5; kill -TERM "$BG_PID"; bg_wait
  if [ "$RC" -eq 1 ] && grep -q interrupted <<<"$OUT$ERR"; then ok "postgres: SIGTERM: the run ends interrupted"; else bad "postgres: SIGTERM: the run's end"; fi
  within 8 "postgres: ... at once"
  gone "postgres: SIGTERM: the statement is cancelled on the server" 3 sleeping
  if [ "$(sqlite3 "$TMP/.joey/state.db" "SELECT count(*) FROM locks")" = 0 ]; then ok "postgres: SIGTERM: the lock is released"; else bad "postgres: SIGTERM: a lock is left"; fi

  # the warehouse diff runs the sources' statements in its own query, on a connection
  # to the state store's database: read-only, rolled back and watched the same way
  case $JOEY_PG_URL in *\?*) ST="$JOEY_PG_URL&schema=${S}_st" ;; *) ST="$JOEY_PG_URL?schema=${S}_st" ;; esac
  trap 'pg "DROP SCHEMA IF EXISTS '"$S"' CASCADE; DROP SCHEMA IF EXISTS '"${S}_st"' CASCADE" >/dev/null 2>&1 || true; e2e_cleanup' EXIT
  config "$(pg_app)" postgres-import-query "SELECT id, email, lo_create(0) AS n FROM users"
  run state migrate --config "$TMP/cfg" --state "$ST"; expect_rc 0 "postgres: a state store in the warehouse's database"
  LO=$(pg "SELECT count(*) FROM pg_largeobject_metadata")
  run plan --config "$TMP/cfg" --state "$ST" --diff warehouse; expect_rc 0 "postgres: warehouse diff plans"
  expect_out "compared in the database" "postgres: ... in the database"
  if [ "$(pg "SELECT count(*) FROM pg_largeobject_metadata")" = "$LO" ]; then ok "postgres: warehouse diff: lo_create() leaves no large object"; else bad "postgres: warehouse diff: a large object was made"; fi
  config "$(pg_app ',"statementTimeout":2')" postgres-import-query "$SLEEPQ"
  timed plan --config "$TMP/cfg" --state "$ST" --diff warehouse; expect_rc 1 "postgres: warehouse diff: pg_sleep(600) with statementTimeout 2 fails"
  within 12 "postgres: warehouse diff: ... after about 2 s (and 2 more for the streaming diff it falls back to)"
  expect_err "warehouse diff: the database sent nothing for 2 s" "postgres: warehouse diff: ... cancelled by joey"
  gone "postgres: warehouse diff: the statement is gone from the server" 3 sleeping
  config "$(pg_app)" postgres-import-query "$SLEEPQ"

  # kill -9: nothing of joey runs; PostgreSQL 14+ notices the closed connection
  if [ "$(pg "SHOW server_version_num")" -ge 140000 ]; then
    bg_joey plan $J; sleep 1.5; kill -9 "$BG_PID"; bg_wait
    gone "postgres: kill -9: the server stops the statement within 10 s" 15 sleeping
  fi
fi

# ---------------------------------------------------------------- MariaDB
if [ -n "${JOEY_MYSQL_URL:-}" ]; then
  DB="joey_case_ro_$$_$RANDOM"
  MY=(mariadb --no-defaults -h "$(url_part "$JOEY_MYSQL_URL" host)" -P "$(url_part "$JOEY_MYSQL_URL" port)"
      -u "$(url_part "$JOEY_MYSQL_URL" user)" "-p$(url_part "$JOEY_MYSQL_URL" password)")
  my() { "${MY[@]}" -N -B -e "$1"; }
  trap 'my "DROP DATABASE IF EXISTS '"$DB"'" >/dev/null 2>&1 || true; [ -z "${S:-}" ] || pg "DROP SCHEMA IF EXISTS '"${S:-x}"' CASCADE; DROP SCHEMA IF EXISTS '"${S:-x}_st"' CASCADE" >/dev/null 2>&1 || true; e2e_cleanup' EXIT
  my "CREATE DATABASE $DB CHARACTER SET utf8mb4; CREATE TABLE $DB.users (id INTEGER PRIMARY KEY, email TEXT);
      INSERT INTO $DB.users VALUES (1, 'a@b.co'), (2, 'c@d.co'), (3, 'e@f.co'); CREATE SEQUENCE $DB.seq;"
  export E2E_DB_PASSWORD=$(url_part "$JOEY_MYSQL_URL" password)
  my_app() {
    printf '{"class":"App","id":"db","type":"mysql","options":{"host":"%s","port":%s,"database":"%s","user":"%s","password":"${E2E_DB_PASSWORD}"%s}}' \
      "$(url_part "$JOEY_MYSQL_URL" host)" "$(url_part "$JOEY_MYSQL_URL" port)" "$DB" "$(url_part "$JOEY_MYSQL_URL" user)" "${1:-}"
  }
  my_sleeping() { my "SELECT count(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%SLEEP(601.$MARK)%' AND ID <> CONNECTION_ID()"; }

  config "$(my_app)" mysql-import-query "SELECT id, email FROM users"
  run plan $J; expect_rc 0 "mariadb: a plain query source plans"

  config "$(my_app)" mysql-import-query "SELECT id, CONCAT('u', NEXTVAL(seq), '@b.co') AS email FROM users"
  run plan $J; expect_rc 1 "mariadb: NEXTVAL() in a query source fails"
  expect_err "READ ONLY" "mariadb: ... because the session is read-only"
  if [ "$(my "SELECT NEXTVAL($DB.seq)")" = 1 ]; then ok "mariadb: the sequence did not move"; else bad "mariadb: the sequence moved"; fi

  SLEEPQ="SELECT id, email FROM users WHERE SLEEP(601.$MARK) = 0"
  config "$(my_app ',"statementTimeout":2')" mysql-import-query "$SLEEPQ"
  timed plan $J; expect_rc 1 "mariadb: SLEEP(601) with statementTimeout 2 fails"
  within 10 "mariadb: ... after about 2 s"
  expect_err "query cancelled" "mariadb: ... cancelled by joey"
  expect_err "statementTimeout" "mariadb: ... naming statementTimeout"
  gone "mariadb: the statement is gone from the server (KILL QUERY)" 3 my_sleeping

  config "$(my_app)" mysql-import-query "$SLEEPQ"
  bg_joey plan $J; sleep 1.5; kill -INT "$BG_PID"; bg_wait
  if [ "$RC" -ne 0 ]; then ok "mariadb: SIGINT stops plan (exit $RC)"; else bad "mariadb: plan succeeded after SIGINT"; fi
  within 8 "mariadb: ... at once"
  gone "mariadb: SIGINT: the statement is killed on the server" 3 my_sleeping

  bg_joey run $J; sleep 1.5; kill -TERM "$BG_PID"; bg_wait
  if [ "$RC" -eq 1 ] && grep -q interrupted <<<"$OUT$ERR"; then ok "mariadb: SIGTERM: the run ends interrupted"; else bad "mariadb: SIGTERM: the run's end"; fi
  within 8 "mariadb: ... at once"
  gone "mariadb: SIGTERM: the statement is killed on the server" 3 my_sleeping
fi
finish
