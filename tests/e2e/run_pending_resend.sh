#!/usr/bin/env bash
# run_pending_resend.sh: a pending record whose full re-send has nothing but external_id.
# A record is pending when its last request failed or went out in a run that was killed:
# what Braze holds is unknown, so the next run sends all of it again. A destination that
# maps only external_id (or whose other values are all unchanged NULLs) had nothing left
# to send, and joey confirmed the record without a request; but the lost request may have
# been a delete that Braze applied (a row deleted, then back before the next full run),
# and the user stayed deleted in Braze while the state store said it was there (found by
# the randomized differential test with kills, seed 8214). Now {"external_id"} alone is
# sent for a pending record in scope, which makes the user again; a subscription-only
# change of one goes by /users/track too (the subscription endpoint may not make users).
set -e
source "$(dirname "$0")/lib.bash"
sim_start
SUB=4cca69c2-504f-4e18-815d-32549bb84fe1
sqlite3 "$TMP/data.db" "CREATE TABLE users (id INTEGER PRIMARY KEY, vip INTEGER); INSERT INTO users VALUES (1, 0), (2, 1);"
mkdir -p "$TMP/cfg"
cat > "$TMP/cfg/config.json" <<CFG
[
 {"class":"App","id":"db","type":"sqlite","options":{"file":"data.db"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"test-key","restEndpoint":"$SIM_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"sqlite-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"vip","type":"boolean","sourceId":"src","options":{"column":"vip"}},
 {"class":"Group","id":"vips","name":"VIPs","modelId":"users","rules":[{"propertyId":"vip","op":"eq","match":true}]},
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id"},"destinationGroupMemberships":{"$SUB":"vips"}}
]
CFG
J="--config $TMP/cfg --state $TMP/state.db"
run run $J; expect_rc 0 "first run"
sim_check "first run: both users, 2 subscribed" 'sorted(users) == ["1","2"] and users["2"]["subscription_groups"][0]["subscription_state"] == "subscribed"'

# a run that was killed after Braze applied its delete of both users (the rows were gone
# then and are back now): Braze has neither, the store has both, pending
curl -s -X POST -H 'Authorization: Bearer test-key' -H 'Content-Type: application/json' \
  "$SIM_URL/users/delete" -d '{"external_ids":["1","2"]}' >/dev/null
sim_check "Braze lost both users" 'not users'
sqlite3 "$TMP/state.db" "UPDATE records SET pending = 1"
M=$(sim_mark)
run run $J; expect_rc 0 "the run after"
expect_out 'updated 2,' "both pending records are sent again"
SINCE=$M sim_check "user 1 is sent with nothing but external_id" \
  '[a for a in track if a["external_id"] == "1"] == [{"external_id": "1"}]'
SINCE=$M sim_check "user 2 goes by /users/track, not the subscription endpoint" \
  'not [q for q in reqs if q["path"].startswith("/v2/subscription")] and [a["external_id"] for a in track] == ["1", "2"]'
sim_check "Braze has both users again, 2 subscribed" \
  'sorted(users) == ["1","2"] and users["2"]["subscription_groups"][0]["subscription_state"] == "subscribed"'
[ "$(sqlite3 "$TMP/state.db" "SELECT count(*) FROM records WHERE pending = 0")" = 2 ] &&
  ok "both records confirmed" || bad "both records confirmed"

# not pending: nothing to send, no request (as before)
M=$(sim_mark)
run run $J; expect_rc 0 "a run with nothing changed"
SINCE=$M sim_check "nothing is sent" 'not reqs'
finish
