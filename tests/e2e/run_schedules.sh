#!/usr/bin/env bash
# run_schedules.sh: every Schedule counts (issue #12). A model with an incremental
# schedule on its primary source (users.updated_at) AND one on a secondary source
# (purchases.created_at): a purchase that changes nothing in `users` still re-evaluates
# its user completely (sum, count, group, subscription) on a plain `joey run`; each
# schedule keeps its own mark; a failed run keeps both marks; a new schedule without a
# mark makes one full read; a non-incremental secondary schedule means full reads.
# Runs over SQLite here and PostgreSQL/MariaDB through run_schedules_{postgres,mysql}.sh.
set -e
source "$(dirname "$0")/lib.bash"
sim_start
export BRAZE_KEY=test-key BRAZE_URL="$SIM_URL" GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
SG=11111111-2222-3333-4444-555555555555
mkdir -p "$TMP/cfg"
db_setup
sq "CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(100), name VARCHAR(100), updated_at VARCHAR(40))"
sq "CREATE TABLE purchases (id INTEGER PRIMARY KEY, user_id INTEGER, amount NUMERIC(10,2), state VARCHAR(20), created_at VARCHAR(40))"
sq "INSERT INTO users VALUES
 (1,'ann@example.com','Ann','2024-01-01T00:00:01Z'),
 (2,'bob@example.com','Bob','2024-01-01T00:00:02Z'),
 (3,'cy@example.com','Cy','2024-01-01T00:00:03Z')"
sq "INSERT INTO purchases VALUES
 (1,1,60.00,'successful','2024-01-02T00:00:01Z'),
 (2,2,10.00,'successful','2024-01-02T00:00:02Z'),
 (3,2,99.00,'failed','2024-01-02T00:00:03Z')"
config() { # config INCREMENTAL_PURCHASES: writes the config
cat > "$TMP/cfg/config.json" <<EOF2
[
 $DB_APP,
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"BRAZE_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"users_src","type":"$DB_ST-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Source","id":"purchases_src","type":"$DB_ST-import-table","appId":"db","modelId":"users","options":{"table":"purchases"},"mapping":{"user_id":"user_id"}},
 {"class":"Schedule","id":"users_schedule","sourceId":"users_src","recurring":true,"recurringFrequency":900000,"incremental":true,"options":{"column":"updated_at"}},
 {"class":"Schedule","id":"purchases_schedule","sourceId":"purchases_src","recurring":true,"recurringFrequency":900000,"incremental":$1,"options":{"column":"created_at"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"users_src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"users_src","options":{"column":"email"}},
 {"class":"Property","id":"name","type":"string","sourceId":"users_src","options":{"column":"name"}},
 {"class":"Property","id":"ltv","type":"float","sourceId":"purchases_src","options":{"column":"amount","aggregationMethod":"sum"},"filters":[{"key":"state","op":"eq","match":"successful"}]},
 {"class":"Property","id":"purchase_count","type":"integer","sourceId":"purchases_src","options":{"column":"id","aggregationMethod":"count"}},
 {"class":"Group","id":"high_value","name":"High value","modelId":"users","rules":[{"propertyId":"ltv","op":"gte","match":50}]},
 {"class":"Destination","id":"sync","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email","first_name":"name","ltv":"ltv","purchase_count":"purchase_count"},
  "destinationGroupMemberships":{"$SG":"high_value"},"options":{"maxDeletePercent":50}}
]
EOF2
}
config true
J="--config $TMP/cfg"
mark() { state_query "$TMP/.joey/state.db" "SELECT value FROM marks WHERE schedule_id = '$1'"; }

# ---- first run: no marks, a full read; both marks stored
run run $J; expect_rc 0 "first run"
sim_check "first run: 3 users" 'sorted(users) == ["1","2","3"]'
sim_check "first run: ltv and counts" 'ca("1")["ltv"] == 60 and ca("2")["ltv"] == 10 and ca("2")["purchase_count"] == 2 and ca("3")["purchase_count"] == 0'
sim_check "first run: user 1 subscribed" 'subs("1").get("'$SG'") == "subscribed" and subs("2").get("'$SG'") != "subscribed"'
[ "$(mark users_schedule)" = "2024-01-01T00:00:03Z" ] && ok "users mark stored" || bad "users mark: $(mark users_schedule)"
[ "$(mark purchases_schedule)" = "2024-01-02T00:00:03Z" ] && ok "purchases mark stored" || bad "purchases mark: $(mark purchases_schedule)"

# ---- a purchase arrives; nothing changes in users
sq "INSERT INTO purchases VALUES (4,2,45.50,'successful','2024-02-01T00:00:00Z')"
run plan $J; expect_rc 0 "plan after a purchase-only change"
expect_out 'incremental since 2024-01-01T00:00:03Z \(schedule "users_schedule"; schedule "purchases_schedule" since 2024-01-02T00:00:03Z' "plan names both schedules and marks"
expect_out 'update +1' "plan: the purchase's user is updated"
M=$(sim_mark); run run $J; expect_rc 0 "run after a purchase-only change"
SINCE=$M sim_check "only user 2 is sent" 'sorted(a["external_id"] for a in track) == ["2"]'
sim_check "user 2: ltv, count" 'ca("2")["ltv"] == 55.5 and ca("2")["purchase_count"] == 3'
sim_check "user 2 now in the group: subscribed" 'subs("2").get("'$SG'") == "subscribed"'
SINCE=$M sim_check "only the changed fields are sent" 'all(set(a) <= {"external_id","ltv","purchase_count","subscription_groups"} for a in track)'
[ "$(mark purchases_schedule)" = "2024-02-01T00:00:00Z" ] && ok "purchases mark advanced" || bad "purchases mark: $(mark purchases_schedule)"
[ "$(mark users_schedule)" = "2024-01-01T00:00:03Z" ] && ok "users mark kept (the boundary row only)" || bad "users mark: $(mark users_schedule)"

# ---- a run with nothing new sends nothing
M=$(sim_mark); run run $J; expect_rc 0 "run with no change"
SINCE=$M sim_check "no change: no track request" 'track == []'

# ---- a user change and a purchase of another user in the same run: both
sq "UPDATE users SET name='Ann!', updated_at='2024-03-01T00:00:00Z' WHERE id=1"
sq "INSERT INTO purchases VALUES (5,3,80.00,'successful','2024-03-01T00:00:01Z')"
M=$(sim_mark); run run $J; expect_rc 0 "run with changes through both sources"
SINCE=$M sim_check "users 1 and 3 sent" 'sorted(a["external_id"] for a in track) == ["1","3"]'
sim_check "user 1 renamed, user 3 in the group" 'users["1"]["first_name"] == "Ann!" and ca("3")["ltv"] == 80 and subs("3").get("'$SG'") == "subscribed"'

# ---- a purchase of a user who is not in users: no record, nothing sent, no error
sq "INSERT INTO purchases VALUES (6,99,5.00,'successful','2024-03-02T00:00:00Z')"
M=$(sim_mark); run run $J; expect_rc 0 "purchase of an unknown user"
SINCE=$M sim_check "unknown user: nothing sent" 'track == [] and "99" not in users'

# ---- a failed run keeps both marks: the change is sent by the next run
sq "INSERT INTO purchases VALUES (7,1,1.00,'successful','2024-04-01T00:00:00Z')"
BEFORE=$(mark purchases_schedule)
sim_post /_sim/faults '{"action":"row_error","external_id":"1","type":"EMAIL_BAD_FORMAT"}'
run run $J; expect_rc 1 "run with a row refused by Braze fails"
[ "$(mark purchases_schedule)" = "$BEFORE" ] && ok "failed run: purchases mark kept" || bad "failed run: mark moved to $(mark purchases_schedule)"
sim_post /_sim/faults '{"action":"clear"}'
run run $J; expect_rc 0 "next run after the failure"
sim_check "the purchase reached Braze after all" 'ca("1")["ltv"] == 61 and ca("1")["purchase_count"] == 2'

# ---- deleting a purchase is seen only when its user is read again (as in Grouparoo), or by --full
sq "DELETE FROM purchases WHERE id = 4"
run run $J; expect_rc 0 "incremental run after a purchase was deleted"
sim_check "incremental: deleted purchase not seen yet" 'ca("2")["ltv"] == 55.5'
run plan $J --full; expect_rc 0 "plan --full"
expect_out 'full read \(schedule "users_schedule"; schedule "purchases_schedule"\)' "plan --full: full read of both"
run run $J --full; expect_rc 0 "full run"
sim_check "--full: ltv without the deleted purchase, group left" 'ca("2")["ltv"] == 10 and subs("2").get("'$SG'") == "unsubscribed"'

# ---- a non-incremental secondary schedule: every run reads everything
config false
sq "UPDATE purchases SET amount = 2.00 WHERE id = 7"
run plan $J; expect_rc 0 "plan with a non-incremental purchases schedule"
expect_out 'full read \(schedule "users_schedule": schedule "purchases_schedule" is not incremental\)' "non-incremental secondary schedule: full read"
run run $J; expect_rc 0 "run with a non-incremental purchases schedule"
sim_check "an in-place update without a newer created_at is seen by the full read" 'ca("1")["ltv"] == 62'

# ---- an incremental run that lists no row keeps the mark, even when the row holding
# it was deleted (Grouparoo starts from the last run that imported a row); only a full
# read takes the marks from what it saw (found by tests/diff, seeds 144 and 198)
config true
sq "INSERT INTO users VALUES (4,'dee@example.com','Dee','2024-05-01T00:00:00Z')"
run run $J; expect_rc 0 "run with a new user"
[ "$(mark users_schedule)" = "2024-05-01T00:00:00Z" ] && ok "users mark at the new user" || bad "users mark: $(mark users_schedule)"
sq "DELETE FROM users WHERE id = 4"
M=$(sim_mark); run run $J; expect_rc 0 "incremental run after the newest user was deleted"
[ "$(mark users_schedule)" = "2024-05-01T00:00:00Z" ] && ok "no row listed: users mark kept" || bad "users mark moved back to $(mark users_schedule)"
SINCE=$M sim_check "nothing sent, user 4 not deleted yet" 'track == [] and "4" in users'
run plan $J; expect_rc 0 "plan after the deletion"
expect_out 'incremental since 2024-05-01T00:00:00Z' "plan: still since the kept mark"
run run $J --full; expect_rc 0 "full run after the deletion"
sim_check "--full: user 4 deleted" '"4" not in users'
[ "$(mark users_schedule)" = "2024-03-01T00:00:00Z" ] && ok "--full: users mark from the rows it saw" || bad "users mark after --full: $(mark users_schedule)"
finish
