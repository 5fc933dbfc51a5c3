#!/usr/bin/env bash
# braze_unreachable.sh: the circuit breaker of the Braze connector. When Braze cannot
# be reached (nothing listens on restEndpoint's port; the simulator killed in the
# middle of a run), the destination stops with one error, "Braze unreachable", after
# one batch's retries, instead of every remaining batch going through its five
# attempts (92 s for 50 batches) and writing one identical ledger row per record. What
# was not confirmed stays unconfirmed, and the next run sends it.
set -e
source "$(dirname "$0")/lib.bash"
N=3750 # 50 batches of 75
users_db "$TMP/data.db" "$N"
write_config() { users_config "$TMP/cfg/config.json" "$1" '${BRAZE_KEY}'; } # write_config URL
export BRAZE_KEY=test-key
STATE="$TMP/.joey/state.db"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
last_run() { state_query "$STATE" "SELECT max(id) FROM runs"; }
ledger_rows() { state_query "$STATE" "SELECT count(*) FROM ledger WHERE run_id = $1"; }
confirmed() { state_query "$STATE" "SELECT count(*) FROM records WHERE dest_id = 'd' AND confirmed_at IS NOT NULL"; }
timed_run() { local t0; t0=$(date +%s.%N); run run --config "$TMP/cfg" "$@"; ELAPSED=$(python3 -c "print(round($(date +%s.%N) - $t0, 1))"); }
within() { # within SECONDS NAME
  if python3 -c "import sys; sys.exit(0 if $ELAPSED < $1 else 1)"; then ok "$2 (${ELAPSED} s)"; else bad "$2: took ${ELAPSED} s, over $1 s"; fi
}

# ---- nothing listens on the port ----
PORT=$(free_port)
write_config "http://127.0.0.1:$PORT"
timed_run --json
expect_rc 1 "no listener: run fails"
within 30 "no listener: the run stops after one batch's retries"
python3 -c '
import json, sys
d = json.loads(sys.argv[1])["destinations"][0]
assert d["status"] == "failed", d
assert d["error"]["message"].startswith("Braze unreachable"), d["error"]
assert d["counts"]["failed"] == 0, d["counts"]
' "$OUT" && ok "no listener: one error, Braze unreachable, no record counted failed" || bad "no listener: the run's answer"
R=$(last_run)
L=$(ledger_rows "$R")
if [ "$L" = 1 ]; then ok "no listener: one ledger row, not one per record"; else bad "no listener: $L ledger rows for run $R"; fi
C=$(confirmed)
if [ "$C" = 0 ]; then ok "no listener: nothing confirmed"; else bad "no listener: $C records confirmed"; fi
run status --config "$TMP/cfg"; expect_out 'Braze unreachable' "no listener: status shows the error"

# ---- the simulator dies in the middle of a run ----
sim_start --latency-ms 100 --log-file "$TMP/sim.log"
SIM_PORT=${SIM_URL##*:}
write_config "$SIM_URL"
( sleep 1.5; kill -9 "$SIM_PID" ) &
KILLER=$!
timed_run --json --concurrency 2
wait "$KILLER" || true
expect_rc 1 "simulator killed: run fails"
within 40 "simulator killed: the run stops after one batch's retries"
python3 -c '
import json, sys
d = json.loads(sys.argv[1])["destinations"][0]
assert d["error"]["message"].startswith("Braze unreachable"), d["error"]
assert 0 < d["counts"]["created"] < '"$N"', d["counts"]
' "$OUT" && ok "simulator killed: Braze unreachable after some records were confirmed" || bad "simulator killed: the run's answer"
R=$(last_run)
L=$(ledger_rows "$R")
if [ "$L" = 1 ]; then ok "simulator killed: one ledger row, not one per record"; else bad "simulator killed: $L ledger rows for run $R"; fi
# what the state store says Braze has, Braze answered 201 for
state_query "$STATE" "SELECT key FROM records WHERE dest_id = 'd' AND confirmed_at IS NOT NULL ORDER BY key" > "$TMP/confirmed"
python3 - "$TMP/sim.log" "$TMP/confirmed" <<'PY' && ok "simulator killed: every confirmed record had a 201 from Braze" || bad "simulator killed: a record is confirmed that Braze never answered"
import json, sys
answered = set()
for line in open(sys.argv[1]):
    q = json.loads(line)
    if q["path"] == "/users/track" and q["status"] == 201:
        answered.update(a["external_id"] for a in q["body"]["attributes"])
confirmed = set(open(sys.argv[2]).read().split())
missing = confirmed - answered
assert confirmed and not missing, (len(confirmed), sorted(missing)[:10])
PY

# the next run (Braze back, empty) gets exactly what was not confirmed
sim_start --port "$SIM_PORT"
run run --config "$TMP/cfg" --json; expect_rc 0 "Braze back: the next run succeeds"
sim_check "Braze back: the next run sent every record not confirmed before, and only those" \
  "sorted(users) == sorted(set(str(i) for i in range(1, $N + 1)) - set(open('$TMP/confirmed').read().split()))"
C=$(confirmed)
if [ "$C" = "$N" ]; then ok "Braze back: every record confirmed"; else bad "Braze back: $C of $N confirmed"; fi
finish
