#!/usr/bin/env bash
# run_mysql_cut.sh: a MariaDB server whose global settings cut every SELECT short without
# an error. sql_select_limit (SET GLOBAL, or through init_connect) is the default of
# every new session and ends a result after that many rows, with no error and no
# warning; joey took the rows it did not get for deleted, under the mass-delete guard
# (5% of the users, exit 0). Each session now sets it back to the largest value. The
# server is a private one (scripts/test-servers.sh), since a global setting would cut
# the other tests' reads short. Skipped without $JOEY_MYSQL_URL (no MariaDB here).
set -e
source "$(dirname "$0")/lib.bash"
[ -n "${JOEY_MYSQL_URL:-}" ] || { echo "skipped: JOEY_MYSQL_URL is not set"; echo "0 passed, 0 failed"; exit 0; }
MYDIR=""
my_cleanup() {
  [ -z "$MYDIR" ] || bash "$SRC/scripts/test-servers.sh" stop "$MYDIR" >/dev/null 2>&1 || true
  e2e_cleanup
}
trap my_cleanup EXIT
eval "$(JOEY_TEST_SERVERS=mysql bash "$SRC/scripts/test-servers.sh" start 2>"$TMP/servers.log")" ||
  { cat "$TMP/servers.log"; echo "FAIL: a private MariaDB did not start"; exit 1; }
MYDIR=$JOEY_TEST_SERVERS_DIR
root() { mariadb --no-defaults -S "$MYDIR/my/sock" -u root -e "$1"; }
root "USE joey; CREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(100));
      INSERT INTO users SELECT seq, CONCAT('u', seq, '@example.com') FROM seq_1_to_200;"

sim_start
trap my_cleanup EXIT
export E2E_DB_PASSWORD=$(url_part "$JOEY_MYSQL_URL" password)
mkdir -p "$TMP/cfg"
cat > "$TMP/cfg/config.json" <<CFG
[
 {"class":"App","id":"db","type":"mysql","options":{"host":"127.0.0.1","port":$(url_part "$JOEY_MYSQL_URL" port),"database":"joey","user":"joey","password":"\${E2E_DB_PASSWORD}"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"test-key","restEndpoint":"$SIM_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"mysql-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email"}}
]
CFG
J="--config $TMP/cfg"

run run $J; expect_rc 0 "first run"
sim_check "first run: 200 users" 'len(users) == 200'

cut_case() { # cut_case NAME: the server now cuts every SELECT at 190 rows
  local M
  M=$(sim_mark)
  run run $J; expect_rc 0 "$1: run"
  expect_out 'deleted 0,' "$1: nothing deleted"
  SINCE=$M sim_check "$1: no /users/delete" 'not [q for q in reqs if q["path"] == "/users/delete"]'
  sim_check "$1: all 200 users still in Braze" 'len(users) == 200'
}
restore() { # no limit again: a run puts back whatever a cut deleted
  run run $J; expect_rc 0 "$1: run without the limit"
  sim_check "$1: run without the limit: 200 users" 'len(users) == 200'
}
root "SET GLOBAL sql_select_limit = 190"
cut_case "global sql_select_limit"
root "SET GLOBAL sql_select_limit = DEFAULT"
restore "global sql_select_limit"
root "SET GLOBAL init_connect = 'SET sql_select_limit = 190'"
cut_case "sql_select_limit set by init_connect"
root "SET GLOBAL init_connect = ''"
restore "sql_select_limit set by init_connect"

# the limit gone: a row deleted in the table is deleted in Braze as before
root "DELETE FROM joey.users WHERE id = 7"
run run $J; expect_rc 0 "a deleted row"
expect_out 'deleted 1,' "a deleted row: deleted"
sim_check "a deleted row: 199 users" 'len(users) == 199 and "7" not in users'
finish
