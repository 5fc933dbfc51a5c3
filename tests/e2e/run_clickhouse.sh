#!/usr/bin/env bash
# run_clickhouse.sh: a ClickHouse source (clickhouse-import-table, HTTP interface) synced
# to the Braze simulator: first sync, an update, a deleted row, a secondary source with
# sum and most recent value, an incremental schedule, then an error the server sends in
# the middle of a 200 answer (user joey_limited of scripts/test-servers.sh: the result
# overflows its max_result_rows after the first MiB was sent): the run must fail
# without deleting anything; a profile whose overflow mode would cut a result short
# without an error (break) is overridden or refused, again without deletes. Also: the password never appears in any output, and
# `joey validate --check-apps` names a wrong password, port, host and database.
# Needs $JOEY_CLICKHOUSE_URL (scripts/test-servers.sh); skipped without it, except CI=true.
set -e
source "$(dirname "$0")/lib.bash"
ch_setup e2e_ch
chq "CREATE TABLE users (id Int64, email Nullable(String), name Nullable(String), vip UInt8,
     score Nullable(Float64), pad String, updated DateTime) ENGINE = MergeTree ORDER BY id" "$DB"
chq "CREATE TABLE purchases (user_id Int64, amount Nullable(Float64), item String, at DateTime)
     ENGINE = MergeTree ORDER BY user_id" "$DB"
chq "INSERT INTO users VALUES (900001,'ann@example.com','Ann',1,7.5,'','2026-01-01 00:00:00'),
     (900002,'bob@example.com','Bob',0,2,'','2026-01-01 00:00:00'),
     (900003,'cy@example.com','Cy\\'s',1,NULL,'','2026-01-01 00:00:00')" "$DB"
chq "INSERT INTO purchases VALUES (900001,10,'pen','2026-01-01 00:00:00'),(900001,30.5,'book','2026-03-01 00:00:00'),
     (900002,5,'gum','2026-02-01 00:00:00')" "$DB"

sim_start
export BRAZE_KEY=test-key BRAZE_URL="$SIM_URL" GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL" CH_PASSWORD="$CH_PW" GROUPAROO_OPTION__APP__CH_LOGIN="$CH_USER"
mkdir -p "$TMP/cfg"
write_config() { # write_config HOST PORT DATABASE: the project, app options as given
  cat > "$TMP/cfg/config.json" <<EOF2
[
 {"class":"App","id":"ch","type":"clickhouse","options":{"host":"$1","port":$2,"database":"$3","user":"CH_LOGIN","password":"\${CH_PASSWORD}"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"BRAZE_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"clickhouse-import-table","appId":"ch","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Property","id":"vip","type":"boolean","sourceId":"src","options":{"column":"vip"}},
 {"class":"Property","id":"score","type":"float","sourceId":"src","options":{"column":"score"}},
 {"class":"Property","id":"pad","type":"string","sourceId":"src","options":{"column":"pad"}},
 {"class":"Source","id":"buys","type":"clickhouse-import-table","appId":"ch","modelId":"users","options":{"table":"$3.purchases"},"mapping":{"user_id":"user_id"}},
 {"class":"Property","id":"spent","type":"float","sourceId":"buys","options":{"column":"amount","aggregationMethod":"sum"}},
 {"class":"Property","id":"last_item","type":"string","sourceId":"buys","options":{"column":"item","aggregationMethod":"most recent value","sortColumn":"at"}},
 {"class":"Property","id":"last_buy","type":"date","sourceId":"buys","options":{"column":"at","aggregationMethod":"max"},
  "filters":[{"key":"amount","op":"gt","match":"1"}]},
 {"class":"Destination","id":"sync","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email","first_name":"name","score":"score","vip":"vip","spent":"spent","last_item":"last_item","last_buy":"last_buy","pad":"pad"},
  "options":{"maxDeletePercent":100}}
]
EOF2
}
write_config "http://$CH_HOST" "$CH_PORT" "$DB"
J="--config $TMP/cfg"

run validate $J --check-apps; expect_rc 0 "validate --check-apps: the ClickHouse sources check out"
expect_out 'source "buys": ok' "validate: the dotted table db.purchases is found"
expect_no "$CH_PW" "validate: the password is not echoed"

run plan $J --details; expect_rc 0 "plan"
expect_out 'create' "plan: three creates"
expect_no "$CH_PW" "plan: the password is not echoed"

# ---- first sync: every field, typed
run run $J --destination sync; expect_rc 0 "first run"
sim_check "3 users created" 'sorted(users) == ["900001","900002","900003"]'
sim_check "string, email, float and UInt8 boolean values" 'users["900001"]["email"]=="ann@example.com" and users["900001"]["first_name"]=="Ann" and ca("900001")["score"]==7.5 and ca("900001")["vip"]==True and ca("900002")["vip"]==False'
sim_check "a quote in a value arrives intact" 'users["900003"]["first_name"]=="Cy'"'"'s"'
sim_check "sum and most recent value from the secondary source" 'ca("900001")["spent"]==40.5 and ca("900001")["last_item"]=="book" and ca("900002")["spent"]==5'
sim_check "a filtered max of a DateTime is a date (UTC)" 'ca("900001")["last_buy"].startswith("2026-03-01T00:00:00") and ca("900002")["last_buy"].startswith("2026-02-01T00:00:00")'
sim_check "a key without purchases gets sum 0" 'ca("900003")["spent"]==0'
expect_no "$CH_PW" "run: the password is not echoed"

# ---- unchanged: nothing sent
M=$(sim_mark); run run $J --destination sync; expect_rc 0 "unchanged run"
SINCE=$M sim_check "unchanged run sends nothing" 'len(reqs)==0'

# ---- update and delete
chq "ALTER TABLE users UPDATE name = 'Annie' WHERE id = 900001" "$DB" >/dev/null
chq "ALTER TABLE users DELETE WHERE id = 900002" "$DB" >/dev/null
for _ in $(seq 1 50); do
  [ "$(chq "SELECT count() FROM system.mutations WHERE database = '$DB' AND NOT is_done")" = 0 ] && break
  sleep 0.1
done
M=$(sim_mark); run run $J --destination sync; expect_rc 0 "update and delete run"
SINCE=$M sim_check "only the changed field is sent" 'track==[{"external_id":"900001","first_name":"Annie"}]'
SINCE=$M sim_check "the deleted row's user is deleted" 'sorted(users)==["900001","900003"]'

# ---- an error after the first MiB of rows: 6000 wide rows sort before the real users,
# the limited user's max_result_rows (5000) breaks the answer mid-stream
chq "INSERT INTO users SELECT number + 1, concat('f', toString(number + 1), '@example.com'), 'filler', 0, NULL,
     arrayStringConcat(arrayMap(x -> 'x', range(300))), toDateTime('2026-01-01 00:00:00') FROM system.numbers LIMIT 6000" "$DB" >/dev/null
export GROUPAROO_OPTION__APP__CH_LOGIN=joey_limited
M=$(sim_mark); run run $J --destination sync
if [ "$RC" -ne 0 ]; then ok "a mid-stream error fails the run (exit $RC)"; else bad "a mid-stream error fails the run"; fi
expect_out "query failed after [0-9]+ rows" "the error says the query failed after some rows"
expect_out "Limit for result exceeded" "the error carries the server's message"
SINCE=$M sim_check "no user is deleted after the mid-stream error" 'not [q for q in reqs if q["path"]=="/users/delete"]'
sim_check "the real users are still in Braze" '"900001" in users and "900003" in users'
expect_no "$CH_PW" "the failed run does not echo the password"

# ---- the same data with the normal user: the fillers arrive, nobody is deleted
export GROUPAROO_OPTION__APP__CH_LOGIN=$CH_USER
M=$(sim_mark); run run $J --destination sync; expect_rc 0 "run after the error"
SINCE=$M sim_check "no deletes after the error either" 'not [q for q in reqs if q["path"]=="/users/delete"]'
sim_check "6002 users now" 'len(users)==6002'

# ---- a profile that lets the server cut a result short without an error
# (result_overflow_mode / read_overflow_mode = break: the answer just ends early). joey
# asks for throw, so the cut is an error; a readonly=1 profile, which cannot be asked,
# is refused at connect. Users joey_cutting / joey_ro_cutting of scripts/test-servers.sh
# (skipped on a server started by an older script, which does not have them).
if curl -sf -H "X-ClickHouse-User: joey_cutting" -H "X-ClickHouse-Key: $CH_PW" \
     "http://$CH_HOST:$CH_PORT/" --data-binary "SELECT 1" >/dev/null 2>&1; then
  export GROUPAROO_OPTION__APP__CH_LOGIN=joey_cutting
  M=$(sim_mark); run run $J --destination sync
  if [ "$RC" -ne 0 ]; then ok "a result the profile would cut short fails the run (exit $RC)"; else bad "a result the profile would cut short fails the run"; fi
  expect_out "Limit for result exceeded" "the cut is the server's error, not the end of the rows"
  SINCE=$M sim_check "no user is deleted when the profile would cut the result short" 'not [q for q in reqs if q["path"]=="/users/delete"]'
  export GROUPAROO_OPTION__APP__CH_LOGIN=joey_ro_cutting
  M=$(sim_mark); run run $J --destination sync
  if [ "$RC" -ne 0 ]; then ok "a readonly profile that may cut results short is refused (exit $RC)"; else bad "a readonly profile that may cut results short is refused"; fi
  expect_out "result_overflow_mode" "the refusal names the setting"
  SINCE=$M sim_check "no user is deleted with the readonly cutting profile" 'not [q for q in reqs if q["path"]=="/users/delete"]'
  sim_check "still 6002 users" 'len(users)==6002'
  export GROUPAROO_OPTION__APP__CH_LOGIN=$CH_USER
else
  echo "note: no user joey_cutting on this server (started by an older scripts/test-servers.sh): cut-short checks skipped"
fi

# ---- a readonly=1 profile refuses settings: the connector goes without them
export GROUPAROO_OPTION__APP__CH_LOGIN=joey_ro
run plan $J; expect_rc 0 "a readonly=1 user can read (settings dropped)"
export GROUPAROO_OPTION__APP__CH_LOGIN=$CH_USER

# ---- validate --check-apps names the wrong option
CH_PASSWORD=wrong run validate $J --check-apps
if [ "$RC" -ne 0 ]; then ok "wrong password fails validate"; else bad "wrong password fails validate"; fi
expect_err 'check the app'"'"'s "user" (default "default") and "password" options' "wrong password: the hint names user and password"
expect_no "wrong" "wrong password: the password is not echoed"
write_config "http://$CH_HOST" 1 "$DB"
run validate $J --check-apps
expect_err 'check the app'"'"'s "host" and "port" options' "wrong port: the hint names host and port"
expect_err "http://$CH_HOST:1/" "wrong port: the message says which URL was tried"
write_config "$CH_HOST" "$CH_PORT" "$DB"
run validate $J --check-apps
expect_err "https://$CH_HOST:$CH_PORT/" "a bare host means https (Grouparoo's rule), and the message says so"
expect_err "a host without http:// means https://" "bare host on an http port: the hint explains the rule"
write_config "http://no-such-host.invalid" "$CH_PORT" "$DB"
run validate $J --check-apps
expect_err "no such host" "wrong host: named"
write_config "http://$CH_HOST" "$CH_PORT" "nosuchdb_$$"
run validate $J --check-apps
expect_err 'no database "nosuchdb_'"$$"'"' "wrong database: named"
expect_err 'check the app'"'"'s "database" option' "wrong database: the hint names the option"
write_config "httpd.internal" "$CH_PORT" "$DB"
run validate $J --check-apps
expect_err 'starts with "http" but is not an http:// or https:// URL' "a host that merely starts with http is refused clearly"

finish
