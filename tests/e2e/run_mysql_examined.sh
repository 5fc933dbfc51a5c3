#!/usr/bin/env bash
# run_mysql_examined.sh: a MariaDB query source whose statement the server stops early.
# `LIMIT ROWS EXAMINED n` (MariaDB's, allowed in a derived table, so in a query source's
# text) stops a statement once n rows were examined. joey's statements sort by the key
# before their first row, so the sort is aborted and the run fails whole; nothing is
# deleted. But the error arrives while the statement streams, and the client library
# leaves it on the connection, not the statement: the run said only "query failed",
# with no detail. It now says the server's error and, for this one, a hint. Warnings
# that do not cut a result leave the run as it was. Skipped without $JOEY_MYSQL_URL.
set -e
source "$(dirname "$0")/lib.bash"
E2E_BACKEND=mysql db_setup
sq "CREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(100));
    INSERT INTO users SELECT seq, CONCAT('u', seq, '@example.com') FROM seq_1_to_200;"
sim_start
config() { # config QUERY
  mkdir -p "$TMP/cfg"
  cat > "$TMP/cfg/config.json" <<CFG
[
 $DB_APP,
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"test-key","restEndpoint":"$SIM_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"mysql-import-query","appId":"db","modelId":"users","options":{"query":"$1"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email"}}
]
CFG
}
J="--config $TMP/cfg"

config "SELECT id, email FROM users"
run run $J; expect_rc 0 "first run"
sim_check "first run: 200 users" 'len(users) == 200'

# a limit the statement stays under: a warning-free, whole result, as before
config "SELECT id, email FROM users LIMIT ROWS EXAMINED 100000"
sq "UPDATE users SET email = 'changed@example.com' WHERE id = 3"
run run $J; expect_rc 0 "a limit not reached"
expect_out 'updated 1,' "a limit not reached: the change sent"
expect_out 'deleted 0,' "a limit not reached: nothing deleted"

# the limit cuts the result at 190 of 200 rows
config "SELECT id, email FROM users LIMIT ROWS EXAMINED 190"
for cmd in run plan; do
  M=$(sim_mark)
  run $cmd $J; expect_rc 1 "cut result: $cmd fails"
  ALL="$OUT$ERR"
  grep -qF 'source "src": query failed' <<<"$ALL" && ok "cut result: $cmd names the source" ||
    bad "cut result: $cmd names the source: $ALL"
  grep -qF 'Sort aborted: LIMIT ROWS EXAMINED' <<<"$ALL" && ok "cut result: $cmd says the server's error" ||
    bad "cut result: $cmd says the server's error: $ALL"
  grep -qF 'hint: remove LIMIT ROWS EXAMINED' <<<"$ALL" && ok "cut result: $cmd hints at the fix" ||
    bad "cut result: $cmd hints at the fix: $ALL"
  expect_no 'deleted 10' "cut result: $cmd deletes nothing"
  SINCE=$M sim_check "cut result: $cmd sends no /users/delete" 'not [q for q in reqs if q["path"] == "/users/delete"]'
done
sim_check "cut result: all 200 users still in Braze" 'len(users) == 200'

# warnings that do not cut the result (a value cast) leave the run as it was
config "SELECT id, email, CAST('12abc' AS INTEGER) AS junk FROM users"
run run $J; expect_rc 0 "a harmless warning"
expect_out 'deleted 0,' "a harmless warning: nothing deleted"

# the limit gone: a row deleted in the table is deleted in Braze
config "SELECT id, email FROM users"
sq "DELETE FROM users WHERE id = 7"
run run $J; expect_rc 0 "a deleted row"
expect_out 'deleted 1,' "a deleted row: deleted"
sim_check "a deleted row: 199 users" 'len(users) == 199 and "7" not in users'
finish
