#!/usr/bin/env bash
# enrich_recheck.sh: options.enrichRecheckHours. An enrich destination looks the users
# it never confirmed up with /users/export/ids; a user Braze did not have is not looked
# up again before the interval (default 24 h; 0: every run), whatever its record does;
# a failed look-up is retried on the next run. Time is pinned with JOEY_NOW.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

sim_start
D=$TMP/p
mkdir -p "$D/config"
users_db "$D/data.db" 10
config() { # config [OPTIONS_JSON_MEMBERS]
  cat > "$D/config/config.json" <<EOF
[
 {"class":"App","id":"db","type":"sqlite","options":{"file":"data.db"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"test-key","restEndpoint":"$SIM_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"sqlite-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"enrich",
  "collection":"model","mapping":{"external_id":"user_id","email":"email"},"options":{"maxDeletePercent":100${1:-}}}
]
EOF
}
# step ISO_TIME: one run at that time; MARK is where its requests start
step() { MARK=$(sim_mark); JOEY_NOW=$1 run run --config "$D/config" --json; }  # the default store (E2E_STATE)
sent() { SINCE=$MARK sim_check "$1" "$2"; }
count() { # count NAME FIELD VALUE: the run's counts.FIELD
  if [ "$(printf '%s' "$OUT" | python3 -c "import json,sys; print(json.load(sys.stdin)['destinations'][0]['counts']['$2'])")" = "$3" ]; then
    ok "$1"; else bad "$1 (counts.$2 is not $3)"; fi
}
LOOKED='sorted(i for q in reqs if q["path"]=="/users/export/ids" for i in q["body"]["external_ids"])'

# Braze has users 1, 2 and 3
sim_post /_sim/users '{"users":[{"external_id":"1"},{"external_id":"2"},{"external_id":"3"}]}'
config  # the default interval: 24 h

step 2026-11-24T00:00:00Z; expect_rc 0 "first run"
sent "first run: every user is looked up" "$LOOKED == sorted(str(i) for i in range(1, 11))"
sent "first run: the users Braze has are enriched, no other is created" \
  'sorted(a["external_id"] for a in track) == ["1", "2", "3"] and all(a["_update_existing_only"] for a in track) and sorted(users) == ["1", "2", "3"]'
count "first run: 3 updated" updated 3
count "first run: 7 not in Braze" skipped 7
CHECKED=$(state_query "$D/.joey/state.db" "SELECT count(*) FROM records WHERE dest_id = 'd' AND NOT braze_exists AND checked_at = 1795478400000")
[ "$CHECKED" = 7 ] && ok "the state store says when each absent user was looked up" || bad "checked_at of the absent users ($CHECKED)"

# an hour later: no look-up; a changed record of an absent user does not bring one either
sqlite3 "$D/data.db" "UPDATE users SET email = 'new7@example.com' WHERE id = 7"
step 2026-11-24T01:00:00Z; expect_rc 0 "an hour later"
sent "an hour later: nothing is looked up or sent" 'reqs == []'
count "an hour later: the 7 users are counted not in Braze" skipped 7
count "an hour later: the 3 enriched users are unchanged" unchanged 3

# user 4 appears in Braze; 23 h after the look-up it is still not asked for
sim_post /_sim/users '{"users":[{"external_id":"4"}]}'
step 2026-11-24T23:00:00Z; expect_rc 0 "23 h later"
sent "23 h later: still no look-up" 'reqs == []'

# after 24 h the absent users are looked up again, and user 4 is enriched in full
step 2026-11-25T00:00:01Z; expect_rc 0 "24 h later"
sent "24 h later: the 7 absent users are looked up again" "$LOOKED == ['10', '4', '5', '6', '7', '8', '9']"
sent "24 h later: user 4 is enriched with every field" \
  '[a for a in track] == [{"external_id": "4", "email": "u4@example.com", "_update_existing_only": True}]'
count "24 h later: 1 updated" updated 1
count "24 h later: 6 not in Braze" skipped 6

# a failed look-up (503s until the attempts are spent) is retried on the next run, in the interval
curl -s -X POST "$SIM_URL/_sim/faults" -d '{"endpoint":"export","status":503,"count":5}' >/dev/null
sqlite3 "$D/data.db" "INSERT INTO users VALUES (11, 'u11@example.com'), (12, 'u12@example.com')"
step 2026-11-25T01:00:00Z; expect_rc 1 "a look-up fails"
sent "a look-up fails: only the new users were asked for" "sorted(set($LOOKED)) == ['11', '12']"
count "a look-up fails: 2 failed" failed 2
step 2026-11-25T02:00:00Z; expect_rc 0 "the failed look-up is retried on the next run"
sent "the failed look-up is retried, the others are not" "$LOOKED == ['11', '12']"

# a look-up answered 202 {"message":"queued"} (no users) says nothing about them: the
# new user fails and is looked up on the next run, not taken as absent for 24 h
sim_post /_sim/users '{"users":[{"external_id":"13"}]}'
curl -s -X POST "$SIM_URL/_sim/faults" -d '{"endpoint":"export","status":202,"count":5}' >/dev/null
sqlite3 "$D/data.db" "INSERT INTO users VALUES (13, 'u13@example.com')"
step 2026-11-25T02:10:00Z; expect_rc 1 "a queued look-up"
count "a queued look-up: 1 failed, none taken as absent" failed 1
step 2026-11-25T02:20:00Z; expect_rc 0 "the queued look-up is retried on the next run"
sent "the queued look-up: user 13 is asked for again and enriched" \
  "$LOOKED == ['13'] and [a['external_id'] for a in track] == ['13']"

# enrichRecheckHours 0: every run looks every unknown user up, as Grouparoo did
config ',"enrichRecheckHours":0'
step 2026-11-25T03:00:00Z; expect_rc 0 "recheck 0"
sent "recheck 0: every user Braze does not have is looked up" "$LOOKED == ['10', '11', '12', '5', '6', '7', '8', '9']"
step 2026-11-25T03:00:01Z; expect_rc 0 "recheck 0, again"
sent "recheck 0, again: and again" "$LOOKED == ['10', '11', '12', '5', '6', '7', '8', '9']"

# a shorter interval applies to the users looked up before it was set
config ',"enrichRecheckHours":0.5'
step 2026-11-25T03:20:00Z; expect_rc 0 "recheck 0.5 h, 20 min later"
sent "recheck 0.5 h, 20 min later: no look-up" 'reqs == []'
step 2026-11-25T03:31:00Z; expect_rc 0 "recheck 0.5 h, 31 min later"
sent "recheck 0.5 h, 31 min later: looked up" "len($LOOKED) == 8"

# the rate limit of /users/export/ids is kept (the simulator answers 429 beyond it)
sent "no 429 from /users/export/ids" 'stats["endpoints"]["export"]["status"].get("429", 0) == 0'
finish
