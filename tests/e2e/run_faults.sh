#!/usr/bin/env bash
# run_faults.sh: `joey run` against a misbehaving Braze: 429 storms, 5xx, timeouts,
# connection resets, requests applied but unanswered, invalid JSON, responses that never
# end, per-row errors, a wrong API key. Every case converges on a later run with nothing
# lost, and failed rows are in the ledger.
set -e
source "$(dirname "$0")/lib.bash"
sim_start
export BRAZE_KEY=test-key BRAZE_URL="$SIM_URL" GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
users_db "$TMP/data.db" 200 n
users_config "$TMP/cfg/config.json" BRAZE_URL '${BRAZE_KEY}' n
J="--config $TMP/cfg --timeout 1"
bump() { sqlite3 "$TMP/data.db" "UPDATE users SET n = n + 1"; }
converged() { # every user in Braze with the source's n
  local n; n=$(sqlite3 "$TMP/data.db" "SELECT n FROM users LIMIT 1")
  sim_check "$1" 'len(users)==200 and all(ca(k).get("n")=='"$n"' for k in users)'
}

# 429 storm: waits, no failures, no attempts used
sim_post /_sim/faults '[{"endpoint":"track","status":429,"count":6,"retry_after":1}]'
run run $J --json; expect_rc 0 "429 storm: run succeeds"
python3 -c 'import json,sys; d=json.loads(sys.argv[1])["destinations"][0]; assert d["throttled"]==6 and d["counts"]["failed"]==0 and d["counts"]["created"]==200' "$OUT" \
  && ok "429 storm: 6 throttled, 0 failed" || bad "429 storm counts"
converged "429 storm: converged"

# 429s with no rate-limit header at all: joey backs off by itself (exponentially), uses
# no attempt, and converges
bump; M=$(sim_mark); sim_post /_sim/faults '[{"endpoint":"track","status":429,"count":2,"headers":false}]'
run run $J --json; expect_rc 0 "bare 429s: run succeeds"
python3 -c 'import json,sys; d=json.loads(sys.argv[1])["destinations"][0]; assert d["throttled"]==2 and d["counts"]["failed"]==0 and d["retries"]==0, d' "$OUT" \
  && ok "bare 429s: 2 throttled, no failure, no attempt used" || bad "bare 429s counts: $OUT"
SINCE=$M sim_check "bare 429s: two were answered" 'len([q for q in reqs if q["status"]==429])==2'
sim_post /_sim/faults '[{"endpoint":"track","status":429,"count":1,"headers":false}]'
H=$(curl -s -D - -o /dev/null -X POST -H 'Authorization: Bearer test-key' -H 'Content-Type: application/json' \
  "$SIM_URL/users/track" -d '{"attributes":[{"external_id":"x"}]}')
if grep -q '^HTTP/1.1 429' <<<"$H" && ! grep -qiE '^(x-ratelimit|retry-after)' <<<"$H"; then ok "bare 429s: no rate-limit header"
else bad "bare 429s: headers $H"; fi
converged "bare 429s: converged"

# 5xx then success: retried with backoff
bump; sim_post /_sim/faults '[{"endpoint":"track","status":503,"count":2},{"endpoint":"track","status":500,"count":1}]'
run run $J --json; expect_rc 0 "5xx: run succeeds"
python3 -c 'import json,sys; d=json.loads(sys.argv[1])["destinations"][0]; assert d["retries"]==3' "$OUT" && ok "5xx: 3 retries" || bad "5xx retries"
converged "5xx: converged"

# a 400 that names no row: the batch is split until the halves go through
bump; M=$(sim_mark); sim_post /_sim/faults '[{"endpoint":"track","status":400,"count":1}]'
run run $J --json; expect_rc 0 "400 without row errors: run succeeds"
SINCE=$M sim_check "400: the rejected batch was split in two and both halves went through" '[sorted(ids) for ids in [[a["external_id"] for a in q["body"]["attributes"]] for q in reqs if q["path"]=="/users/track" and q["status"]==400]]==[sorted(sum(([a["external_id"] for a in q["body"]["attributes"]] for q in reqs if q["status"]==201 and q["path"]=="/users/track" and any(b["external_id"] in [x["external_id"] for r in reqs if r["status"]==400 for x in r["body"]["attributes"]] for b in q["body"]["attributes"])), []))] and len([q for q in reqs if q["status"]==201 and q["path"]=="/users/track"])==len([q for q in reqs if q["path"]=="/users/track"])-1'
converged "400: converged"
# the fault hits whichever batch reaches the simulator first (75 or the last 50 rows), so
# the halves are told by the rejected batch's own size
SINCE=$M sim_check "400: not retried as it was; the two halves are smaller than the rejected batch" '(lambda bad: len(bad) in (50,75) and sorted(len(q["body"]["attributes"]) for q in reqs if q["path"]=="/users/track" and q["status"]==201 and any(a["external_id"] in bad for a in q["body"]["attributes"]))==[len(bad)//2, len(bad)-len(bad)//2])([x["external_id"] for r in reqs if r["path"]=="/users/track" and r["status"]==400 for x in r["body"]["attributes"]]) and max(len(q["body"]["attributes"]) for q in reqs if q["path"]=="/users/track" and q["status"]==201)<=75'

# a 400 that names its rows (Braze's answer when no object in the batch is valid): those
# rows fail with Braze's reason at once, no retry, no "unexpected HTTP 400"
bump; M=$(sim_mark)
for id in $(seq 1 75); do sim_post /_sim/faults '{"action":"row_error","external_id":"'"$id"'","type":"EMAIL_BAD_FORMAT"}' >/dev/null; done
run run $J --json; expect_rc 1 "400 naming rows: run reports the failed rows"
python3 -c 'import json,sys; d=json.loads(sys.argv[1])["destinations"][0]; c=d["counts"]; assert c["failed"]==75 and c["updated"]==125 and d["retries"]==0, d' "$OUT" \
  && ok "400 naming rows: exactly those 75 rows failed, the other 125 went out, no retries" || bad "400 naming rows counts: $OUT"
SINCE=$M sim_check "400 naming rows: each rejected batch was sent once" 'len([q for q in reqs if q["path"]=="/users/track" and q["status"]==400])==1'
run status --config "$TMP/cfg" --record 7; expect_out 'EMAIL_BAD_FORMAT' "400 naming rows: Braze's reason recorded"
expect_no 'unexpected HTTP 400' "400 naming rows: not an unexpected answer"
for id in $(seq 1 75); do sim_post /_sim/faults '{"action":"clear_row_error","external_id":"'"$id"'"}' >/dev/null; done
run run $J; expect_rc 0 "400 naming rows: next run converges"
converged "400 naming rows: nothing lost"

# timeouts, resets, unanswered-but-applied, invalid JSON, never-ending responses
bump; sim_post /_sim/faults '[{"endpoint":"track","action":"slow","delay_ms":2500,"count":1},
 {"endpoint":"track","action":"reset_connection","count":1},{"endpoint":"track","action":"apply_then_timeout","delay_ms":2500,"count":1},
 {"endpoint":"track","action":"invalid_json","count":1},{"endpoint":"track","action":"never_ending","count":1}]'
run run $J; expect_rc 0 "transport faults: run succeeds"
converged "transport faults: converged"

# 5xx past the retry budget: rows fail, stay pending, ledger says why; next run converges
bump; sim_post /_sim/faults '[{"endpoint":"track","status":500,"count":40}]'
run run $J; expect_rc 1 "5xx storm: run fails"
expect_out 'failed 200' "5xx storm: every row failed"
expect_out 'destination "d": failed' "5xx storm: Braze never answered: the run failed (not 'completed')"
run status --config "$TMP/cfg"; expect_rc 0 "status after failures"
expect_out 'HTTP 500' "status shows the last error"
expect_out 'failing records' "status lists failing records"
sim_post /_sim/faults '{"action":"clear"}'
run run $J; expect_rc 0 "5xx storm: next run converges"
converged "5xx storm: nothing lost"
run status --config "$TMP/cfg"; expect_out 'no failing records' "ledger cleared by success"

# per-row errors: only the named row fails
bump; sim_post /_sim/faults '{"action":"row_error","external_id":"7","type":"EMAIL_BAD_FORMAT"}'
run run $J; expect_rc 1 "row error: run reports failure"
expect_out 'failed 1' "row error: exactly one row failed"
expect_out 'destination "d": completed with 1 failed row' "row error: the run is 'completed with 1 failed row', not 'failed'"
run status --config "$TMP/cfg"; expect_out 'completed with 1 failed row' "row error: joey status says completed with 1 failed row"
run status --config "$TMP/cfg" --json
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); runs=[r for x in (d if isinstance(d,list) else d.get("destinations",[d])) for r in x.get("runs",[])] if not isinstance(d,dict) or "runs" not in d else d["runs"]; assert runs and runs[0]["outcome"]=="completed_with_failures" and runs[0]["status"]=="failed", d' "$OUT" \
  && ok "row error: status --json outcome completed_with_failures" || bad "row error: status --json outcome: $OUT"
run status --config "$TMP/cfg" --record 7; expect_out 'EMAIL_BAD_FORMAT' "row error: reason recorded"
sim_post /_sim/faults '{"action":"clear_row_error","external_id":"7"}'
run run $J; expect_rc 0 "row error: next run converges"
converged "row error: nothing lost"

# wrong API key: fatal, clear message, state untouched
bump
BRAZE_KEY=wrong-key run run $J; expect_rc 1 "bad key: run fails"
expect_out 'Braze rejected the API key' "bad key: message"
expect_out 'hint: check the apiKey of app "braze"' "bad key: hint"
BRAZE_KEY=wrong-key run validate --config "$TMP/cfg" --check-apps; expect_rc 1 "validate --check-apps with a bad key"
expect_err 'Braze rejected the API key of app "braze"' "check-apps names the app"
run validate --config "$TMP/cfg" --check-apps; expect_rc 0 "validate --check-apps with the right key"
run run $J; expect_rc 0 "bad key: run with the right key converges"
converged "bad key: nothing lost"
expect_no "test-key" "the API key never appears in output"
if state_contains "$TMP/.joey/state.db" "test-key"; then bad "the API key is in the state store"; else ok "the API key is not in the state store"; fi

# a delete answered 201 with a body that is not JSON confirms nothing (the simulator did
# not apply it): retried, and the user is gone; before, it counted as deleted and the
# store forgot the user while Braze kept it
sqlite3 "$TMP/data.db" "DELETE FROM users WHERE id = 200"
sim_post /_sim/faults '[{"endpoint":"delete","action":"invalid_json","status":201,"count":1}]'
run run $J --json; expect_rc 0 "unreadable delete answer: run succeeds"
python3 -c 'import json,sys; d=json.loads(sys.argv[1])["destinations"][0]; assert d["counts"]["deleted"]==1 and d["retries"]==1, d' "$OUT" \
  && ok "unreadable delete answer: retried once, then deleted" || bad "unreadable delete answer counts: $OUT"
sim_check "unreadable delete answer: the user is gone from Braze" '"200" not in users and len(users)==199'
finish
