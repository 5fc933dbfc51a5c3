#!/usr/bin/env bash
# run_incremental_float.sh: an incremental schedule whose column is a FLOAT: the mark is
# the value the database compares, never one rounded past it. MariaDB's client turned a
# FLOAT into text of 6 digits (1.2345678 as 1.23457, above the stored value), so the
# next run's `m >= 1.23457` skipped a row arriving with the boundary row's value, for
# good. A PostgreSQL server, database or role with extra_float_digits = 0 did the same to
# real and double precision columns (15 digits: 1.2345678901234567 as 1.23456789012346).
# Run with E2E_BACKEND=mysql|postgres too (the _mysql/_postgres wrappers).
set -e
source "$(dirname "$0")/lib.bash"
sim_start
export BRAZE_KEY=test-key GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
mkdir -p "$TMP/cfg"
db_setup
M_TYPE=FLOAT M_VALUE=1.2345678
if [ "$DB_BACKEND" = postgres ]; then
  # a database of its own with extra_float_digits = 0 (its sessions get the setting);
  # the shared one is left alone for the tests running beside this one
  M_TYPE="DOUBLE PRECISION" M_VALUE=1.2345678901234567
  FD_DB="e2e_fd_$$_$RANDOM"
  psql "$JOEY_PG_URL" -qAt -v ON_ERROR_STOP=1 -c "CREATE DATABASE $FD_DB" >/dev/null
  psql "$JOEY_PG_URL" -qAt -v ON_ERROR_STOP=1 -c "ALTER DATABASE $FD_DB SET extra_float_digits = 0" >/dev/null
  fd_drop() { psql "$JOEY_PG_URL" -qAt -c "DROP DATABASE IF EXISTS $FD_DB" >/dev/null 2>&1 || true; e2e_cleanup; }
  trap fd_drop EXIT
  FD_URL="${JOEY_PG_URL%/*}/$FD_DB"
  sq() { psql "$FD_URL" -qAt -v ON_ERROR_STOP=1 -c "$1" >/dev/null; }
  DB_APP=${DB_APP/\"database\":\"$(url_part "$JOEY_PG_URL" database)\"/\"database\":\"$FD_DB\"}
  DB_APP=${DB_APP/\"schema\":\"$DB_SCHEMA\"/\"schema\":\"public\"}
fi
sq "CREATE TABLE scores (id INTEGER PRIMARY KEY, name VARCHAR(100), m $M_TYPE)"
sq "INSERT INTO scores VALUES (1,'Ann',0.5),(2,'Bob',$M_VALUE)"
cat > "$TMP/cfg/config.json" <<EOF2
[
 $DB_APP,
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"BRAZE_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"$DB_ST-import-table","appId":"db","modelId":"users","options":{"table":"scores"},"mapping":{"id":"user_id"}},
 {"class":"Schedule","id":"s","sourceId":"src","recurring":false,"incremental":true,"options":{"column":"m"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Destination","id":"sync","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","first_name":"name"}}
]
EOF2
J="--config $TMP/cfg"

run run $J; expect_rc 0 "first run"
sim_check "first run: both users" 'sorted(users) == ["1","2"]'
expect_out 'mark now ' "first run stores a mark"

# a row with the boundary row's value arrives after the run
sq "INSERT INTO scores VALUES (3,'Cy',$M_VALUE)"
M=$(sim_mark); run run $J; expect_rc 0 "incremental run"
expect_out 'incremental since ' "the run is incremental"
expect_out 'created 1, updated 0, deleted 0, unsubscribed 0, unchanged 1,' "the boundary row and the new row with its value are read"
SINCE=$M sim_check "the row with the mark's value is sent" '[a["external_id"] for a in track] == ["3"]'

# the boundary row itself changes without moving its value: read again, sent
sq "UPDATE scores SET name='Bobby' WHERE id=2"
M=$(sim_mark); run run $J; expect_rc 0 "boundary row changed"
SINCE=$M sim_check "the boundary row's change is sent" 'users["2"]["first_name"] == "Bobby"'
finish
