#!/usr/bin/env bash
# serve_killed_run.sh: a run whose process was killed (kill -9 of joey serve in the
# middle of a scheduled run, or of a `joey run`) does not stay "running" until its
# destination runs again: the next `joey serve` marks it interrupted at start, with the
# counts of what it had committed (the run row is brought up to date with every
# committed batch). A run a live process holds is left alone.
set -e
source "$(dirname "$0")/lib.bash"
N=3000
sim_start --latency-ms 150
users_db "$TMP/data.db" "$N"
users_config "$TMP/cfg/config.json" "$SIM_URL" '${BRAZE_KEY}'
# a recurring schedule runs when serve starts
cat > "$TMP/cfg/schedule.json" <<'EOF'
{"class":"Schedule","id":"hourly","name":"Hourly","sourceId":"src","recurring":true,"recurringFrequency":3600000,"incremental":false,"options":{"column":"id"}}
EOF
export BRAZE_KEY=test-key
STATE="$TMP/.joey/state.db"
q() { sqlite3 "$STATE" "$1" 2>/dev/null; }
confirmed() { q "SELECT count(*) FROM records WHERE dest_id = 'd' AND confirmed_at IS NOT NULL"; }
wait_confirmed() { # wait until at least $1 records are confirmed
  for _ in $(seq 1 200); do [ "$(confirmed || echo 0)" -ge "$1" ] 2>/dev/null && return 0; sleep 0.1; done; return 1
}
start_serve() { # start_serve LOG (one request in flight: a run takes 40 x 150 ms)
  "$JOEY" serve --config "$TMP/cfg" --state "$STATE" --listen 127.0.0.1:0 --concurrency 1 >"$1" 2>&1 &
  SERVE_PID=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$1" 2>/dev/null && return 0; sleep 0.1; done
  ERR=$(cat "$1"); bad "joey serve did not start"; return 1
}
RC=0; OUT=""; ERR=""

# ---- kill -9 of serve during its scheduled run ----
start_serve "$TMP/serve1.log"
if wait_confirmed 75; then ok "serve: the scheduled run is confirming records"; else bad "serve: no record confirmed"; fi
kill -9 "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
R=$(q "SELECT max(id) FROM runs")
C=$(confirmed)
STATUS=$(q "SELECT status FROM runs WHERE id = $R")
if [ "$STATUS" = running ]; then ok "killed serve: its run is still marked running"; else bad "killed serve: run $R is $STATUS"; fi
if [ "$C" -gt 0 ] && [ "$C" -lt "$N" ]; then ok "killed serve: $C of $N records committed"; else bad "killed serve: $C records committed"; fi

rm "$TMP/cfg/schedule.json" # the next serve starts no run of its own
start_serve "$TMP/serve2.log"
ROW=$(q "SELECT status, created, error FROM runs WHERE id = $R")
if [ "${ROW%%|*}" = interrupted ]; then ok "serve start: the killed run is marked interrupted"; else bad "serve start: run $R is \"$ROW\""; fi
CREATED=$(q "SELECT created FROM runs WHERE id = $R")
if [ "$CREATED" = "$C" ]; then ok "serve start: its counts are what it committed ($C created)"; else bad "serve start: created $CREATED, committed $C"; fi
if grep -q 'ended without finishing' "$TMP/serve2.log"; then ok "serve start: says so in its log"; else ERR=$(cat "$TMP/serve2.log"); bad "serve start: nothing logged"; fi
if [ "$(q "SELECT count(*) FROM locks")" = 0 ]; then ok "serve start: no lock left behind"; else bad "serve start: a lock is left: $(q 'SELECT * FROM locks')"; fi
kill -TERM "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true

# ---- a live run is left alone; once killed, the next serve start marks it ----
sqlite3 "$TMP/data.db" "UPDATE users SET email = 'v2.' || email"
"$JOEY" run --config "$TMP/cfg" --state "$STATE" --concurrency 1 >"$TMP/run.log" 2>&1 &
RUN_PID=$!
R2=""
for _ in $(seq 1 100); do
  R2=$(q "SELECT max(id) FROM runs WHERE status = 'running'"); [ -n "$R2" ] && break; sleep 0.1
done
wait_confirmed 1 || true
start_serve "$TMP/serve3.log"
if [ "$(q "SELECT status FROM runs WHERE id = $R2")" = running ]; then ok "serve start: a live joey run is left running"; else bad "serve start: the live run $R2 was touched"; fi
kill -TERM "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
kill -9 "$RUN_PID"; wait "$RUN_PID" 2>/dev/null || true
UPDATED=$(q "SELECT count(*) FROM records WHERE dest_id = 'd' AND payload LIKE '%v2.%'")
start_serve "$TMP/serve4.log"
ROW=$(q "SELECT status, created + updated FROM runs WHERE id = $R2")
if [ "$ROW" = "interrupted|$UPDATED" ]; then ok "serve start: the killed joey run is interrupted with its counts ($UPDATED sent)"; else bad "serve start: run $R2 is \"$ROW\" (status|created+updated), $UPDATED sent"; fi
kill -TERM "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true

# and the next run finishes the job
run run --config "$TMP/cfg" --state "$STATE"; expect_rc 0 "the next run succeeds"
sim_check "every user in Braze with the new email" "len(users) == $N and all(u['email'].startswith('v2.') for u in users.values())"
finish
