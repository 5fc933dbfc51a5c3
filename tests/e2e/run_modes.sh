#!/usr/bin/env bash
# run_modes.sh: `joey run` against the Braze simulator in each sync mode: create,
# update of one field, field cleared, group membership change, record leaves the group,
# record deleted from the source, record comes back, primary key change, no-op runs.
# Asserts the simulator's users and subscription states and the exact objects sent.
# E2E_BACKEND=postgres|mysql runs the same scenarios against a real server (the
# run_modes_<backend>.sh wrappers); the default is SQLite.
set -e
source "$(dirname "$0")/lib.bash"
sim_start
export BRAZE_KEY=test-key BRAZE_URL="$SIM_URL" GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
SG=11111111-2222-4333-8444-555555555555
mkdir -p "$TMP/cfg"
db_setup
sq "CREATE TABLE users (id INTEGER PRIMARY KEY, email VARCHAR(100), name VARCHAR(100), vip INTEGER, score DOUBLE PRECISION)"
sq "INSERT INTO users VALUES (1,'ann@example.com','Ann',1,7.5),(2,'bob@example.com','Bob',0,2),(3,'cy@example.com','Cy',1,NULL)"
cat > "$TMP/cfg/config.json" <<EOF2
[
 $DB_APP,
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"BRAZE_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"$DB_ST-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Property","id":"vip","type":"boolean","sourceId":"src","options":{"column":"vip"}},
 {"class":"Property","id":"score","type":"float","sourceId":"src","options":{"column":"score"}},
 {"class":"Group","id":"vips","name":"VIPs","modelId":"users","rules":[{"propertyId":"vip","op":"eq","match":true}]},
 {"class":"Destination","id":"sync","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email","first_name":"name","score":"score"},
  "destinationGroupMemberships":{"$SG":"vips","VIP":"vips"},"options":{"maxDeletePercent":50}},
 {"class":"Destination","id":"additive","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"additive","collection":"group","groupId":"vips",
  "mapping":{"external_id":"user_id","vip_email":"email"},"destinationGroupMemberships":{"$SG":"vips"},"options":{"maxDeletePercent":100}},
 {"class":"Destination","id":"enrich","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"enrich","collection":"model",
  "mapping":{"external_id":"user_id","enriched_score":"score"}}
]
EOF2
J="--config $TMP/cfg"

# ---- sync: first run creates everyone with all mapped fields and subscriptions
run run $J --destination sync;  expect_rc 0 "sync: first run"
sim_check "sync: 3 users created" 'sorted(users) == ["1","2","3"]'
sim_check "sync: fields of a new user" 'users["1"]["email"]=="ann@example.com" and users["1"]["first_name"]=="Ann" and ca("1")["score"]==7.5'
sim_check "sync: a null field is sent as null on the first export (as Grouparoo; Braze may hold an old value)" '[a.get("score", "absent") for a in track if a["external_id"]=="3"] == [None]'
sim_check "sync: VIP subscribed, non-VIP not" 'subs("1")["'$SG'"]=="subscribed" and "'$SG'" not in subs("2")'
sim_check "sync: groups attribute holds the group" 'ca("1")["groups"]==["VIP"] and "groups" not in ca("2")'
sim_check "sync: one batch for three users" 'len([q for q in reqs if q["path"]=="/users/track"])==1'

# ---- no change: no request at all
M=$(sim_mark); run run $J --destination sync; expect_rc 0 "sync: unchanged run"
SINCE=$M sim_check "sync: unchanged run sends nothing" 'len(reqs)==0'

# ---- one field changes: only that field is sent
sq "UPDATE users SET name='Annie' WHERE id=1"
M=$(sim_mark); run run $J --destination sync; expect_rc 0 "sync: update run"
SINCE=$M sim_check "sync: only the changed field is sent" 'track==[{"external_id":"1","first_name":"Annie"}]'
sim_check "sync: Braze has the new value" 'users["1"]["first_name"]=="Annie" and users["1"]["email"]=="ann@example.com"'

# ---- a field becomes empty: sent as null, removed in Braze
sq "UPDATE users SET score=NULL WHERE id=1"
M=$(sim_mark); run run $J --destination sync
SINCE=$M sim_check "sync: cleared field sent as null" 'track==[{"external_id":"1","score":None}]'
sim_check "sync: cleared field gone in Braze" '"score" not in ca("1")'

# ---- group membership changes: subscription and groups attribute follow
sq "UPDATE users SET vip=0 WHERE id=1; UPDATE users SET vip=1 WHERE id=2"
M=$(sim_mark); run run $J --destination sync; expect_rc 0 "sync: membership run"
sim_check "sync: leaver unsubscribed" 'subs("1")["'$SG'"]=="unsubscribed" and ca("1").get("groups",[])==[]'
sim_check "sync: joiner subscribed" 'subs("2")["'$SG'"]=="subscribed" and ca("2")["groups"]==["VIP"]'
SINCE=$M sim_check "sync: membership changes cost no attribute fields" 'all(set(a)<= {"external_id","groups","subscription_groups"} for a in track)'

# ---- deleted from the source: deleted in Braze
sq "DELETE FROM users WHERE id=3"
M=$(sim_mark); run run $J --destination sync; expect_rc 0 "sync: delete run"
SINCE=$M sim_check "sync: one delete request" '[q["body"] for q in reqs if q["path"]=="/users/delete"]==[{"external_ids":["3"]}]'
sim_check "sync: user 3 gone" '"3" not in users'

# ---- the record comes back: created again with all its fields
sq "INSERT INTO users VALUES (3,'cy@example.com','Cy',1,4.5)"
run run $J --destination sync; expect_rc 0 "sync: comeback run"
sim_check "sync: user 3 back" 'users["3"]["first_name"]=="Cy" and ca("3")["score"]==4.5 and subs("3")["'$SG'"]=="subscribed"'

# ---- primary key change: a new record and a delete of the old one
sq "UPDATE users SET id=30 WHERE id=3"
M=$(sim_mark); run run $J --destination sync; expect_rc 0 "sync: key change run"
sim_check "sync: key change creates 30 and deletes 3" '"30" in users and "3" not in users and users["30"]["email"]=="cy@example.com"'

# ---- additive: only the group's members; leavers keep their profile but are unsubscribed
run run $J --destination additive; expect_rc 0 "additive: first run"
sim_check "additive: members got vip_email" 'ca("2")["vip_email"]=="bob@example.com" and ca("30")["vip_email"]=="cy@example.com" and "vip_email" not in ca("1")'
sq "UPDATE users SET vip=0 WHERE id=2"
M=$(sim_mark); run run $J --destination additive; expect_rc 0 "additive: leaver run"
sim_check "additive: leaver kept in Braze" '"2" in users and ca("2")["vip_email"]=="bob@example.com"'
sim_check "additive: leaver unsubscribed" 'subs("2")["'$SG'"]=="unsubscribed"'
SINCE=$M sim_check "additive: no delete request" 'not any(q["path"]=="/users/delete" for q in reqs)'
sq "DELETE FROM users WHERE id=30"
M=$(sim_mark); run run $J --destination additive; expect_rc 0 "additive: source delete run"
sim_check "additive: record deleted from the source is kept, unsubscribed" '"30" in users and subs("30")["'$SG'"]=="unsubscribed"'
run run $J --destination additive; expect_rc 0 "additive: settled"
sq "INSERT INTO users VALUES (30,'cy@example.com','Cy',1,4.5)"
run run $J --destination additive; expect_rc 0 "additive: comeback"
sim_check "additive: returning member subscribed again" 'subs("30")["'$SG'"]=="subscribed"'

# ---- enrich: updates only users Braze has; learns about users Braze gains later
sq "INSERT INTO users VALUES (4,'dee@example.com','Dee',0,9.25)"
M=$(sim_mark); run run $J --destination enrich; expect_rc 0 "enrich: first run"
sim_check "enrich: user 4 not created" '"4" not in users'
SINCE=$M sim_check "enrich: existence checked with /users/export/ids" 'any(q["path"]=="/users/export/ids" for q in reqs)'
SINCE=$M sim_check "enrich: every object guarded" 'all(a.get("_update_existing_only") is True for a in track) and len(track)>0'
sim_check "enrich: existing user enriched" 'ca("1").get("enriched_score") is None and ca("2")["enriched_score"]==2'
sim_post /_sim/users '{"users":[{"external_id":"4","email":"dee@example.com"}]}'
# a day later (enrichRecheckHours, default 24: user 4 is not looked up again before)
M=$(sim_mark); JOEY_NOW=$(( ($(date +%s) + 25 * 3600) * 1000 )) run run $J --destination enrich; expect_rc 0 "enrich: second run"
sim_check "enrich: user created in Braze later is enriched" 'ca("4")["enriched_score"]==9.25'
run status $J --destination enrich --record 4; expect_rc 0 "status --record"
expect_out 'last confirmed by Braze' "status shows what was sent"
expect_out 'enriched_score' "status shows the payload"
# a key the model cannot have (integer keys) is a usage error, not "nothing sent" with exit 0
run status $J --destination enrich --record abc; expect_rc 2 "status --record: not an integer key"
expect_err 'is not a record key' "status --record: says why"
run status $J --destination enrich --record abc --json; expect_rc 2 "status --record --json: not an integer key"
finish
