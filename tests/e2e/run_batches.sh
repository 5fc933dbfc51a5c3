#!/usr/bin/env bash
# run_batches.sh: `joey run` writes Braze's answers to the state store in batches of
# several responses (src/engine/run.c, BATCH_ROWS / BATCH_SECONDS). While a run goes
# on, the store is read again and again from outside:
#   - answers are committed during the run (about every 0.5 s), not only at its end;
#   - a response's answers are committed whole (the store grows by whole requests);
#   - the run row's counts always say what the store holds (same transaction);
#   - only what Braze confirmed is stored: every stored user is in the simulator.
# Then a run is killed with kill -9 mid-way: the store holds a subset of what Braze has,
# with the run row's counts equal to it, and the next run sends the rest.
# Runs on SQLite and, with E2E_STATE=postgres, on PostgreSQL.
set -e
source "$(dirname "$0")/lib.bash"
N=6000 # 80 requests of 75
sim_start --latency-ms 60
users_db "$TMP/data.db" "$N"
users_config "$TMP/cfg/config.json" "$SIM_URL" '${BRAZE_KEY}'
export BRAZE_KEY=test-key
STATE="$TMP/.joey/state.db"
q() { state_query "$STATE" "$1" 2>/dev/null; }
confirmed() { q "SELECT count(*) FROM records WHERE dest_id = 'd' AND confirmed_at IS NOT NULL"; }
# poll_run PID: until PID ends, record "confirmed created" pairs of one read each
poll_run() {
  : >"$TMP/polls"
  while kill -0 "$1" 2>/dev/null; do
    q "SELECT (SELECT count(*) FROM records WHERE dest_id = 'd' AND confirmed_at IS NOT NULL),
              (SELECT created FROM runs WHERE id = (SELECT max(id) FROM runs))" | tr '|' ' ' >>"$TMP/polls" || true
    sleep 0.05
  done
}
stored_in_braze() { # every confirmed key of the store is a user in the simulator
  local col=key
  [ "$STATE_BACKEND" = postgres ] && col=key_int
  q "SELECT $col FROM records WHERE dest_id = 'd' AND confirmed_at IS NOT NULL" >"$TMP/stored"
  [ "$(wc -l <"$TMP/stored")" = "$N" ] || { echo "the store holds $(wc -l <"$TMP/stored") records"; return 1; }
  python3 - "$SIM_URL" "$TMP/stored" <<'PY'
import json, sys, urllib.request
users = {u["external_id"] for u in json.load(urllib.request.urlopen(sys.argv[1] + "/_sim/users"))["users"]}
stored = [l.strip() for l in open(sys.argv[2]) if l.strip()]
missing = [k for k in stored if k not in users]
if missing:
    sys.exit("stored but not in Braze: %s" % missing[:10])
PY
}
RC=0; OUT=""; ERR=""

# ---- a whole run, watched ----
"$JOEY" run --config "$TMP/cfg" --concurrency 2 >"$TMP/run1.out" 2>"$TMP/run1.err" &
PID=$!
poll_run $PID
wait $PID && RC=0 || RC=$?
OUT=$(cat "$TMP/run1.out"); ERR=$(cat "$TMP/run1.err")
if [ "$RC" = 0 ]; then ok "the run succeeds"; else bad "the run failed"; fi
# a store with the schema but no run row yet reads as an empty created count
awk 'NF == 1 { $2 = 0 } { print }' "$TMP/polls" >"$TMP/polls2"
MID=$(awk -v n=$N '$1 > 0 && $1 < n' "$TMP/polls2" | wc -l)
if [ "$MID" -gt 0 ]; then ok "answers are committed during the run ($MID of $(wc -l <"$TMP/polls2") reads in between)"
else bad "no answer committed before the end: $(sort -u "$TMP/polls2" | tr '\n' ';')"; fi
BADSPLIT=$(awk '$1 % 75 != 0' "$TMP/polls2" | head -3)
if [ -z "$BADSPLIT" ]; then ok "a response's answers are committed whole (the store grows by 75)"
else bad "a partial response in the store: $BADSPLIT"; fi
MISMATCH=$(awk '$1 != $2' "$TMP/polls2" | head -3)
if [ -z "$MISMATCH" ]; then ok "the run row's count is always what the store holds"
else bad "counts and records disagree (confirmed created): $MISMATCH"; fi
if [ "$(confirmed)" = "$N" ]; then ok "all $N answers stored at the end"; else bad "$(confirmed) of $N stored"; fi

# ---- kill -9 mid-run ----
sqlite3 "$TMP/data.db" "UPDATE users SET email = 'v2.' || email"
"$JOEY" run --config "$TMP/cfg" --concurrency 1 >"$TMP/run2.out" 2>&1 &
PID=$!
for _ in $(seq 1 200); do
  [ "$(q "SELECT count(*) FROM records WHERE dest_id = 'd' AND payload LIKE '%v2.%'" || echo 0)" -ge 150 ] 2>/dev/null && break
  sleep 0.05
done
kill -9 $PID; wait $PID 2>/dev/null || true
SENT=$(q "SELECT count(*) FROM records WHERE dest_id = 'd' AND payload LIKE '%v2.%'")
R=$(q "SELECT max(id) FROM runs")
if [ "$SENT" -gt 0 ] && [ "$SENT" -lt "$N" ]; then ok "killed mid-run: $SENT of $N updates stored"; else bad "killed run: $SENT stored"; fi
if [ $((SENT % 75)) = 0 ]; then ok "killed run: whole responses only"; else bad "killed run: $SENT is not whole responses"; fi
UPDATED=$(q "SELECT updated FROM runs WHERE id = $R")
if [ "$UPDATED" = "$SENT" ]; then ok "killed run: its run row counts what was stored ($SENT)"; else bad "killed run: run row says $UPDATED, store holds $SENT"; fi
if python3 - "$SIM_URL" "$TMP" <<'PY'
import json, sys, urllib.request
users = {u["external_id"]: u for u in json.load(urllib.request.urlopen(sys.argv[1] + "/_sim/users"))["users"]}
n = sum(1 for u in users.values() if u.get("email", "").startswith("v2."))
open(sys.argv[2] + "/braze_v2", "w").write(str(n))
PY
then BRAZE_V2=$(cat "$TMP/braze_v2"); fi
if [ "${BRAZE_V2:-0}" -ge "$SENT" ]; then ok "killed run: the store claims no more than Braze has ($SENT <= $BRAZE_V2)"
else bad "killed run: the store says $SENT sent, Braze has $BRAZE_V2"; fi
if [ "$STATE_BACKEND" = sqlite ]; then
  I=$(sqlite3 "$STATE" "PRAGMA integrity_check")
  if [ "$I" = ok ]; then ok "killed run: integrity_check ok"; else bad "killed run: integrity_check: $I"; fi
fi
run run --config "$TMP/cfg" --json
expect_rc 0 "the next run succeeds"
NEXT=$(python3 -c 'import json,sys; c=json.load(sys.stdin)["destinations"][0]["counts"]; print(c["updated"] + c["created"])' <<<"$OUT")
if [ "$NEXT" = $((N - SENT)) ]; then ok "the next run sends exactly what the store did not have ($NEXT)"
else bad "the next run sent $NEXT, expected $((N - SENT))"; fi
sim_check "every user in Braze with the new email" "len(users) == $N and all(u['email'].startswith('v2.') for u in users.values())"
if stored_in_braze; then ok "every stored record is in Braze"; else bad "stored records Braze does not have"; fi
finish
