#!/usr/bin/env bash
# run_redshift.sh: a Grouparoo redshift project (redshift app, redshift-import-table
# sources) synced to the Braze simulator, read from the PostgreSQL test server in
# Redshift strict mode (JOEY_REDSHIFT_STRICT=1: every statement joey sends is checked
# for what Redshift lacks - COPY, arrays, DISTINCT ON, FILTER, NULLS FIRST/LAST,
# ctid, ... - and one that uses it aborts joey). Also: a schedule on a
# redshift-import-query source is refused as Grouparoo did, and
# `joey validate --check-apps` names a wrong password, port and database.
# Skipped without $JOEY_PG_URL (scripts/test-servers.sh).
set -e
source "$(dirname "$0")/lib.bash"
[ -n "${JOEY_PG_URL:-}" ] || { echo "skipped: JOEY_PG_URL is not set"; echo "0 passed, 0 failed"; exit 0; }
export JOEY_REDSHIFT_STRICT=1
SCHEMA="e2e_rs_$$_$RANDOM"
pg() { PGOPTIONS="-c search_path=$SCHEMA -c client_min_messages=warning" psql "$JOEY_PG_URL" -qAt -v ON_ERROR_STOP=1 -c "$1"; }
rs_cleanup() { psql "$JOEY_PG_URL" -qAt -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true; e2e_cleanup; }
trap rs_cleanup EXIT
psql "$JOEY_PG_URL" -qAt -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $SCHEMA" >/dev/null
pg "CREATE TABLE users (id INTEGER, email VARCHAR(100), name VARCHAR(100), vip BOOLEAN, score DOUBLE PRECISION)"
pg "CREATE TABLE events (uid INTEGER, kind VARCHAR(20), at TIMESTAMP, amount NUMERIC(10,2))"
pg "INSERT INTO users VALUES (1,'ann@example.com','Ann',true,7.5),(2,'bob@example.com','Bob',false,2),(3,'cy@example.com','Cy',true,NULL)"
pg "INSERT INTO events VALUES (1,'login','2026-01-01 10:00:00',NULL),(1,'buy','2026-01-02 10:00:00',20.5),(1,'buy',NULL,1),
    (2,'login','2026-01-03 00:00:00',NULL),(3,'buy','2026-01-04 00:00:00',3)"

sim_start
export BRAZE_KEY=test-key GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL" RS_PASSWORD="$(url_part "$JOEY_PG_URL" password)"
RS_USER=$(url_part "$JOEY_PG_URL" user)
RS_HOST=$(url_part "$JOEY_PG_URL" host)
RS_PORT=$(url_part "$JOEY_PG_URL" port)
RS_DB=$(url_part "$JOEY_PG_URL" database)
mkdir -p "$TMP/cfg"
write_config() { # write_config PORT DATABASE [EXTRA OBJECTS]
  cat > "$TMP/cfg/config.json" <<EOF2
[
 {"class":"App","id":"rs","type":"redshift","options":{"host":"$RS_HOST","port":$1,"database":"$2","schema":"$SCHEMA","user":"$RS_USER","password":"\${RS_PASSWORD}"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"BRAZE_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"redshift-import-table","appId":"rs","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Property","id":"vip","type":"boolean","sourceId":"src","options":{"column":"vip"}},
 {"class":"Property","id":"score","type":"float","sourceId":"src","options":{"column":"score"}},
 {"class":"Source","id":"ev","type":"redshift-table-import","appId":"rs","modelId":"users","options":{"table":"events"},"mapping":{"uid":"user_id"}},
 {"class":"Property","id":"last_kind","type":"string","sourceId":"ev","options":{"column":"kind","aggregationMethod":"most recent value","sortColumn":"at"}},
 {"class":"Property","id":"spent","type":"float","sourceId":"ev","options":{"column":"amount","aggregationMethod":"sum"},"filters":[{"key":"kind","op":"eq","match":"buy"}]},
 {"class":"Property","id":"buys","type":"integer","sourceId":"ev","options":{"column":"kind","aggregationMethod":"count"},"filters":[{"key":"kind","op":"substring","match":"UY"}]},
 {"class":"Destination","id":"sync","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email","first_name":"name","score":"score","vip":"vip","last_kind":"last_kind","spent":"spent","buys":"buys"},
  "options":{"maxDeletePercent":100}}
 ${3:-}
]
EOF2
}
write_config "$RS_PORT" "$RS_DB"
J="--config $TMP/cfg"

run validate $J --check-apps; expect_rc 0 "validate --check-apps"
expect_out 'source "ev": ok' "the legacy redshift-table-import name is accepted"
run run $J --destination sync; expect_rc 0 "first run (strict mode: no statement uses what Redshift lacks)"
sim_check "3 users created" 'sorted(users) == ["1","2","3"]'
sim_check "values through the Redshift dialect" 'users["1"]["email"]=="ann@example.com" and ca("1")["vip"]==True and ca("1")["score"]==7.5 and ca("2")["vip"]==False'
sim_check "most recent value: a NULL sort key never wins" 'ca("1")["last_kind"]=="buy"'
sim_check "filtered sum and substring count" 'ca("1")["spent"]==21.5 and ca("1")["buys"]==2 and ca("2")["spent"]==0 and ca("3")["buys"]==1'
expect_no "$RS_PASSWORD" "the password is not echoed"

pg "UPDATE users SET name='Annie' WHERE id=1"
pg "DELETE FROM users WHERE id=2"
M=$(sim_mark); run run $J --destination sync; expect_rc 0 "update and delete run"
SINCE=$M sim_check "only the changed field" 'track==[{"external_id":"1","first_name":"Annie"}]'
sim_check "the deleted row's user is gone" 'sorted(users)==["1","3"]'

# ---- Grouparoo's redshift query source had no getRows: no schedule on it
write_config "$RS_PORT" "$RS_DB" ',{"class":"Source","id":"q","type":"redshift-import-query","appId":"rs","modelId":"users","options":{"query":"SELECT id FROM users"},"mapping":{"id":"user_id"}},
 {"class":"Schedule","id":"qs","name":"qs","sourceId":"q","recurring":false,"options":{}}'
run validate $J
if [ "$RC" -ne 0 ]; then ok "a schedule on a redshift query source is refused"; else bad "a schedule on a redshift query source is refused"; fi
expect_out 'source "q" \(redshift-import-query\) cannot have a schedule' "the message says why"

# ---- validate --check-apps names what is wrong
write_config "$RS_PORT" "$RS_DB"
RS_PASSWORD=wrong-pw run validate $J --check-apps
expect_err 'check the app'"'"'s "user" and "password" options' "wrong password: named"
expect_no "wrong-pw" "wrong password: not echoed"
write_config 1 "$RS_DB"
run validate $J --check-apps
expect_err "cannot connect to Redshift at $RS_HOST:1" "wrong port: the message says where it tried"
write_config "$RS_PORT" "nosuchdb_$$"
run validate $J --check-apps
expect_err 'no database "nosuchdb_'"$$"'"' "wrong database: named"
finish
