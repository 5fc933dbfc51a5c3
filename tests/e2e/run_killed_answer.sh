#!/usr/bin/env bash
# run_killed_answer.sh: joey is killed (kill -9) after Braze applied its requests and
# before it recorded the answers, and the record then goes back to what Braze last
# confirmed. The next run must take back what the killed run sent: the first name it set,
# the `groups` value and the subscription group it removed. Before, the store still
# held the confirmed payload, the record matched it again, and the run found it
# "unchanged": Braze kept the killed run's values for good. Runs on SQLite and, with
# E2E_STATE=postgres (state_pg_run_killed_answer.sh), on PostgreSQL.
set -e
source "$(dirname "$0")/lib.bash"
sim_start
SG=11111111-2222-4333-8444-555555555555
mkdir -p "$TMP/cfg"
sqlite3 "$TMP/data.db" "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, vip INTEGER, tier TEXT);
  INSERT INTO users VALUES (1, 'Ann', 0, NULL), (2, 'Bob', 1, 'gold');"
cat >"$TMP/cfg/config.json" <<JSON
[
 {"class":"App","id":"db","type":"sqlite","options":{"file":"$TMP/data.db"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"test-key","restEndpoint":"$SIM_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"sqlite-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Property","id":"vip","type":"boolean","sourceId":"src","options":{"column":"vip"}},
 {"class":"Property","id":"tier","type":"string","sourceId":"src","options":{"column":"tier"}},
 {"class":"Group","id":"vips","name":"VIPs","modelId":"users","rules":[{"propertyId":"vip","op":"eq","match":true}]},
 {"class":"Group","id":"gold","name":"Gold","modelId":"users","rules":[{"propertyId":"tier","op":"eq","match":"gold"}]},
 {"class":"Destination","id":"dest","name":"Braze","type":"braze-export-users","appId":"braze","modelId":"users",
  "syncMode":"sync","collection":"model","options":{"maxDeletePercent":100},
  "mapping":{"external_id":"user_id","first_name":"name"},
  "destinationGroupMemberships":{"$SG":"vips","Gold":"gold"}}
]
JSON
J="--config $TMP/cfg"
STATE="$TMP/.joey/state.db"
sq() { sqlite3 "$TMP/data.db" "$1"; }
pending() { state_query "$STATE" "SELECT count(*) FROM records WHERE CAST(pending AS INTEGER) = 1"; }
CONFIRMED='users["2"].get("first_name") == "Bob" and "Gold" in ca("2").get("groups", []) and subs("2").get("'$SG'") == "subscribed"'

run run $J; expect_rc 0 "first run"
sim_check "first run: Bob is Gold and subscribed" "$CONFIRMED"

# Bob becomes Robert and leaves both groups; Braze applies the requests and holds the
# answers (latency) until joey is killed
sq "UPDATE users SET name = 'Robert', vip = 0, tier = NULL WHERE id = 2"
run_killed_when 'users["2"].get("first_name") == "Robert" and subs("2").get("'$SG'") == "unsubscribed"' $J \
  && ok "killed run: Braze applied it before the kill" || bad "killed run: Braze never got it"

# back to what Braze last confirmed before the killed run
sq "UPDATE users SET name = 'Bob', vip = 1, tier = 'gold' WHERE id = 2"
run run $J; expect_rc 0 "back as confirmed: the run succeeds"
expect_err "ended without finishing" "back as confirmed: the killed run is noticed"
sim_check "back as confirmed: Braze has Bob, Gold and the subscription again" "$CONFIRMED"
[ "$(pending)" = 0 ] && ok "back as confirmed: nothing left pending" || bad "back as confirmed: $(pending) pending"
run run $J --json; expect_rc 0 "then: a run with nothing to do"
python3 -c 'import json,sys; c=json.loads(sys.argv[1])["destinations"][0]["counts"]; assert c["unchanged"]==2 and c["updated"]==0, c' "$OUT" \
  && ok "then: both unchanged" || bad "then: counts $OUT"

finish
