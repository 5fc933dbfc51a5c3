#!/usr/bin/env bash
# run_bad_keys.sh: a text key Braze cannot receive exactly is an unreadable row, not a
# user (outside review). JSON carries no NUL byte and no invalid UTF-8: 'a'||char(0)||'b'
# went out as "ab" and CAST(x'61ff' AS TEXT) as "a\uFFFD", so four source rows made two
# Braze users, and deleting one row deleted the user of another still in the source.
# Now such a row is skipped and named, its record is unknown for the run (no delete,
# no unsubscribe), the run ends partial (exit 1); the good rows go out as they are.
set -e
source "$(dirname "$0")/lib.bash"
sim_start
export BRAZE_KEY=test-key BRAZE_URL="$SIM_URL"
mkdir -p "$TMP/cfg"
sqlite3 "$TMP/data.db" "CREATE TABLE users (id TEXT, name TEXT);
INSERT INTO users VALUES ('ab', 'plain'), ('a' || char(0) || 'b', 'nul'),
  (CAST(x'61ff' AS TEXT), 'ff'), (CAST(x'61fe' AS TEXT), 'fe'), ('zed', 'z');"
cat > "$TMP/cfg/config.json" <<CFG
[
 {"class":"App","id":"db","type":"sqlite","options":{"file":"data.db"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"$SIM_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"sqlite-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"string","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","first_name":"name"},"options":{"maxDeletePercent":100}}
]
CFG
J="--config $TMP/cfg"
ledger() { state_query "$TMP/.joey/state.db" "SELECT dest_id || ' ' || error FROM ledger ORDER BY id"; }

run plan $J; expect_rc 0 "plan"
expect_out '3 source rows unreadable' "plan: three rows are unreadable"
run run $J; expect_rc 1 "first run ends partial"
expect_out 'completed with 3 rows unreadable' "first run says so"
expect_err 'record key "a\x00b": it holds a NUL byte' "the NUL key is named"
expect_err 'record key "a\xff": it is not valid UTF-8' "the invalid UTF-8 key is named"
sim_check "only the two good keys are users, each once" 'sorted(users) == ["ab", "zed"] and users["ab"]["first_name"] == "plain" and sum(1 for a in track if a.get("external_id") == "ab") == 1'
sim_check "no external_id lost a byte" 'not [a for a in track if "\ufffd" in a.get("external_id", "")]'
[ "$(state_query "$TMP/.joey/state.db" "SELECT count(*) FROM records")" = 2 ] && ok "the store holds the two good records" \
  || bad "store: $(state_query "$TMP/.joey/state.db" "SELECT hex(key) FROM records")"
[ -n "$(ledger | grep 'record key')" ] && ok "ledger names the keys" || bad "ledger: $(ledger)"

# a good row goes; the bad rows stay: nothing is deleted while they are there
sqlite3 "$TMP/data.db" "DELETE FROM users WHERE id = 'zed'"
M=$(sim_mark); run run --force $J; expect_rc 1 "second run ends partial"
SINCE=$M sim_check "no delete while rows are unreadable" 'not [q for q in reqs if q["path"] == "/users/delete"]'
sim_check "ab and zed still in Braze" 'sorted(users) == ["ab", "zed"]'

# the bad rows fixed: the next run converges, the delete included
sqlite3 "$TMP/data.db" "DELETE FROM users WHERE id <> 'ab'"
M=$(sim_mark); run run $J; expect_rc 0 "fixed: run succeeds"
SINCE=$M sim_check "fixed: zed deleted, ab kept" '[q for q in reqs if q["path"] == "/users/delete" and q["body"].get("external_ids") == ["zed"]] and sorted(users) == ["ab"]'
finish
