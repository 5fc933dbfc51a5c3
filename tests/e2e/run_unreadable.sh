#!/usr/bin/env bash
# run_unreadable.sh: nothing is deleted or unsubscribed on doubt (issue #12). A CSV row
# that cannot be read (invalid UTF-8, a NUL byte, an over-long field, a line cut short)
# is skipped with file:line:col; its record is *unknown* this run, not gone: no
# /users/delete, no unsubscribe, no group exit for anyone in that model, in every sync
# mode; creates and updates that take nobody out still go; the run ends partial
# (exit 1, "completed with N rows unreadable"), each row is in the error ledger, the
# marks stay; once the file is fixed the next run converges. A source that fails part
# way through a read deletes nothing either.
set -e
source "$(dirname "$0")/lib.bash"
sim_start
export BRAZE_KEY=test-key BRAZE_URL="$SIM_URL" GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
SG=11111111-2222-3333-4444-555555555555
mkdir -p "$TMP/cfg" "$TMP/data"
good() {
  printf 'id,email,name,vip\n1,ann@example.com,Ann,true\n2,bob@example.com,Bob,true\n3,cy@example.com,Cy,true\n4,di@example.com,Di,true\n5,ed@example.com,Ed,false\n' >"$TMP/data/users.csv"
}
good
cat > "$TMP/cfg/config.json" <<EOF2
[
 {"class":"App","id":"files","type":"csv","options":{"file":"data/users.csv"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"BRAZE_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"csv-import-table","appId":"files","modelId":"users","options":{},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Property","id":"vip","type":"boolean","sourceId":"src","options":{"column":"vip"}},
 {"class":"Group","id":"vips","name":"VIPs","modelId":"users","rules":[{"propertyId":"vip","op":"eq","match":true}]},
 {"class":"Destination","id":"sync","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email","first_name":"name"},"destinationGroupMemberships":{"$SG":"vips","VIP":"vips"},
  "options":{"maxDeletePercent":100}},
 {"class":"Destination","id":"additive","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"additive","collection":"group","groupId":"vips",
  "mapping":{"external_id":"user_id","vip_name":"name"},"destinationGroupMemberships":{"$SG":"vips"},"options":{"maxDeletePercent":100}},
 {"class":"Destination","id":"enrich","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"enrich","collection":"group","groupId":"vips",
  "mapping":{"external_id":"user_id","enriched_name":"name"},"options":{"maxDeletePercent":100}}
]
EOF2
J="--config $TMP/cfg"
ledger() { state_query "$TMP/.joey/state.db" "SELECT dest_id || ' ' || error FROM ledger ORDER BY id"; }

run run $J; expect_rc 0 "first run"
sim_check "first run: 5 users, 1-4 subscribed" 'sorted(users) == ["1","2","3","4","5"] and all(subs(u).get("'$SG'") == "subscribed" for u in "1234")'

# each way a row can be unreadable, one at a time, in every mode at once (3 destinations)
try_bad() { # try_bad NAME: users.csv has been damaged; user 5 renamed; user 1 left the group
  local name=$1
  M=$(sim_mark)
  run plan $J; expect_rc 0 "$name: plan"
  expect_out 'source rows unreadable' "$name: plan says rows are unreadable"
  run run $J; expect_rc 1 "$name: run ends partial"
  expect_out 'completed with [0-9]+ rows unreadable' "$name: run says so"
  expect_err 'bad row skipped' "$name: the row is named"
  SINCE=$M sim_check "$name: no delete" 'not [q for q in reqs if q["path"] == "/users/delete"]'
  SINCE=$M sim_check "$name: no unsubscribe, no groups removed" 'not [a for a in track if "unsubscribed" in json.dumps(a.get("subscription_groups", "")) or "groups" in a]'
  sim_check "$name: everyone still in Braze and subscribed" 'sorted(users) == ["1","2","3","4","5"] and all(subs(u).get("'$SG'") == "subscribed" for u in "1234")'
  sim_check "$name: the rename of user 5 went out" 'users["5"]["first_name"] == "Eddie"'
  run status $J; expect_out 'unreadable source rows in the last run' "$name: status lists the unreadable rows"
  [ -n "$(ledger | grep 'users.csv:[0-9]*:[0-9]*')" ] && ok "$name: ledger names file:line:col" || bad "$name: ledger: $(ledger)"
}
base() { # the good file, user 5 renamed, user 1 no longer a VIP (a group exit)
  printf 'id,email,name,vip\n1,ann@example.com,Ann,false\n2,bob@example.com,Bob,true\n3,cy@example.com,Cy,true\n4,di@example.com,Di,true\n5,ed@example.com,Eddie,false\n'
}
# invalid UTF-8 in user 2's row
base | sed 's/^2,bob@example.com,Bob/2,bob@example.com,B\xffb/' >"$TMP/data/users.csv"
try_bad "invalid UTF-8"
# a NUL byte in user 3's row
base | sed 's/^3,cy@example.com,Cy/3,cy@example.com,C\x00y/' >"$TMP/data/users.csv"
try_bad "NUL byte"
# the last line cut short (the export was still being written)
base | head -c -20 >"$TMP/data/users.csv"
try_bad "line cut short"
# an over-long field
{ base | head -n 3; printf '3,cy@example.com,%s,true\n' "$(head -c 2000000 /dev/zero | tr '\0' x)"; base | tail -n 2; } >"$TMP/data/users.csv"
try_bad "over-long field"

# fixed: the next run converges, deletes and group exits included
base | grep -v '^4,' >"$TMP/data/users.csv"
M=$(sim_mark); run run $J; expect_rc 0 "fixed file: run succeeds"
SINCE=$M sim_check "fixed: user 4 deleted by sync" '[q for q in reqs if q["path"] == "/users/delete" and "4" in json.dumps(q["body"])]'
sim_check "fixed: user 1 unsubscribed" 'subs("1").get("'$SG'") == "unsubscribed"'
run status $J; expect_rc 0 "status after the fix"

# a source that fails part way through its read deletes nothing
printf 'id,email,name,vip\n1,ann@example.com,Ann,false\n2,bob@example.com,Bob,true\n9abc,x@example.com,X,true\n' >"$TMP/data/users.csv"
M=$(sim_mark); run run $J; [ "$RC" -ne 0 ] && ok "failed read: run fails" || bad "failed read: run fails"
expect_out 'non-integer' "failed read: the bad key is named"
SINCE=$M sim_check "failed read: no delete, no unsubscribe" 'not [q for q in reqs if q["path"] == "/users/delete"] and not [a for a in track if "unsubscribed" in json.dumps(a.get("subscription_groups", ""))]'
sim_check "failed read: users 3 and 5 still there" '"3" in users and "5" in users'
finish
