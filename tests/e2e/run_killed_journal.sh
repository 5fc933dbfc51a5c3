#!/usr/bin/env bash
# run_killed_journal.sh: after a kill -9, the next run re-sends only what the killed run
# may have sent. Before each request that may change Braze, joey writes its keys to the
# run's sent-keys journal (beside an SQLite store, <store>-sent-<run id>; for a
# PostgreSQL store in $XDG_STATE_HOME/joey, pg-<store>-sent-<run id>); the next run
# makes only those records pending (state_runs_abandon), not every record of the
# destination. When the journal cannot be trusted (missing, written on another boot,
# for another start of the run, not a journal) it falls back to every record, as before.
# Runs on SQLite and, with E2E_STATE=postgres (state_pg_run_killed_journal.sh), on
# PostgreSQL (there without the import case, which copies the SQLite file).
set -e
source "$(dirname "$0")/lib.bash"
export XDG_STATE_HOME="$TMP/xdg"
journals() { # the journals there are now, one per line
  if [ "$STATE_BACKEND" = postgres ]; then ls "$XDG_STATE_HOME"/joey/pg-*-sent-* 2>/dev/null || true
  else ls "$STATE"-sent-* 2>/dev/null || true; fi
}
sim_start
N=300
users_db "$TMP/data.db" $N n
users_config "$TMP/cfg/config.json" "$SIM_URL" test-key n
J="--config $TMP/cfg"
STATE="$TMP/.joey/state.db"
ROUND=0

run run $J; expect_rc 0 "first run"
sim_check "first run: every user in Braze" "len(users) == $N"

# kill_mid_run: users 2 and 250 change; Braze applies the one request and holds its
# answer until joey is killed
kill_mid_run() {
  ROUND=$((ROUND + 1))
  sqlite3 "$TMP/data.db" "UPDATE users SET n = $ROUND WHERE id IN (2, 250)"
  run_killed_when 'ca("2").get("n") == '$ROUND' and ca("250").get("n") == '$ROUND $J \
    && ok "$1: Braze applied the request before the kill" || bad "$1: Braze never got it"
  JOURNAL=$(journals | head -1)
  [ -n "$JOURNAL" ] && ok "$1: the killed run left its journal" || bad "$1: no journal"
  # back as confirmed: only the journal says the killed run touched them
  sqlite3 "$TMP/data.db" "UPDATE users SET n = 0 WHERE id IN (2, 250)"
}
# next_run NAME RESENT: the next run re-sends RESENT records in full and Braze has the source
next_run() {
  run run $J --json; expect_rc 0 "$1: the next run succeeds"
  expect_err "ended without finishing" "$1: the killed run is noticed"
  python3 -c 'import json,sys; c=json.loads(sys.argv[1])["destinations"][0]["counts"]; assert c["updated"]=='$2' and c["unchanged"]=='$((N - $2))', c' "$OUT" \
    && ok "$1: $2 records re-sent in full, the others unchanged" || bad "$1: counts $OUT"
  local n; n=$(sqlite3 "$TMP/data.db" "SELECT n FROM users WHERE id = 2")
  sim_check "$1: Braze has the source's values again" 'ca("2").get("n") == '$n' and ca("250").get("n") == '$n
  [ -z "$(journals)" ] && ok "$1: no journal left" || bad "$1: journals left: $(journals)"
  run run $J --json; expect_rc 0 "$1: then a run with nothing to do"
  python3 -c 'import json,sys; c=json.loads(sys.argv[1])["destinations"][0]["counts"]; assert c["unchanged"]=='$N', c' "$OUT" \
    && ok "$1: then every record unchanged" || bad "$1: then counts $OUT"
}

kill_mid_run "journal"
next_run "journal" 2

# a cut last entry (the process died while writing it) is skipped; the rest is trusted
kill_mid_run "cut entry"
printf 't\144\0\0\0abc' >>"$JOURNAL"
next_run "cut entry" 2

# no journal (removed, never written): every record, as before journals
kill_mid_run "no journal"
rm -f "$JOURNAL"
next_run "no journal" $N

# written on another boot: the page cache a crash emptied may have lost its end
kill_mid_run "another boot"
sed -i '2s/^boot .*/boot 00000000-0000-4000-8000-000000000000/' "$JOURNAL"
next_run "another boot" $N

# not a journal joey wrote
kill_mid_run "garbage"
printf 'x' >>"$JOURNAL"
next_run "garbage" $N

# a journal of another start of the run (another store's run of the same id) is not this run's
kill_mid_run "older"
sed -i '4s/^at .*/at 1000/' "$JOURNAL"
next_run "older" $N

# a journal of another store's run of the same id that started later: the store is
# replaced by an import of a copy whose run of that id (killed after Braze applied
# user 7's change) started before this store's own killed run (users 2 and 250).
# The journal is this store's run's, not the imported run's: every record. (Trusted
# when not older than the run, it re-sent 2 and Braze kept user 7's value.)
kill_copy_run() {
  ROUND=$((ROUND + 1))
  sqlite3 "$TMP/data.db" "UPDATE users SET n = $ROUND WHERE id = 7"
  run_killed_when 'ca("7").get("n") == '$ROUND $J --state "$COPY" \
    && ok "imported: Braze applied the copy's request" || bad "imported: Braze never got it"
  sqlite3 "$TMP/data.db" "UPDATE users SET n = 0 WHERE id = 7"
}
if [ "$STATE_BACKEND" = sqlite ]; then
  COPY="$TMP/copy.db"
  sqlite3 "$STATE" ".backup '$COPY'"
  kill_copy_run
  kill_mid_run "imported"
  "$JOEY" state export --state "$COPY" >"$TMP/copy.export" 2>/dev/null &&
    "$JOEY" state import --replace --state "$STATE" "$TMP/copy.export" 2>/dev/null &&
    ok "imported: the copy replaced the store" || bad "imported: the import failed"
  rm -f "$COPY" "$COPY"-*
  next_run "imported" $N
  sim_check "imported: Braze has user 7's source value again" 'ca("7").get("n") == 0'
fi

# a journal that cannot be written (a read-only directory) is not needed for a run
# that ends: the run goes on without it, with a warning
JDIR="$TMP/.joey"
[ "$STATE_BACKEND" = postgres ] && JDIR="$XDG_STATE_HOME/joey"
chmod a-w "$JDIR"
sqlite3 "$TMP/data.db" "UPDATE users SET n = n + 100 WHERE id = 7"
run run $J --json
chmod u+w "$JDIR"
if [ "$(id -u)" = 0 ]; then
  ok "read-only directory: skipped as root (root writes anyway)"
else
  expect_rc 0 "read-only directory: the run succeeds"
  expect_err "sent-keys journal" "read-only directory: the warning names the journal"
fi

finish
