#!/usr/bin/env bash
# warehouse_bigquery.sh: a BigQuery source synced to the Braze simulator through
# warehouse-fake --mode bigquery: the service-account JWT exchanged for access tokens
# that expire every 2 s (renewed), pages of 2 rows, every job polled once, parameters
# typed by their column (the fake refuses a STRING compared with an INT64 column), an
# incremental schedule on a TIMESTAMP, retried 429s and rateLimitExceeded; a later page
# that keeps failing fails the run and deletes nobody; --check-apps names a wrong key,
# a missing dataset and a missing grant in plain words; no secret is ever printed.
set -e
source "$(dirname "$0")/lib.bash"
FAKE_BIN=$(dirname "$JOEY")/warehouse-fake
[ -x "$FAKE_BIN" ] || { echo "skipped: $FAKE_BIN is not built"; echo "0 passed, 0 failed"; exit 0; }
sim_start
mkdir -p "$TMP/cfg" "$TMP/db"
openssl genrsa -out "$TMP/key.pem" 2048 2>/dev/null
openssl rsa -in "$TMP/key.pem" -pubout -out "$TMP/pub.pem" 2>/dev/null
openssl genrsa -out "$TMP/other.pem" 2048 2>/dev/null
sqlite3 "$TMP/db/crm.db" <<'SQL'
CREATE TABLE users (id INT64, email STRING, name STRING, vip BOOL, signup TIMESTAMP, updated TIMESTAMP, score FLOAT64);
INSERT INTO users VALUES (1,'ann@example.com','Ann',1,'2024-01-02 03:04:05.678','2026-01-01 00:00:00',1.5),
 (2,'bob@example.com','Bob',0,'2024-02-03 00:00:00','2026-01-01 00:00:00',2),
 (3,'cy@example.com','Cy',1,NULL,'2026-01-01 00:00:00',NULL),
 (4,'di@example.com','Di',0,'2025-05-05 05:05:05','2026-01-01 00:00:00',4.25),
 (5,'ed@example.com','Ed',1,'2025-06-06 00:00:00','2026-01-01 00:00:00',5),
 (6,'fay@example.com','Fay',0,'2025-07-07 00:00:00','2026-01-01 00:00:00',6);
CREATE TABLE orders (user_id INT64, amount NUMERIC, item STRING, at TIMESTAMP);
INSERT INTO orders VALUES (1,10.5,'pen','2026-01-01 00:00:00'),(1,30,'book','2026-03-01 00:00:00'),(2,5,'gum','2026-02-01 00:00:00'),
 (5,7.25,'cup','2026-02-02 00:00:00');
SQL
"$FAKE_BIN" --mode bigquery --db-dir "$TMP/db" --public-key "$TMP/pub.pem" --client-email joey@proj-1.iam.gserviceaccount.com \
  --project proj-1 --location EU --token-expires 2 --rows-per-partition 2 --async-polls 1 --port-file "$TMP/bq.port" \
  --max-lifetime 600 --log-file "$TMP/bq.log" --quiet &
for _ in $(seq 1 100); do [ -s "$TMP/bq.port" ] && break; sleep 0.05; done
BQ_URL="http://127.0.0.1:$(cat "$TMP/bq.port")"
fake() { curl -s -X "$1" "$BQ_URL$2" ${3:+-d "$3"}; }
export BRAZE_KEY=test-key BQ_KEY="$(cat "$TMP/key.pem")"
app() { # app EXTRA-OPTIONS (project_id, dataset and location may be overridden)
  local o='"project_id":"proj-1","dataset":"crm","location":"EU","client_email":"joey@proj-1.iam.gserviceaccount.com","private_key":"${BQ_KEY}"'
  echo "{\"class\":\"App\",\"id\":\"bq\",\"type\":\"bigquery\",\"options\":{$o,\"endpoint\":\"$BQ_URL\"${1:-}}}"
}
config() { # config APP-JSON [TABLE] [INCREMENTAL]
  cat > "$TMP/cfg/config.json" <<EOF2
[
 $1,
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"$SIM_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"users_src","type":"bigquery-import-table","appId":"bq","modelId":"users","options":{"table":"${2:-users}"},"mapping":{"id":"user_id"}},
 {"class":"Schedule","id":"users_sched","sourceId":"users_src","recurring":false,"incremental":${3:-false},"options":{"column":"updated"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"users_src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"users_src","options":{"column":"email"}},
 {"class":"Property","id":"name","type":"string","sourceId":"users_src","options":{"column":"name"}},
 {"class":"Property","id":"vip","type":"boolean","sourceId":"users_src","options":{"column":"vip"}},
 {"class":"Property","id":"signup","type":"date","sourceId":"users_src","options":{"column":"signup"}},
 {"class":"Property","id":"score","type":"float","sourceId":"users_src","options":{"column":"score"},"filters":[{"key":"id","op":"ne","match":"3"}]},
 {"class":"Source","id":"orders_src","type":"bigquery-import-table","appId":"bq","modelId":"users","options":{"table":"crm.orders"},"mapping":{"user_id":"user_id"}},
 {"class":"Property","id":"spent","type":"float","sourceId":"orders_src","options":{"column":"amount","aggregationMethod":"sum"}},
 {"class":"Property","id":"items","type":"string","isArray":true,"sourceId":"orders_src","options":{"column":"item","aggregationMethod":"exact","sortColumn":"at"}},
 {"class":"Property","id":"last_order","type":"date","sourceId":"orders_src","options":{"column":"at","aggregationMethod":"max"}},
 {"class":"Destination","id":"sync","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email","first_name":"name","vip":"vip","signup":"signup","score":"score","spent":"spent","items":"items","last_order":"last_order"},
  "options":{"maxDeletePercent":100}}
]
EOF2
}
J="--config $TMP/cfg"
config "$(app)"

run validate $J --check-apps; expect_rc 0 "check-apps: service account accepted"
expect_out 'source "users_src": ok' "check-apps: table, columns and the typed statement (dry run) are fine"
run run $J; expect_rc 0 "first run"
sim_check "six users with BigQuery's values" 'sorted(users) == ["1","2","3","4","5","6"] and users["1"]["custom_attributes"]["vip"] is True and users["2"]["custom_attributes"]["vip"] is False'
sim_check "int64 timestamps to dates with milliseconds" 'users["1"]["custom_attributes"]["signup"].startswith("2024-01-02T03:04:05.678") and users["1"]["custom_attributes"]["last_order"].startswith("2026-03-01T00:00:00")'
sim_check "a filter typed by its INT64 column (\"3\" sent as INT64)" 'users["1"]["custom_attributes"]["score"] == 1.5 and "score" not in users["3"].get("custom_attributes", {})'
sim_check "sums over NUMERIC, arrays in order (dataset.table path)" 'users["1"]["custom_attributes"]["spent"] == 40.5 and users["1"]["custom_attributes"]["items"] == ["pen","book"]'
grep -q '"useLegacySql":false' "$TMP/bq.log" && ok "useLegacySql false on every query" || bad "useLegacySql not sent"
grep -q 'useInt64Timestamp=true' "$TMP/bq.log" && ok "int64 timestamps asked for" || bad "no int64 timestamps"
grep -q 'location=EU' "$TMP/bq.log" && ok "getQueryResults carries the location" || bad "no location on polls"
grep -q '"type":"INT64"' "$TMP/bq.log" && ok "parameters typed INT64" || bad "no INT64 parameter"
PAGES=$(grep -c 'pageToken=' "$TMP/bq.log" || true)
[ "$PAGES" -ge 2 ] && ok "later pages read with pageToken ($PAGES)" || bad "no pages ($PAGES)"
sleep 2.2
run run $J; expect_rc 0 "second run after the access token expired"
T=$(fake GET /_fake/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["tokens_issued"])')
[ "$T" -ge 3 ] && ok "access tokens renewed ($T issued)" || bad "token not renewed ($T)"

# incremental on a TIMESTAMP: the mark goes back as a TIMESTAMP parameter
config "$(app)" users true
run run $J; expect_rc 0 "first incremental run (full read, mark stored)"
sqlite3 "$TMP/db/crm.db" "UPDATE users SET name = 'Bobby', updated = '2026-02-01 00:00:00' WHERE id = 2"
M=$(sim_mark)
run run $J; expect_rc 0 "incremental run"
expect_out 'incremental since' "run says incremental"
SINCE=$M sim_check "incremental: only the changed user" '[a["external_id"] for a in track] == ["2"] and users["2"]["first_name"] == "Bobby"'
grep -q '"type":"TIMESTAMP"' "$TMP/bq.log" && ok "the mark is a TIMESTAMP parameter" || bad "mark not typed TIMESTAMP"
config "$(app)"

# 429 and rateLimitExceeded on jobs.query: retried
fake POST /_fake/faults "status=429,count=1,on=query" >/dev/null
fake POST /_fake/faults "status=403,count=1,on=query,reason=rateLimitExceeded" >/dev/null
sqlite3 "$TMP/db/crm.db" "UPDATE users SET name = 'Annie' WHERE id = 1"
run run $J; expect_rc 0 "run through 429 and rateLimitExceeded"
expect_err 'rateLimitExceeded; retrying' "the retry names the reason"
sim_check "the change went out" 'users["1"]["first_name"] == "Annie"'

# a later page keeps failing: the run fails and nobody is deleted
sqlite3 "$TMP/db/crm.db" "DELETE FROM users WHERE id = 6"
fake POST /_fake/faults "status=503,count=100,on=page,page=2" >/dev/null
M=$(sim_mark)
run run $J; [ "$RC" -ne 0 ] && ok "a failing page fails the run (exit $RC)" || bad "run succeeded despite a failing page"
expect_out 'result page 3' "the error names the page"
SINCE=$M sim_check "no delete when a page failed" 'not [q for q in reqs if q["path"] == "/users/delete"]'
sim_check "user 6 is still in Braze" '"6" in users'
fake DELETE /_fake/faults >/dev/null
run run $J; expect_rc 0 "once BigQuery answers again, the run converges"
sim_check "user 6 deleted" '"6" not in users'

# a page answered 200 without rows or pageToken (paging ended early): the rows counted
# against totalRows, the run fails and nobody is deleted
fake POST /_fake/faults "status=200,count=100,on=page,page=1" >/dev/null
M=$(sim_mark)
run run $J; [ "$RC" -ne 0 ] && ok "a page cut short fails the run (exit $RC)" || bad "run succeeded despite a page cut short"
expect_out 'totalRows' "the error says rows are missing from the result"
SINCE=$M sim_check "no delete when paging ended early" 'not [q for q in reqs if q["path"] == "/users/delete"]'
fake DELETE /_fake/faults >/dev/null

# the token endpoint keeps failing (an outage): said as one, the key is not blamed
sleep 2 # the access token (2 s) expires, so the next run asks for one
fake POST /_fake/faults "status=503,count=100,on=token" >/dev/null
run validate $J --check-apps; expect_rc 1 "token endpoint outage: fails"
expect_err "Google's token endpoint kept failing" "token endpoint outage: said as an outage"
expect_no "refused the service account's key" "token endpoint outage: the key is not blamed"
fake DELETE /_fake/faults >/dev/null

# plain words; never a secret
export OTHER_KEY="$(cat "$TMP/other.pem")"
config "$(app | sed 's/BQ_KEY/OTHER_KEY/')"
run validate $J --check-apps; expect_rc 1 "wrong key refused"
expect_err "Google refused the service account's key" "wrong key: said so"
expect_no 'PRIVATE KEY' "wrong key: the key is never printed"
config "$(app | sed 's/"dataset":"crm"/"dataset":"crm2"/')"
run validate $J --check-apps; expect_rc 1 "unknown dataset"
expect_err 'dataset "crm2" does not exist in project "proj-1"' "unknown dataset: said in plain words"
config "$(app | sed 's/"project_id":"proj-1"/"project_id":"proj-2"/')"
run validate $J --check-apps; expect_rc 1 "no permission in another project"
expect_err 'roles/bigquery.dataViewer' "missing grant: names the role to grant"
config "$(app | sed 's/"location":"EU"/"location":"US"/')"
run validate $J --check-apps; expect_rc 1 "wrong location"
expect_err 'is in location "EU", not "US"' "wrong location: said so"
config "$(app)" user
run validate $J --check-apps; expect_rc 1 "unknown table"
expect_err 'did you mean "users"?' "unknown table: did you mean"
! grep -q 'ya29\|BEGIN\|assertion' "$TMP/bq.log" && ok "the fake's request log holds no token or key" || bad "secret in the request log"
finish
