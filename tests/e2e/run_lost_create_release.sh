#!/usr/bin/env bash
# run_lost_create_release.sh: Additive and Enrich modes, a create (or enrich update)
# whose answer was lost, then the record leaves the scope before a run succeeds. Braze
# may have applied it (a timeout), with the record's groups: the release must remove
# them if Braze has the user, and must not create a user Braze does not have. Before,
# nothing was sent (the state row was only a placeholder), and Braze kept the groups of
# a record that had left for good. Runs on SQLite and, with E2E_STATE=postgres, on
# PostgreSQL. The destination keeps the default mass-delete guard (10%): the release of
# a placeholder is not weighed by it (one lost create that left was "100%" of this
# destination's one confirmed user, and refused).
set -e
source "$(dirname "$0")/lib.bash"
sim_start
SG=11111111-2222-4333-8444-555555555555
mkdir -p "$TMP/cfg"
sqlite3 "$TMP/data.db" "CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT, vip INTEGER, tier TEXT);
  INSERT INTO users VALUES ('1', 'Ann', 0, NULL);"
config() { # config MODE
  cat >"$TMP/cfg/config.json" <<JSON
[
 {"class":"App","id":"db","type":"sqlite","options":{"file":"$TMP/data.db"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"test-key","restEndpoint":"$SIM_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"sqlite-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"string","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Property","id":"vip","type":"boolean","sourceId":"src","options":{"column":"vip"}},
 {"class":"Property","id":"tier","type":"string","sourceId":"src","options":{"column":"tier"}},
 {"class":"Group","id":"vips","name":"VIPs","modelId":"users","rules":[{"propertyId":"vip","op":"eq","match":true}]},
 {"class":"Group","id":"gold","name":"Gold","modelId":"users","rules":[{"propertyId":"tier","op":"eq","match":"gold"}]},
 {"class":"Destination","id":"dest","name":"Braze","type":"braze-export-users","appId":"braze","modelId":"users",
  "syncMode":"$1","collection":"model","mapping":{"external_id":"user_id","first_name":"name"},
  "destinationGroupMemberships":{"$SG":"vips","Gold":"gold"}}
]
JSON
}
J="--config $TMP/cfg --timeout 1"
sq() { sqlite3 "$TMP/data.db" "$1"; }
lose_answers() { # Braze applies every track and subscription request and its answer is lost
  sim_post /_sim/faults '[{"endpoint":"track","action":"apply_then_timeout","delay_ms":2500,"count":5},
   {"endpoint":"subscription","action":"apply_then_timeout","delay_ms":2500,"count":5}]'
}
drop_requests() { # every track and subscription request is lost before Braze applies it
  sim_post /_sim/faults '[{"endpoint":"track","action":"reset_connection","count":5},
   {"endpoint":"subscription","action":"reset_connection","count":5}]'
}
clear_faults() { sim_post /_sim/faults '{"action":"clear"}'; }

config additive
run run $J; expect_rc 0 "additive: first run"

# a new VIP, Gold user 2 is created but every answer is lost (Braze applied it)
sq "INSERT INTO users VALUES ('2', 'Bob', 1, 'gold')"
lose_answers
run run $J; expect_rc 1 "additive, lost create: the run reports the failed record"
clear_faults
sim_check "additive, lost create: yet Braze has Bob, Gold and subscribed" \
  '"2" in users and "Gold" in ca("2").get("groups", []) and subs("2").get("'$SG'") == "subscribed"'

# user 2 leaves the scope (gone from the source) before a run succeeds: the release
# takes the groups back, and changes nothing else
sq "DELETE FROM users WHERE id = '2'"
run plan --config "$TMP/cfg" --json; expect_rc 0 "additive, left: plan"
python3 -c 'import json,sys; d=json.loads(sys.argv[1])["destinations"][0]; assert d["counts"]["unsubscribe"]==1 and d["guard"]["deletes"]==0 and not d["guard"]["tripped"], d' "$OUT" \
  && ok "additive, left: plan shows the release, and the guard lets it through" || bad "additive, left: plan $OUT"
M=$(sim_mark)
run run $J --json; expect_rc 0 "additive, left: the run succeeds"
sim_check "additive, left: Braze's user 2 left Gold and the subscription group" \
  '"2" in users and "Gold" not in ca("2").get("groups", []) and subs("2").get("'$SG'") == "unsubscribed"'
SINCE=$M sim_check "additive, left: the release was sent as an update of an existing user only" \
  'any(a.get("external_id") == "2" and a.get("_update_existing_only") is True for q in reqs if q["path"] == "/users/track" for a in q["body"]["attributes"])'
run run $J --json; expect_rc 0 "additive, left: then a run with nothing to do"
python3 -c 'import json,sys; d=json.loads(sys.argv[1])["destinations"][0]; assert d["requests"]==0, d' "$OUT" \
  && ok "additive, left: then nothing is sent" || bad "additive, left: then $OUT"

# back in scope: created in full (what Braze has of it is not known)
sq "INSERT INTO users VALUES ('2', 'Bobby', 0, 'gold')"
run run $J; expect_rc 0 "additive, back: the run succeeds"
sim_check "additive, back: Braze has Bobby, Gold, not subscribed" \
  'users["2"].get("first_name") == "Bobby" and "Gold" in ca("2").get("groups", []) and subs("2").get("'$SG'") == "unsubscribed"'

# a create that never reached Braze: the release must not create the user
sq "INSERT INTO users VALUES ('3', 'Cy', 1, 'gold')"
drop_requests
run run $J; expect_rc 1 "additive, dropped create: the run reports the failed record"
clear_faults
sim_check "additive, dropped create: Braze has no user 3" '"3" not in users'
sq "DELETE FROM users WHERE id = '3'"
run run $J; expect_rc 0 "additive, dropped then left: the run succeeds"
sim_check "additive, dropped then left: Braze still has no user 3" '"3" not in users'

# Enrich: Braze has user 4 (made outside joey); its first enrich update is lost
config enrich
curl -s -X POST -H 'Authorization: Bearer test-key' -H 'Content-Type: application/json' "$SIM_URL/users/track" \
  -d '{"attributes":[{"external_id":"4","first_name":"Outside"}]}' >/dev/null
sq "INSERT INTO users VALUES ('4', 'Dee', 0, 'gold')"
lose_answers
run run $J; expect_rc 1 "enrich, lost update: the run reports the failed record"
clear_faults
sim_check "enrich, lost update: yet Braze has Dee in Gold" 'users["4"].get("first_name") == "Dee" and "Gold" in ca("4").get("groups", [])'
sq "DELETE FROM users WHERE id = '4'"
run run $J; expect_rc 0 "enrich, left: the run succeeds"
sim_check "enrich, left: Braze's user 4 left Gold" '"4" in users and "Gold" not in ca("4").get("groups", [])'

finish
