#!/usr/bin/env bash
# run_guard.sh: the mass-delete guard of `joey run`, which counts the destination's
# records during the pass (no scan before it) and holds every delete until the pass is
# over: it trips and does not trip as documented, weighs deletes against the records
# before the run (not after this run's creates), sends no delete when it trips, and a
# run killed while its deletes are held loses nothing.
set -e
source "$(dirname "$0")/lib.bash"
sim_start --latency-ms 20
export BRAZE_KEY=test-key BRAZE_URL="$SIM_URL" GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
users_db "$TMP/data.db" 200 n
users_config "$TMP/cfg/config.json" BRAZE_URL '${BRAZE_KEY}' n
J="--config $TMP/cfg"
STATE="$TMP/.joey/state.db"
deletes() { python3 - "$SIM_URL" "${1:-0}" <<'PY'
import json, sys, urllib.request
r = json.load(urllib.request.urlopen(sys.argv[1] + "/_sim/requests?since=" + sys.argv[2]))
print(sum(len(q["body"].get("external_ids", [])) for q in r["requests"] if q.get("path") == "/users/delete"))
PY
}
in_braze() { python3 - "$SIM_URL" <<'PY'
import json, sys, urllib.request
print(len(json.load(urllib.request.urlopen(sys.argv[1] + "/_sim/users"))["users"]))
PY
}
said() { # said TEXT NAME: the run's output (stdout) says TEXT, as is
  if grep -qF -- "$1" <<<"$OUT"; then ok "$2"; else bad "$2: stdout lacks \"$1\""; fi
}
records() { state_query "$STATE" "SELECT count(*) FROM records WHERE in_scope"; }
KEYCOL=key; [ "$STATE_BACKEND" = postgres ] && KEYCOL=key_int

run run $J; expect_rc 0 "first sync of 200 users"
[ "$(in_braze)" = 200 ] && ok "Braze has the 200 users" || bad "Braze has $(in_braze) users, not 200"

# 30 of 200 gone (15%), 5 others changed: over the 10% default
sqlite3 "$TMP/data.db" "DELETE FROM users WHERE id <= 30; UPDATE users SET n = 1 WHERE id BETWEEN 31 AND 35"
M=$(sim_mark)
run run $J
expect_rc 1 "15% deleted: the guard trips"
said 'refusing to delete 30 of 200 records (15.0%) of destination "d"' "the guard's message, weighed against the 200 records"
said "the mass-delete guard allows at most 10% per run; creates and updates were sent" "the guard's detail"
[ "$(deletes "$M")" = 0 ] && ok "tripped: no delete sent" || bad "tripped: $(deletes "$M") deletes sent"
SINCE=$M sim_check "tripped: the 5 updates were sent" 'len([a for a in track if a.get("n") == 1]) == 5'
[ "$(records)" = 200 ] && ok "tripped: the state still has the 200 records" || bad "tripped: state has $(records) records"
run status $J
expect_out "failed" "the run history says the run failed"

# --force lets them through; the count of the next run is the 170 left
run run $J --force; expect_rc 0 "--force: the deletes go"
[ "$(in_braze)" = 170 ] && ok "--force: Braze has 170 users" || bad "--force: Braze has $(in_braze) users"

# 10 of 170 (5.9%): under the limit, sent without --force
sqlite3 "$TMP/data.db" "DELETE FROM users WHERE id <= 40"
M=$(sim_mark)
run run $J; expect_rc 0 "5.9% deleted: the guard does not trip"
[ "$(deletes "$M")" = 10 ] && ok "not tripped: the 10 deletes were sent" || bad "not tripped: $(deletes "$M") deletes sent"
[ "$(records)" = 160 ] && ok "not tripped: the state has 160 records" || bad "not tripped: state has $(records) records"

# The guard weighs against the records before the run. 20 of 160 gone (12.5%) while 800
# new users arrive in the same run: counted after this run's creates it would be 20 of
# 940 (2.1%) and pass; the count taken during the pass is the 160 before the run.
sqlite3 "$TMP/data.db" "DELETE FROM users WHERE id <= 60;
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 800)
INSERT INTO users SELECT 1000 + i, 'new' || i || '@example.com', 0 FROM s;"
M=$(sim_mark)
run run $J
expect_rc 1 "creates in the same run do not dilute the guard"
said 'refusing to delete 20 of 160 records (12.5%) of destination "d"' "weighed against the 160 records before the run"
[ "$(deletes "$M")" = 0 ] && ok "no delete sent beside the creates" || bad "$(deletes "$M") deletes sent beside the creates"
[ "$(in_braze)" = 960 ] && ok "the 800 creates were sent" || bad "Braze has $(in_braze) users, not 960"

# --max-delete-percent and the plan agree with the run
run plan $J --max-delete-percent 50 --json
said '"tripped":false' "plan: under a 50% limit the guard holds nothing"
run run $J --max-delete-percent 50; expect_rc 0 "run: under a 50% limit the deletes go"
[ "$(in_braze)" = 940 ] && ok "Braze has 940 users" || bad "Braze has $(in_braze) users, not 940"

# An incremental run (a schedule's mark) reads only the changed rows and does not count
# the state before the pass (its cost stays the changes'): it counts after the pass, and
# only when it took someone out. Users leaving a group-scoped destination are deletes
# weighed against the records before the run; `joey plan --json` says "state_records":
# null when an incremental pass takes no one out (nothing was counted).
mkdir -p "$TMP/inc"
sqlite3 "$TMP/inc/data.db" "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, n INTEGER, updated_at INTEGER);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 200)
INSERT INTO users SELECT 5000 + i, 'g' || i || '@example.com', 1, 1 FROM s;"
mkdir -p "$TMP/inc/cfg"
cat > "$TMP/inc/cfg/config.json" <<CFG
[
 {"class":"App","id":"db","type":"sqlite","options":{"file":"data.db"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"$SIM_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"sqlite-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Property","id":"n","type":"integer","sourceId":"src","options":{"column":"n"}},
 {"class":"Group","id":"ones","name":"Ones","modelId":"users","rules":[{"propertyId":"n","op":"eq","match":1}]},
 {"class":"Schedule","id":"g_sched","sourceId":"src","recurring":false,"incremental":true,"options":{"column":"updated_at"}},
 {"class":"Destination","id":"g","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"group","groupId":"ones",
  "mapping":{"external_id":"user_id","email":"email"}}
]
CFG
JI="--config $TMP/inc/cfg"
ginbraze() { python3 - "$SIM_URL" <<'PY'
import json, sys, urllib.request
print(sum(1 for u in json.load(urllib.request.urlopen(sys.argv[1] + "/_sim/users"))["users"] if int(u["external_id"]) > 5000))
PY
}
run run $JI; expect_rc 0 "incremental: the first (full) run"
[ "$(ginbraze)" = 200 ] && ok "incremental: Braze has the 200 group users" || bad "incremental: Braze has $(ginbraze) of them"
sqlite3 "$TMP/inc/data.db" "UPDATE users SET email = 'x' || email, updated_at = 2 WHERE id <= 5003"
run plan $JI --json
said '"incremental":true' "incremental: the plan is incremental"
said '"state_records":null' "incremental, no one taken out: the plan did not count the state"
run run $JI; expect_rc 0 "incremental: 3 updates"
sqlite3 "$TMP/inc/data.db" "UPDATE users SET n = 2, updated_at = 3 WHERE id BETWEEN 5011 AND 5040"
run plan $JI --json
said '"state_records":200' "incremental, 30 leave the group: the plan counts the 200 records"
said '"tripped":true' "incremental: the plan says the guard would trip"
M=$(sim_mark)
run run $JI
expect_rc 1 "incremental: 30 of 200 leave the group (15%): the guard trips"
said 'refusing to delete 30 of 200 records (15.0%) of destination "g"' "incremental: weighed against the 200 records before the run"
[ "$(deletes "$M")" = 0 ] && ok "incremental, tripped: no delete sent" || bad "incremental, tripped: $(deletes "$M") deletes sent"
sqlite3 "$TMP/inc/data.db" "UPDATE users SET n = 1, updated_at = 4 WHERE id BETWEEN 5011 AND 5030"
M=$(sim_mark)
run run $JI; expect_rc 0 "incremental: 10 of 200 leave (5%): the guard does not trip"
[ "$(deletes "$M")" = 10 ] && ok "incremental, not tripped: the 10 deletes were sent" || bad "incremental, not tripped: $(deletes "$M") deletes sent"
[ "$(ginbraze)" = 190 ] && ok "incremental: Braze has 190 group users" || bad "incremental: Braze has $(ginbraze) of them"

# A run killed while its deletes are held loses nothing: slow Braze, a few deletes
# (under the guard) and many updates; kill -9 once the updates are being sent, before
# the pass is over. No delete reached Braze, the state still has those records, and the
# next run deletes them.
sim_stop
sim_start --latency-ms 150
export BRAZE_URL="$SIM_URL" GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
run run $J --force; expect_rc 0 "the new simulator holds the source"
sqlite3 "$TMP/data.db" "DELETE FROM users WHERE id BETWEEN 61 AND 65; UPDATE users SET n = n + 7"
M=$(sim_mark)
"$JOEY" run $J --concurrency 1 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 1 400); do [ "$(sim_mark)" -gt "$M" ] && break; kill -0 "$pid" 2>/dev/null || break; sleep 0.01; done
sleep 0.3
if kill -9 "$pid" 2>/dev/null; then ok "killed mid-run"; else bad "the run ended before the kill"; fi
wait "$pid" 2>/dev/null || true
[ "$(deletes "$M")" = 0 ] && ok "killed while held: no delete reached Braze" || bad "killed while held: $(deletes "$M") deletes sent"
n=$(state_query "$STATE" "SELECT count(*) FROM records WHERE in_scope AND $KEYCOL IN (61, 62, 63, 64, 65)")
[ "$n" = 5 ] && ok "killed while held: the state still has the 5 records" || bad "killed while held: state has $n of them"
run run $J; expect_rc 0 "the next run completes"
python3 - "$TMP/data.db" "$SIM_URL" <<'PY' && ok "Braze equals the source after the kill" || bad "Braze differs from the source after the kill"
import json, sqlite3, sys, urllib.request
rows = {str(i): n for i, n in sqlite3.connect(sys.argv[1]).execute("SELECT id, n FROM users")}
users = {u["external_id"]: u for u in json.load(urllib.request.urlopen(sys.argv[2] + "/_sim/users"))["users"]}
sys.exit(0 if set(rows) == set(users) and all(users[k].get("custom_attributes", {}).get("n") == n for k, n in rows.items()) else 1)
PY
finish
