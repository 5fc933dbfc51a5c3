#!/usr/bin/env bash
# run_incremental.sh: an incremental schedule (options.column high-water mark): the first
# run reads everything and stores the mark; later runs read only rows changed since the
# mark and delete nothing; `joey run --full` notices deleted rows; a failed run keeps the
# mark so the next run reads the same rows again; `joey plan` says what it would read.
set -e
source "$(dirname "$0")/lib.bash"
sim_start
export BRAZE_KEY=test-key BRAZE_URL="$SIM_URL" GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
mkdir -p "$TMP/cfg"
db_setup
sq "CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(100), name VARCHAR(100), updated_at VARCHAR(40))"
sq "INSERT INTO users VALUES
 (1,'ann@example.com','Ann','2024-01-01T00:00:01Z'),
 (2,'bob@example.com','Bob','2024-01-01T00:00:02Z'),
 (3,'cy@example.com','Cy','2024-01-01T00:00:03Z'),
 (4,'di@example.com','Di','2024-01-01T00:00:04Z'),
 (5,'ed@example.com','Ed','2024-01-01T00:00:05Z')"
cat > "$TMP/cfg/config.json" <<EOF2
[
 $DB_APP,
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"BRAZE_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"$DB_ST-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Schedule","id":"users_sched","sourceId":"src","recurring":false,"incremental":true,"options":{"column":"updated_at"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Destination","id":"sync","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email","first_name":"name"},"options":{"maxDeletePercent":50}}
]
EOF2
J="--config $TMP/cfg"
mark() { state_query "$TMP/.joey/state.db" "SELECT value FROM marks WHERE schedule_id = 'users_sched'"; }

# ---- before any run: no mark, so a full read
run plan $J; expect_rc 0 "plan before the first run"
expect_out 'model "users": full read \(schedule "users_sched": no mark yet\), 5 records read' "plan: no mark yet"

# ---- first run: full, stores the largest updated_at
run run $J; expect_rc 0 "first run"
sim_check "first run: 5 users created" 'sorted(users) == ["1","2","3","4","5"]'
expect_out 'mark now 2024-01-01T00:00:05Z' "first run stores the mark"
[ "$(mark)" = "2024-01-01T00:00:05Z" ] && ok "mark in the state store" || bad "mark in the state store: $(mark)"

# ---- 3 rows change, 1 row is deleted: incremental sends exactly the 3 updates
sq "UPDATE users SET name='Bob!', updated_at='2024-02-01T00:00:00Z' WHERE id=2; UPDATE users SET name='Cy!', updated_at='2024-02-01T00:00:00Z' WHERE id=3; UPDATE users SET name='Di!', updated_at='2024-02-01T00:00:00Z' WHERE id=4; DELETE FROM users WHERE id=1"
run plan $J; expect_rc 0 "plan after changes"
expect_out 'model "users": incremental since 2024-01-01T00:00:05Z' "plan says incremental since the mark"
expect_out 'update +3' "plan: 3 updates"
expect_out 'delete +0' "plan: no delete in an incremental plan"
expect_out '4 records read' "plan: the boundary row and the 3 changed rows are read"
run plan $J --full; expect_rc 0 "plan --full"
expect_out 'model "users": full read \(schedule "users_sched"\)' "plan --full says full read"
expect_out 'delete +1' "plan --full: the deleted row"
M=$(sim_mark); run run $J; expect_rc 0 "incremental run"
SINCE=$M sim_check "incremental: exactly the 3 updates" 'sorted(track, key=lambda a: a["external_id"])==[{"external_id":"2","first_name":"Bob!"},{"external_id":"3","first_name":"Cy!"},{"external_id":"4","first_name":"Di!"}]'
SINCE=$M sim_check "incremental: no delete" 'not [q for q in reqs if q["path"]=="/users/delete"]'
sim_check "incremental: deleted row still in Braze" '"1" in users'
expect_out 'incremental since 2024-01-01T00:00:05Z' "run says incremental"
[ "$(mark)" = "2024-02-01T00:00:00Z" ] && ok "mark advanced" || bad "mark advanced: $(mark)"

# ---- no change: only the boundary rows are read, nothing is sent
M=$(sim_mark); run run $J; expect_rc 0 "unchanged incremental run"
SINCE=$M sim_check "unchanged incremental run sends nothing" 'len(reqs)==0'

# ---- --full: the deleted row is noticed; the mark is stored again
M=$(sim_mark); run run $J --full; expect_rc 0 "full run"
SINCE=$M sim_check "full run: one delete" '[q["body"] for q in reqs if q["path"]=="/users/delete"]==[{"external_ids":["1"]}]'
SINCE=$M sim_check "full run: no updates" 'track==[]'
expect_out 'full read \(schedule "users_sched"\); mark now 2024-02-01T00:00:00Z' "full run stores the mark"

# ---- a failed run keeps the mark, so the next run reads (and sends) the row again
sq "UPDATE users SET name='Bobby', updated_at='2024-03-01T00:00:00Z' WHERE id=2"
sim_post /_sim/faults '[{"endpoint":"track","status":500,"count":40}]'
run run $J; expect_rc 1 "failing run"
expect_out 'mark unchanged' "failing run says the mark is kept"
[ "$(mark)" = "2024-02-01T00:00:00Z" ] && ok "mark kept after a failure" || bad "mark kept after a failure: $(mark)"
sim_post /_sim/faults '{"action":"clear"}'
M=$(sim_mark); run run $J; expect_rc 0 "run after the failure"
SINCE=$M sim_check "the failed row is sent again" '[a for a in track if a["external_id"]=="2"] and users["2"]["first_name"]=="Bobby"'
[ "$(mark)" = "2024-03-01T00:00:00Z" ] && ok "mark advanced after success" || bad "mark advanced after success: $(mark)"

# ---- --json reports the incremental read
run run $J --json; expect_rc 0 "json output"
python3 -c 'import json,sys; d=json.load(sys.stdin); m=d["models"][0]; assert m["schedule"]=="users_sched" and m["incremental"] and m["since"]=="2024-03-01T00:00:00Z", m' <<<"$OUT" \
  && ok "run --json lists the incremental model" || bad "run --json lists the incremental model"

# ---- the schedule's column changes: the mark was of the old column, so the next run reads
# everything (Grouparoo reset a schedule's marks when its options changed); before, the
# old column's mark was compared with the new column and the change below was skipped
sq "ALTER TABLE users ADD COLUMN changed_at VARCHAR(40)"
sq "UPDATE users SET changed_at='2024-01-15'"
sed -i 's/"options":{"column":"updated_at"}/"options":{"column":"changed_at"}/' "$TMP/cfg/config.json"
sq "UPDATE users SET name='Cyril', changed_at='2024-01-20' WHERE id=3"
run plan $J; expect_rc 0 "column changed: plan"
expect_out 'full read \(schedule "users_sched": schedule "users_sched" reads another column than its mark is of\)' \
  "column changed: plan says a full read, and why"
M=$(sim_mark); run run $J; expect_rc 0 "column changed: run"
expect_out 'full read \(schedule "users_sched"\); mark now 2024-01-20' "column changed: a full read, and the new column's mark"
SINCE=$M sim_check "column changed: the change is sent" 'users["3"]["first_name"]=="Cyril"'
[ "$(mark)" = "2024-01-20" ] && ok "column changed: the mark is the new column's" || bad "column changed: mark $(mark)"
sq "UPDATE users SET name='Cy', changed_at='2024-01-21' WHERE id=3"
run run $J; expect_rc 0 "column changed: the next run"
expect_out 'incremental since 2024-01-20' "column changed: then incremental on the new column"
sim_check "column changed: and the change after it is sent" 'users["3"]["first_name"]=="Cy"'
finish
