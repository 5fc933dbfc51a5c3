#!/usr/bin/env bash
# warehouse_snowflake.sh: a Snowflake source synced to the Braze simulator through
# warehouse-fake (tests/fakes/warehouse.c): key-pair JWT, partitions of 2 rows, every
# statement polled once, retried 429s; a later result partition that keeps failing
# fails the run (exit non-zero) and deletes nobody; --check-apps names a wrong key, a
# wrong token, a missing warehouse and table in plain words; no secret is ever printed.
set -e
source "$(dirname "$0")/lib.bash"
FAKE_BIN=$(dirname "$JOEY")/warehouse-fake
[ -x "$FAKE_BIN" ] || { echo "skipped: $FAKE_BIN is not built"; echo "0 passed, 0 failed"; exit 0; }
sim_start
mkdir -p "$TMP/cfg" "$TMP/db"
openssl genrsa -out "$TMP/key.pem" 2048 2>/dev/null
openssl rsa -in "$TMP/key.pem" -pubout -out "$TMP/pub.pem" 2>/dev/null
openssl genrsa -out "$TMP/other.pem" 2048 2>/dev/null
sqlite3 "$TMP/db/SHOP.db" <<'SQL'
CREATE TABLE "USERS" ("ID" NUMBER(38,0), "EMAIL" VARCHAR, "NAME" VARCHAR, "VIP" BOOLEAN, "SIGNUP" TIMESTAMP_NTZ, "UPDATED" TIMESTAMP_NTZ);
INSERT INTO "USERS" VALUES (1,'ann@example.com','Ann',1,'2024-01-02 03:04:05','2026-01-01 00:00:00'),
 (2,'bob@example.com','Bob',0,'2024-02-03 00:00:00','2026-01-01 00:00:00'),
 (3,'cy@example.com','Cy',1,NULL,'2026-01-01 00:00:00'),
 (4,'di@example.com','Di',0,'2025-05-05 05:05:05.123','2026-01-01 00:00:00'),
 (5,'ed@example.com','Ed',1,'2025-06-06 00:00:00','2026-01-01 00:00:00'),
 (6,'fay@example.com','Fay',0,'1960-01-01 00:00:00.5','2026-01-01 00:00:00');
CREATE TABLE "ORDERS" ("USER_ID" NUMBER(38,0), "AMOUNT" NUMBER(10,2), "ITEM" VARCHAR, "AT" TIMESTAMP_NTZ);
INSERT INTO "ORDERS" VALUES (1,10.5,'pen','2026-01-01 00:00:00'),(1,30,'book','2026-03-01 00:00:00'),(2,5,'gum','2026-02-01 00:00:00'),
 (5,7.25,'cup','2026-02-02 00:00:00');
SQL
"$FAKE_BIN" --db-dir "$TMP/db" --public-key "$TMP/pub.pem" --account xy12345.us-east-1 --user joey --token good-pat \
  --rows-per-partition 2 --async-polls 1 --port-file "$TMP/sf.port" --max-lifetime 600 --log-file "$TMP/sf.log" --quiet &
for _ in $(seq 1 100); do [ -s "$TMP/sf.port" ] && break; sleep 0.05; done
SF_URL="http://127.0.0.1:$(cat "$TMP/sf.port")"
fake() { curl -s -X "$1" "$SF_URL$2" ${3:+-d "$3"}; }
export BRAZE_KEY=test-key SF_KEY="$(cat "$TMP/key.pem")"
app() { # app ID TYPE EXTRA-OPTIONS
  echo "{\"class\":\"App\",\"id\":\"$1\",\"type\":\"$2\",\"options\":{\"account\":\"xy12345.us-east-1\",\"username\":\"joey\",\"warehouse\":\"compute_wh\",\"database\":\"shop\",\"endpoint\":\"$SF_URL\"$3}}"
}
config() { # config APP-JSON [TABLE] [INCREMENTAL]
  cat > "$TMP/cfg/config.json" <<EOF2
[
 $1,
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"$SIM_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"users_src","type":"snowflake-import-table","appId":"sf","modelId":"users","options":{"table":"${2:-USERS}"},"mapping":{"ID":"user_id"}},
 {"class":"Schedule","id":"users_sched","sourceId":"users_src","recurring":false,"incremental":${3:-false},"options":{"column":"UPDATED"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"users_src","options":{"column":"ID"}},
 {"class":"Property","id":"email","type":"email","sourceId":"users_src","options":{"column":"EMAIL"}},
 {"class":"Property","id":"name","type":"string","sourceId":"users_src","options":{"column":"NAME"}},
 {"class":"Property","id":"vip","type":"boolean","sourceId":"users_src","options":{"column":"VIP"}},
 {"class":"Property","id":"signup","type":"date","sourceId":"users_src","options":{"column":"SIGNUP"}},
 {"class":"Source","id":"orders_src","type":"snowflake-import-table","appId":"sf","modelId":"users","options":{"table":"ORDERS"},"mapping":{"USER_ID":"user_id"}},
 {"class":"Property","id":"spent","type":"float","sourceId":"orders_src","options":{"column":"AMOUNT","aggregationMethod":"sum"}},
 {"class":"Property","id":"items","type":"string","isArray":true,"sourceId":"orders_src","options":{"column":"ITEM","aggregationMethod":"exact","sortColumn":"AT"}},
 {"class":"Property","id":"last_item","type":"string","sourceId":"orders_src","options":{"column":"ITEM","aggregationMethod":"most recent value","sortColumn":"AT"}},
 {"class":"Destination","id":"sync","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email","first_name":"name","vip":"vip","signup":"signup","spent":"spent","items":"items","last_item":"last_item"},
  "options":{"maxDeletePercent":100}}
]
EOF2
}
J="--config $TMP/cfg"
config "$(app sf snowflake-keypair ',"private_key":"${SF_KEY}"')"

run validate $J --check-apps; expect_rc 0 "check-apps: key pair accepted"
expect_out 'source "users_src": ok' "check-apps: the users table and its columns exist"
run run $J; expect_rc 0 "first run"
sim_check "six users with Snowflake's values" 'sorted(users) == ["1","2","3","4","5","6"] and users["1"]["email"] == "ann@example.com" and users["1"]["custom_attributes"]["vip"] is True and users["2"]["custom_attributes"]["vip"] is False'
sim_check "sums, arrays in order, most recent value" 'users["1"]["custom_attributes"]["spent"] == 40.5 and users["1"]["custom_attributes"]["items"] == ["pen","book"] and users["1"]["custom_attributes"]["last_item"] == "book" and users["5"]["custom_attributes"]["spent"] == 7.25'
sim_check "timestamps to dates (milliseconds kept)" 'users["4"]["custom_attributes"]["signup"].startswith("2025-05-05T05:05:05.123")'
sim_check "a timestamp before 1970 with a fraction (Snowflake's signed seconds)" 'users["6"]["custom_attributes"]["signup"] == "1960-01-01T00:00:00.500Z"'
grep -q '"statement"' "$TMP/sf.log" && ok "the fake logged the statements" || bad "no statements in the fake's log"
grep -q '"timezone":"UTC"' "$TMP/sf.log" && ok "statements pin timezone UTC" || bad "no timezone parameter"
grep -q '"database":"SHOP"' "$TMP/sf.log" && ok "plain names upper-cased (database SHOP, warehouse COMPUTE_WH)" || bad "database not upper-cased"
POLLS=$(grep -c '"status":202' "$TMP/sf.log" || true)
[ "$POLLS" -ge 3 ] && ok "statements polled after 202 ($POLLS)" || bad "no 202 polls ($POLLS)"
PARTS=$(grep -c 'partition=' "$TMP/sf.log" || true)
[ "$PARTS" -ge 2 ] && ok "later partitions fetched ($PARTS)" || bad "no partitions fetched ($PARTS)"

# incremental on a TIMESTAMP_NTZ: the mark (lossless text, UTC) goes back as a bind
config "$(app sf snowflake-keypair ',"private_key":"${SF_KEY}"')" USERS true
run run $J; expect_rc 0 "first incremental run (full read, mark stored)"
sqlite3 "$TMP/db/SHOP.db" "UPDATE \"USERS\" SET \"NAME\" = 'Bobby', \"UPDATED\" = '2026-02-01 00:00:00' WHERE \"ID\" = 2"
M=$(sim_mark)
run run $J; expect_rc 0 "incremental run"
expect_out 'incremental since' "run says incremental"
SINCE=$M sim_check "incremental: only the changed user" '[a["external_id"] for a in track] == ["2"] and users["2"]["first_name"] == "Bobby"'
grep -q '2026-01-01 00:00:00.000000000' "$TMP/sf.log" && ok "the mark is sent with nanoseconds" || bad "mark not in the log"
config "$(app sf snowflake-keypair ',"private_key":"${SF_KEY}"')"

# 429 twice on submit: retried, the run still succeeds
fake POST /_fake/faults "status=429,count=2,on=submit" >/dev/null
sqlite3 "$TMP/db/SHOP.db" "UPDATE \"USERS\" SET \"NAME\" = 'Annie' WHERE \"ID\" = 1"
run run $J; expect_rc 0 "run through two 429s"
expect_err 'retrying' "the retries are logged"
sim_check "the change went out" 'users["1"]["first_name"] == "Annie"'

# a later partition keeps failing: the run fails and nobody is deleted
sqlite3 "$TMP/db/SHOP.db" "DELETE FROM \"USERS\" WHERE \"ID\" = 6"
fake POST /_fake/faults "status=503,count=100,on=partition,partition=2" >/dev/null
M=$(sim_mark)
run run $J; [ "$RC" -ne 0 ] && ok "a failing partition fails the run (exit $RC)" || bad "run succeeded despite a failing partition"
expect_out 'result partition 3 of 3' "the error names the partition"
SINCE=$M sim_check "no delete when a partition failed" 'not [q for q in reqs if q["path"] == "/users/delete"]'
sim_check "user 6 is still in Braze" '"6" in users'
fake DELETE /_fake/faults >/dev/null
run run $J; expect_rc 0 "once Snowflake answers again, the run converges"
sim_check "user 6 deleted" '"6" not in users'

# a partition answered 200 without its rows (a result cut short): the rows counted
# against numRows, the run fails and nobody is deleted
fake POST /_fake/faults "status=200,count=100,on=partition,partition=1" >/dev/null
M=$(sim_mark)
run run $J; [ "$RC" -ne 0 ] && ok "a partition without its rows fails the run (exit $RC)" || bad "run succeeded despite a partition without its rows"
expect_out 'numRows' "the error says rows are missing from the result"
SINCE=$M sim_check "no delete when a partition came without its rows" 'not [q for q in reqs if q["path"] == "/users/delete"]'
fake DELETE /_fake/faults >/dev/null

# plain words for what is wrong; never a secret
export OTHER_KEY="$(cat "$TMP/other.pem")"
config "$(app sf snowflake-keypair ',"private_key":"${OTHER_KEY}"')"
run validate $J --check-apps; expect_rc 1 "wrong key refused"
expect_err 'did not accept the key' "wrong key: said so"
expect_err 'SHA256:' "wrong key: the fingerprint to compare with DESCRIBE USER"
expect_no 'PRIVATE KEY' "wrong key: the key is never printed"
config "$(app sf snowflake ',"password":"expired-pat-123"')"
run validate $J --check-apps; expect_rc 1 "wrong token refused"
expect_err 'programmatic access token' "wrong token: hint names programmatic access tokens"
expect_no 'expired-pat-123' "wrong token: the token is never printed"
config "$(app sf snowflake ',"password":"good-pat"')"
run validate $J --check-apps; expect_rc 0 "a programmatic access token in password works"
config "$(app sf snowflake ',"password":"good-pat","warehouse":"NOPE_WH"' | sed 's/"warehouse":"compute_wh",//')"
run validate $J --check-apps; expect_rc 1 "unknown warehouse"
expect_err 'warehouse "NOPE_WH" does not exist' "unknown warehouse: said in plain words"
config "$(app sf snowflake-keypair ',"private_key":"${SF_KEY}"')" USER
run validate $J --check-apps; expect_rc 1 "unknown table"
expect_err 'table "USER" does not exist' "unknown table: named"
expect_err 'did you mean "USERS"?' "unknown table: did you mean"
config "$(app sf snowflake-keypair ',"private_key":"${SF_KEY}"')" users
run validate $J --check-apps; expect_rc 1 "identifiers are case-sensitive"
expect_err 'table "users" does not exist' "lower-case table name: not found, as in Snowflake"
! grep -q 'good-pat\|BEGIN\|eyJ' "$TMP/sf.log" && ok "the fake's request log holds no token" || bad "token in the request log"
finish
