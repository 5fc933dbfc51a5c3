#!/usr/bin/env bash
# run_lost_answer.sh: Braze applied a request but its answer was lost (a timeout), and
# the record then went back to what Braze last confirmed. The next run must undo what
# the lost attempt may have set: the nulls are sent again, the `groups` value and the
# subscription group the attempt added are removed. Before, the full re-send left them
# out (a null that was null before, a group not in the confirmed payload) and Braze kept
# the attempt's values for good while the store said "unchanged".
set -e
source "$(dirname "$0")/lib.bash"
sim_start
SG=11111111-2222-4333-8444-555555555555
mkdir -p "$TMP/cfg"
sqlite3 "$TMP/data.db" "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT, name TEXT, vip INTEGER, score REAL, tier TEXT);
  INSERT INTO users VALUES ('1', 'a@x.com', 'Ann', 0, NULL, NULL), ('2', 'b@x.com', 'Bob', 0, NULL, NULL);"
cat >"$TMP/cfg/config.json" <<JSON
[
 {"class":"App","id":"db","type":"sqlite","options":{"file":"$TMP/data.db"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"test-key","restEndpoint":"$SIM_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"sqlite-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"string","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Property","id":"vip","type":"boolean","sourceId":"src","options":{"column":"vip"}},
 {"class":"Property","id":"score","type":"float","sourceId":"src","options":{"column":"score"}},
 {"class":"Property","id":"tier","type":"string","sourceId":"src","options":{"column":"tier"}},
 {"class":"Group","id":"vips","name":"VIPs","modelId":"users","rules":[{"propertyId":"vip","op":"eq","match":true}]},
 {"class":"Group","id":"gold","name":"Gold","modelId":"users","rules":[{"propertyId":"tier","op":"eq","match":"gold"}]},
 {"class":"Destination","id":"dest","name":"Braze","type":"braze-export-users","appId":"braze","modelId":"users",
  "syncMode":"sync","collection":"model","options":{"maxDeletePercent":100},
  "mapping":{"external_id":"user_id","email":"email","first_name":"name","score":"score","tier":"tier"},
  "destinationGroupMemberships":{"$SG":"vips","Gold":"gold"}}
]
JSON
J="--config $TMP/cfg --timeout 1"
sq() { sqlite3 "$TMP/data.db" "$1"; }
pending() {
  if [ "$STATE_BACKEND" = postgres ]; then
    state_query "" "SELECT pending::int FROM records WHERE key_text = convert_to('$1', 'UTF8') OR (key_kind = 0 AND key_int::text = '$1')"
  else state_query "$TMP/.joey/state.db" "SELECT pending FROM records WHERE key = '$1'"; fi
}

run run $J; expect_rc 0 "first run"
sim_check "first run: both users, no score, no tier, in no group" \
  'all(k in users and ca(k).get("score") is None and ca(k).get("tier") is None and "Gold" not in ca(k).get("groups", []) for k in ["1", "2"])'

# user 2 gains a score, a tier (so the Gold value) and the VIP subscription group; every
# answer of the attempt is lost, though Braze applies the requests
sq "UPDATE users SET score = 5, tier = 'gold', vip = 1 WHERE id = '2'"
sim_post /_sim/faults '[{"endpoint":"track","action":"apply_then_timeout","delay_ms":2500,"count":5},
 {"endpoint":"subscription","action":"apply_then_timeout","delay_ms":2500,"count":5}]'
run run $J; expect_rc 1 "lost answers: the run reports the failed record"
[ "$(pending 2)" = 1 ] && ok "lost answers: user 2 is pending" || bad "lost answers: pending is '$(pending 2)'"
sim_check "lost answers: yet Braze applied the attempt" \
  'ca("2").get("score") == 5 and ca("2").get("tier") == "gold" and "Gold" in ca("2").get("groups", []) and subs("2").get("'$SG'") == "subscribed"'
sim_post /_sim/faults '{"action":"clear"}'

# back to what Braze last confirmed: the next run must take the attempt back
sq "UPDATE users SET score = NULL, tier = NULL, vip = 0 WHERE id = '2'"
M=$(sim_mark)
run run $J --json; expect_rc 0 "back as confirmed: the run succeeds"
[ "$(pending 2)" = 0 ] && ok "back as confirmed: user 2 is confirmed" || bad "back as confirmed: pending is '$(pending 2)'"
sim_check "back as confirmed: Braze has no score, no tier, no Gold, and is unsubscribed" \
  'ca("2").get("score") is None and ca("2").get("tier") is None and "Gold" not in ca("2").get("groups", []) and subs("2").get("'$SG'") == "unsubscribed"'
SINCE=$M sim_check "back as confirmed: user 1 (unchanged) was not sent" \
  'all(a["external_id"] == "2" for a in track)'
run run $J --json; expect_rc 0 "then: a run with nothing to do"
python3 -c 'import json,sys; c=json.loads(sys.argv[1])["destinations"][0]["counts"]; assert c["unchanged"]==2 and c["updated"]==0, c' "$OUT" \
  && ok "then: both unchanged" || bad "then: counts $OUT"


# The same for a create: user 3 is new, in Gold; the create's answers are lost though
# Braze applies it. Then it moves to the VIP subscription group only, and that attempt
# (still a create: Braze never confirmed one) is lost too. Then it leaves both groups.
# Before, a failed create left an empty placeholder: the next create sent no removal,
# and Gold and the subscription stayed in Braze for good.
sq "INSERT INTO users VALUES ('3', 'c@x.com', 'Cy', 0, 1, 'gold')"
sim_post /_sim/faults '[{"endpoint":"track","action":"apply_then_timeout","delay_ms":2500,"count":5},
 {"endpoint":"subscription","action":"apply_then_timeout","delay_ms":2500,"count":5}]'
run run $J; expect_rc 1 "lost create: the run reports the failed record"
sim_check "lost create: yet Braze created user 3, in Gold" \
  '"3" in users and "Gold" in ca("3").get("groups", [])'
sq "UPDATE users SET tier = NULL, vip = 1 WHERE id = '3'"
sim_post /_sim/faults '{"action":"clear"}'
sim_post /_sim/faults '[{"endpoint":"track","action":"apply_then_timeout","delay_ms":2500,"count":5},
 {"endpoint":"subscription","action":"apply_then_timeout","delay_ms":2500,"count":5}]'
run run $J; expect_rc 1 "second lost create: the run reports the failed record"
sim_check "second lost create: Braze took Gold away and subscribed user 3" \
  '"Gold" not in ca("3").get("groups", []) and subs("3").get("'$SG'") == "subscribed"'
[ "$(pending 3)" = 1 ] && ok "lost creates: user 3 is pending" || bad "lost creates: pending is '$(pending 3)'"
sim_post /_sim/faults '{"action":"clear"}'
# Braze applied the second attempt but the first could have been the one applied, so
# the store keeps both attempts' groups; put Gold back in Braze to see it removed
curl -s -X POST -H 'Authorization: Bearer test-key' -H 'Content-Type: application/json' "$SIM_URL/users/track" \
  -d '{"attributes":[{"external_id":"3","groups":{"add":["Gold"]}}]}' >/dev/null
sq "UPDATE users SET vip = 0 WHERE id = '3'"
run run $J --json; expect_rc 0 "create after lost creates: the run succeeds"
[ "$(pending 3)" = 0 ] && ok "create after lost creates: user 3 is confirmed" || bad "pending is '$(pending 3)'"
sim_check "create after lost creates: Braze has no Gold and user 3 is unsubscribed" \
  '"Gold" not in ca("3").get("groups", []) and subs("3").get("'$SG'") == "unsubscribed" and ca("3").get("score") == 1'
run run $J --json; expect_rc 0 "then: a run with nothing to do"
python3 -c 'import json,sys; c=json.loads(sys.argv[1])["destinations"][0]["counts"]; assert c["unchanged"]==3 and c["created"]==0, c' "$OUT" \
  && ok "then: all three unchanged" || bad "then: counts $OUT"

finish
