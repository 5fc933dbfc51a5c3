#!/usr/bin/env bash
# sync_log.sh: sync logs in the warehouse (docs/config.md "Sync logs in the warehouse"):
# joey validate's checks of the options; runs with per-row errors, 5xx retries, a failing
# batch and kill -9 against the Braze simulator, then the log tables' contents exactly
# (per-record rows, summaries, counts equal to the run's); a log database that cannot
# be written (the sync completes, the rows wait in the outbox and are written by the
# next run); retention. The log database: SQLite by default, E2E_LOG=postgres or
# E2E_LOG=mysql for a server (sync_log_postgres.sh, sync_log_mysql.sh; skipped without
# JOEY_PG_URL / JOEY_MYSQL_URL).
set -e
source "$(dirname "$0")/lib.bash"
LOG=${E2E_LOG:-sqlite}
export LOG_TARGET
case $LOG in
sqlite)
  LOG_TARGET=log.db
  LOG_APP='{"class":"App","id":"logdb","type":"sqlite","options":{"file":"LOG_TARGET"}}'
  logq() { sqlite3 "$TMP/log.db" "$1"; }
  LOG_BAD=nodir/log.db ;;
postgres)
  [ -n "${JOEY_PG_URL:-}" ] || { echo "skipped: JOEY_PG_URL is not set"; echo "0 passed, 0 failed"; exit 0; }
  LOG_SCHEMA="synclog_e2e_$$_$RANDOM"
  LOG_TARGET=$(url_part "$JOEY_PG_URL" database)
  psql "$JOEY_PG_URL" -qAt -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $LOG_SCHEMA" >/dev/null
  drop_log() { psql "$JOEY_PG_URL" -qAt -c "DROP SCHEMA IF EXISTS $LOG_SCHEMA CASCADE" >/dev/null 2>&1 || true; }
  LOG_APP=$(printf '{"class":"App","id":"logdb","type":"postgres","options":{"host":"%s","port":%s,"database":"LOG_TARGET","user":"%s","password":"${E2E_LOG_PASSWORD}","schema":"%s"}}' \
    "$(url_part "$JOEY_PG_URL" host)" "$(url_part "$JOEY_PG_URL" port)" "$(url_part "$JOEY_PG_URL" user)" "$LOG_SCHEMA")
  export E2E_LOG_PASSWORD=$(url_part "$JOEY_PG_URL" password)
  logq() { psql "$JOEY_PG_URL" -qAt -v ON_ERROR_STOP=1 -c "SET search_path = $LOG_SCHEMA" -c "$1"; }
  LOG_BAD=no_such_database_$$ ;;
mysql)
  [ -n "${JOEY_MYSQL_URL:-}" ] || { echo "skipped: JOEY_MYSQL_URL is not set"; echo "0 passed, 0 failed"; exit 0; }
  LOG_TARGET="joey_case_synclog_$$_$RANDOM" # the test user may create joey_case_* databases
  MY=(mariadb --no-defaults -h "$(url_part "$JOEY_MYSQL_URL" host)" -P "$(url_part "$JOEY_MYSQL_URL" port)"
      -u "$(url_part "$JOEY_MYSQL_URL" user)" "-p$(url_part "$JOEY_MYSQL_URL" password)")
  "${MY[@]}" -e "CREATE DATABASE $LOG_TARGET CHARACTER SET utf8mb4"
  LOG_DBNAME=$LOG_TARGET
  drop_log() { "${MY[@]}" -e "DROP DATABASE IF EXISTS $LOG_DBNAME" 2>/dev/null || true; }
  LOG_APP=$(printf '{"class":"App","id":"logdb","type":"mysql","options":{"host":"%s","port":%s,"database":"LOG_TARGET","user":"%s","password":"${E2E_LOG_PASSWORD}"}}' \
    "$(url_part "$JOEY_MYSQL_URL" host)" "$(url_part "$JOEY_MYSQL_URL" port)" "$(url_part "$JOEY_MYSQL_URL" user)")
  export E2E_LOG_PASSWORD=$(url_part "$JOEY_MYSQL_URL" password)
  logq() { "${MY[@]}" -N -B "$LOG_DBNAME" -e "$1" | tr '\t' '|'; }
  LOG_BAD=no_such_database_$$ ;;
*) echo "unknown E2E_LOG $LOG"; exit 2 ;;
esac
if declare -F drop_log >/dev/null; then trap 'drop_log; e2e_cleanup' EXIT; fi
export GROUPAROO_OPTION__APP__LOG_TARGET=$LOG_TARGET

# the state store (SQLite, or PostgreSQL with E2E_STATE=postgres: state_pg_sync_log.sh)
sq_state() { state_query "$TMP/.joey/state.db" "$1"; }
sim_start --latency-ms 5
export BRAZE_KEY=test-key BRAZE_URL="$SIM_URL" GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
users_db "$TMP/data.db" 200 n
# config CFGDIR [DEST_OPTIONS_JSON]: the users project with the log app and the options
config() {
  users_config "$1/config.json" BRAZE_URL '${BRAZE_KEY}' n
  /usr/bin/python3 - "$1/config.json" "$LOG_APP" "${2:-{\"syncLogAppId\":\"logdb\"\}}" <<'PY'
import json, sys
objs = json.load(open(sys.argv[1]))
objs.append(json.loads(sys.argv[2]))
for o in objs:
    if o["class"] == "Destination":
        o["options"] = json.loads(sys.argv[3])
json.dump(objs, open(sys.argv[1], "w"), indent=1)
PY
}
config "$TMP/cfg"
J="--config $TMP/cfg --timeout 1"
# jq-like: a field of the run's --json answer
jr() { /usr/bin/python3 -c 'import json,sys; d=json.loads(sys.argv[1])["destinations"][0]; print(eval(sys.argv[2]))' "$OUT" "$1"; }
eq() { # eq NAME GOT WANT
  if [ "$2" = "$3" ]; then ok "$1"; else FAIL=$((FAIL + 1)); echo "FAIL $1"; echo "  got:  $2"; echo "  want: $3"; fi
}
# the summary of run $1: status|records_read|created|updated|deleted|unsubscribed|unchanged|failed|log_status|log_rows
summary() { logq "SELECT status, coalesce(records_read, -1), created, updated, deleted, unsubscribed, unchanged, failed, log_status, log_rows FROM joey_sync_runs WHERE destination = 'd' AND run_id = $1"; }
# record rows of run $1 by operation and status: "N operation status" lines
by_op() { logq "SELECT count(*), operation, status FROM joey_sync_records WHERE destination = 'd' AND run_id = $1 GROUP BY operation, status ORDER BY operation, status" | tr '|' ' '; }

# ---- validate ----
if [ "$LOG" = sqlite ]; then
  run validate --config "$TMP/cfg"; expect_rc 0 "validate: a log app whose file does not exist yet is fine"
  touch "$TMP/log.db" # below, configs that do not use the log app: its file must exist
  outf() { if grep -qF -- "$1" <<<"$OUT"; then ok "$2"; else bad "$2: stdout lacks \"$1\""; fi; }
  for case in '{"syncLogAppId":"logdbb"}|options.syncLogAppId: unknown App "logdbb"|did you mean "logdb"?' \
              '{"syncLogAppId":"braze"}|app "braze" of type "braze" cannot hold a sync log|name an app of type postgres, mysql or sqlite' \
              '{"syncLogAppId":"db"}|app "db" is the app source "src" reads from; the sync log needs a separate, writable app|"syncLogAllowSourceApp": true' \
              '{"syncLogAppId":"logdb","syncLogTablePrefix":"bad-prefix"}|syncLogTablePrefix must be a table name prefix, found "bad-prefix"|letters, digits' \
              '{"syncLogAppId":"logdb","syncLogRetentionDays":1.5}|syncLogRetentionDays must be a whole number from 0 to 36500, found 1.5|0 keeps every row' \
              '{"syncLogRetentionDays":7}|option "syncLogRetentionDays" needs "syncLogAppId"|add "syncLogAppId"'; do
    IFS='|' read -r opts msg hint <<<"$case"
    rm -rf "$TMP/vcfg"; config "$TMP/vcfg" "$opts"
    run validate --config "$TMP/vcfg"
    expect_rc 1 "validate $opts"
    outf "config.json:" "validate $opts: names the file"
    outf "Destination \"d\": " "validate $opts: names the destination"
    outf "$msg" "validate $opts: message"
    outf "hint: " "validate $opts: a hint"
    outf "$hint" "validate $opts: the hint"
  done
  rm -rf "$TMP/vcfg"; config "$TMP/vcfg" '{"syncLogAppId":"db","syncLogAllowSourceApp":true}'
  run validate --config "$TMP/vcfg"; expect_rc 0 "validate: the source's app is allowed with syncLogAllowSourceApp"
fi

# ---- a first run: one row rejected, 5xx retried ----
sim_post /_sim/faults '[{"endpoint":"track","status":503,"count":2}]'
sim_post /_sim/faults '{"action":"row_error","external_id":"7","type":"EMAIL_BAD_FORMAT"}'
run run $J --json; expect_rc 1 "run 1: one row failed"
eq "run 1: --json says the log is complete" "$(jr 'd["sync_log"]["status"], d["sync_log"]["rows"], d["sync_log"]["pending"], d["retries"]')" "('complete', 200, 0, 2)"
eq "run 1: summary row" "$(summary 1)" "failed|200|199|0|0|0|0|1|complete|200"
eq "run 1: record rows" "$(by_op 1)" "199 create confirmed
1 create failed"
eq "run 1: the failed row" "$(logq "SELECT record_key, operation, status, error_code, attempt, changed_fields FROM joey_sync_records WHERE run_id = 1 AND status = 'failed'")" '7|create|failed|rejected|1|["email","n"]'
eq "run 1: its message" "$(logq "SELECT count(*) FROM joey_sync_records WHERE run_id = 1 AND error_message LIKE '%EMAIL_BAD_FORMAT%'")" 1
eq "run 1: one row per key" "$(logq "SELECT count(DISTINCT record_key), count(*) FROM joey_sync_records WHERE run_id = 1")" "200|200"
eq "run 1: run row's trigger and model" "$(logq "SELECT run_trigger, model FROM joey_sync_runs WHERE run_id = 1")" "cli|users"

# ---- run 2: the row accepted now, 10 records changed ----
sim_post /_sim/faults '{"action":"clear_row_error","external_id":"7"}'
sqlite3 "$TMP/data.db" "UPDATE users SET n = 1 WHERE id <= 10"
run run $J --json; expect_rc 0 "run 2 succeeds"
# 7 changed too: it is still a create (its first attempt failed), so 1 create and 9 updates
eq "run 2: summary" "$(summary 2)" "success|200|1|9|0|0|190|0|complete|10"
eq "run 2: record rows" "$(by_op 2)" "1 create confirmed
9 update confirmed"
eq "run 2: the retried create is attempt 2" "$(logq "SELECT record_key, attempt FROM joey_sync_records WHERE run_id = 2 AND operation = 'create'")" "7|2"
eq "run 2: changed fields of an update" "$(logq "SELECT DISTINCT changed_fields FROM joey_sync_records WHERE run_id = 2 AND operation = 'update'")" '["n"]'

# ---- run 3: 5xx past the retry budget, every row fails ----
sqlite3 "$TMP/data.db" "UPDATE users SET n = 2"
sim_post /_sim/faults '[{"endpoint":"track","status":500,"count":40}]'
run run $J --json; expect_rc 1 "run 3: every row failed"
eq "run 3: summary" "$(summary 3)" "failed|200|0|0|0|0|0|200|complete|200"
eq "run 3: every row failed, gave up after retries" "$(logq "SELECT count(*), error_code FROM joey_sync_records WHERE run_id = 3 GROUP BY error_code")" "200|retries_exhausted"
sim_post /_sim/faults '{"action":"clear"}'
run run $J; expect_rc 0 "run 4 converges"
eq "run 4: record rows" "$(by_op 4)" "200 update confirmed"
eq "run 4: attempt 2 for rows that failed once" "$(logq "SELECT DISTINCT attempt FROM joey_sync_records WHERE run_id = 4")" 2

# ---- a log database that cannot be written: the sync completes, rows wait ----
sqlite3 "$TMP/data.db" "UPDATE users SET n = 3 WHERE id <= 25"
GROUPAROO_OPTION__APP__LOG_TARGET=$LOG_BAD run run $J --json
expect_rc 0 "log down: the sync itself succeeds (exit 0)"
eq "log down: --json says pending" "$(jr 'd["status"], d["sync_log"]["status"], d["sync_log"]["rows"], d["sync_log"]["pending"]')" "('success', 'pending', 0, 25)"
expect_err 'the sync log of run 5 was not written to app "logdb"' "log down: a warning names the run and the app"
expect_err "25 rows wait in the state store" "log down: the warning says the rows wait"
eq "log down: the state store keeps them" "$(sq_state "SELECT status, pending FROM synclog_runs WHERE run_id = 5")" "pending|25"
eq "log down: nothing of run 5 in the log" "$(logq "SELECT count(*) FROM joey_sync_records WHERE run_id = 5")" 0
sqlite3 "$TMP/data.db" "UPDATE users SET n = 4 WHERE id <= 5"
run run $J --json; expect_rc 0 "log back: run 6"
eq "log back: run 6's log complete" "$(jr 'd["sync_log"]["status"], d["sync_log"]["rows"], d["sync_log"]["pending"]')" "('complete', 5, 0)"
eq "log back: run 5's rows written now" "$(by_op 5)" "25 update confirmed"
eq "log back: run 5's summary written now" "$(summary 5)" "success|-1|0|25|0|0|175|0|complete|25"
eq "log back: the state store says run 5's log is complete" "$(sq_state "SELECT status FROM synclog_runs WHERE run_id = 5"; sq_state "SELECT count(*) FROM synclog_outbox")" "complete
0"

# ---- retention: runs older than syncLogRetentionDays go with their rows, other destinations' stay ----
OLD="2000-01-01 00:00:00"
for d in d other; do
  logq "INSERT INTO joey_sync_runs (destination, run_id, status, started_at, created, updated, deleted, unsubscribed,
    unchanged, failed, not_in_braze, requests, retries, log_status, log_rows, logged_at)
    VALUES ('$d', 0, 'success', '$OLD', 0, 1, 0, 0, 0, 0, 0, 1, 0, 'complete', 1, '$OLD')" >/dev/null
  logq "INSERT INTO joey_sync_records (destination, run_id, record_key, attempt, operation, status, logged_at)
    VALUES ('$d', 0, 'old-$d', 1, 'update', 'confirmed', '$OLD')" >/dev/null
done
rm -rf "$TMP/cfg"; config "$TMP/cfg" '{"syncLogAppId":"logdb","syncLogRetentionDays":30}'
sqlite3 "$TMP/data.db" "UPDATE users SET n = 5 WHERE id = 1"
run run $J; expect_rc 0 "retention: run 7"
eq "retention: the old run of d is gone, the other destination's stays" \
   "$(logq "SELECT record_key FROM joey_sync_records WHERE run_id = 0 ORDER BY 1"; logq "SELECT destination FROM joey_sync_runs WHERE run_id = 0")" "old-other
other"
eq "retention: recent rows stay" "$(logq "SELECT count(*) FROM joey_sync_records WHERE destination = 'd' AND run_id > 0")" "$((200 + 10 + 200 + 200 + 25 + 5 + 1))"

# ---- kill -9 mid-run: the log never says more than the state store; the next run completes it ----
sim_stop; sim_start --latency-ms 100 # slow enough that the run is still going when it is killed
export BRAZE_URL="$SIM_URL" GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
sqlite3 "$TMP/data.db" "WITH RECURSIVE s(i) AS (SELECT 201 UNION ALL SELECT i+1 FROM s WHERE i < 3000)
INSERT INTO users SELECT i, 'u' || i || '@example.com', 0 FROM s;"
state_remove "$TMP/.joey/state.db" # the simulator is new: start over with a new state store (run ids from 1 again)
logq "DELETE FROM joey_sync_records" >/dev/null; logq "DELETE FROM joey_sync_runs" >/dev/null
"$JOEY" run $J --concurrency 2 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  n=$(sq_state "SELECT count(*) FROM records" 2>/dev/null || echo 0)
  [ "${n:-0}" -ge 600 ] && break; sleep 0.02
done
kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
S=$(sq_state "SELECT count(*) FROM records WHERE confirmed_at IS NOT NULL")
L=$(logq "SELECT count(*) FROM joey_sync_records WHERE run_id = 1 AND status = 'confirmed'")
if [ "$S" -gt 0 ] && [ "$S" -lt 3000 ] && [ "$L" -le "$S" ]; then ok "kill -9: the log holds $L confirmed rows, the state store $S (never more)"
else bad "kill -9: log $L, state $S confirmed rows"; fi
if [ "$STATE_BACKEND" = postgres ]; then sq_state "SELECT key_int FROM records WHERE confirmed_at IS NOT NULL"
else sq_state "SELECT key FROM records WHERE confirmed_at IS NOT NULL"; fi | sort > "$TMP/state.keys"
logq "SELECT record_key FROM joey_sync_records WHERE run_id = 1 AND status = 'confirmed'" | sort > "$TMP/log.keys"
if [ -z "$(comm -13 "$TMP/state.keys" "$TMP/log.keys")" ]; then ok "kill -9: every key logged as confirmed is confirmed in the state store"
else bad "kill -9: keys logged but not in the state store: $(comm -13 "$TMP/state.keys" "$TMP/log.keys" | head -5)"; fi
run run $J --json; expect_rc 0 "kill -9: the next run completes"
eq "kill -9: the killed run's rows are all in the log now" "$(logq "SELECT count(*) FROM joey_sync_records WHERE run_id = 1")" "$S"
eq "kill -9: its summary says interrupted with the counts the state store committed" \
   "$(summary 1 | cut -d'|' -f1,3,9,10)" "interrupted|$S|complete|$S"
eq "kill -9: the next run logged the rest" "$(by_op 2)" "$((3000 - S)) create confirmed"
eq "kill -9: every key created exactly once over both runs" \
   "$(logq "SELECT count(*), count(DISTINCT record_key) FROM joey_sync_records WHERE operation = 'create' AND status = 'confirmed'")" "3000|3000"
eq "kill -9: no outbox row left" "$(sq_state "SELECT count(*) FROM synclog_outbox"; sq_state "SELECT status FROM synclog_runs ORDER BY run_id" | paste -sd,)" "0
complete,complete"
finish
