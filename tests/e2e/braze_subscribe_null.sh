#!/usr/bin/env bash
# braze_subscribe_null.sh: a null email_subscribe / push_subscribe is never sent to
# Braze. Braze takes only opted_in, subscribed and unsubscribed; a null unsets the
# state (back to the default "subscribed": a user who opted out is subscribed again)
# or is rejected with the whole object. A user Braze has as unsubscribed stays so when
# the warehouse has no value, on the first export and when a value is cleared.
set -e
source "$(dirname "$0")/lib.bash"
sim_start
export BRAZE_KEY=test-key GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
mkdir -p "$TMP/cfg"
sqlite3 "$TMP/data.db" "CREATE TABLE users (id INTEGER PRIMARY KEY, es TEXT, name TEXT);
INSERT INTO users VALUES (1, NULL, 'Ann'), (2, 'opted_in', 'Bob'), (3, NULL, NULL);"
cat > "$TMP/cfg/config.json" <<EOF2
[
 {"class":"App","id":"db","type":"sqlite","options":{"file":"data.db"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"BRAZE_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"sqlite-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"es","type":"string","sourceId":"src","options":{"column":"es"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email_subscribe":"es","push_subscribe":"es","first_name":"name"}}
]
EOF2
J="--config $TMP/cfg"
cd "$TMP"
# user 1 opted out in Braze before joey's first export
sim_post /_sim/users '{"users":[{"external_id":"1","email_subscribe":"unsubscribed","push_subscribe":"unsubscribed"}]}'

run run $J; expect_rc 0 "first export"
sim_check "first export: no null subscription state is sent" \
  'all(a.get(k, "absent") is not None for a in track for k in ("email_subscribe", "push_subscribe"))'
sim_check "first export: the other fields are sent, nulls included" \
  '{a["external_id"]: a.get("first_name", "absent") for a in track} == {"1": "Ann", "2": "Bob", "3": None}'
sim_check "first export: a user who opted out stays opted out" \
  'users["1"]["email_subscribe"] == "unsubscribed" and users["1"]["push_subscribe"] == "unsubscribed"'
sim_check "first export: a value is sent" 'users["2"]["email_subscribe"] == "opted_in" and users["2"]["push_subscribe"] == "opted_in"'
sim_check "first export: a user with no field but its id is created" '"3" in users'

# the value is cleared in the warehouse: nothing to send, Braze keeps its state
sqlite3 "$TMP/data.db" "UPDATE users SET es = NULL WHERE id = 2"
M=$(sim_mark); run run $J; expect_rc 0 "cleared"
SINCE=$M sim_check "cleared: no request" 'len(reqs) == 0'
sim_check "cleared: Braze keeps the state" 'users["2"]["email_subscribe"] == "opted_in"'

# cleared together with another field: only that field is sent
sqlite3 "$TMP/data.db" "UPDATE users SET es = 'unsubscribed' WHERE id = 2"
run run $J; expect_rc 0 "set again"
sqlite3 "$TMP/data.db" "UPDATE users SET es = NULL, name = 'Robert' WHERE id = 2"
M=$(sim_mark); run run $J; expect_rc 0 "cleared with a name change"
SINCE=$M sim_check "cleared with a name change: only the name is sent" 'track == [{"external_id": "2", "first_name": "Robert"}]'
sim_check "cleared with a name change: Braze keeps the state" \
  'users["2"]["email_subscribe"] == "unsubscribed" and users["2"]["first_name"] == "Robert"'

# a value again: sent
sqlite3 "$TMP/data.db" "UPDATE users SET es = 'opted_in' WHERE id = 1"
M=$(sim_mark); run run $J; expect_rc 0 "a value again"
SINCE=$M sim_check "a value again: sent" 'track == [{"external_id": "1", "email_subscribe": "opted_in", "push_subscribe": "opted_in"}]'
finish
