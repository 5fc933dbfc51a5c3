#!/usr/bin/env bash
# run_incremental_float.sh: an incremental schedule whose column is a FLOAT: the mark is
# the value the database compares, never one rounded past it. MariaDB's client turned a
# FLOAT into text of 6 digits (1.2345678 as 1.23457, above the stored value), so the
# next run's `m >= 1.23457` skipped a row arriving with the boundary row's value, for
# good. Run with E2E_BACKEND=mysql|postgres too (the _mysql/_postgres wrappers).
set -e
source "$(dirname "$0")/lib.bash"
sim_start
export BRAZE_KEY=test-key GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
mkdir -p "$TMP/cfg"
db_setup
sq "CREATE TABLE scores (id INTEGER PRIMARY KEY, name VARCHAR(100), m FLOAT)"
sq "INSERT INTO scores VALUES (1,'Ann',0.5),(2,'Bob',1.2345678)"
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
sq "INSERT INTO scores VALUES (3,'Cy',1.2345678)"
M=$(sim_mark); run run $J; expect_rc 0 "incremental run"
expect_out 'incremental since ' "the run is incremental"
expect_out 'created 1, updated 0, deleted 0, unsubscribed 0, unchanged 1,' "the boundary row and the new row with its value are read"
SINCE=$M sim_check "the row with the mark's value is sent" '[a["external_id"] for a in track] == ["3"]'

# the boundary row itself changes without moving its value: read again, sent
sq "UPDATE scores SET name='Bobby' WHERE id=2"
M=$(sim_mark); run run $J; expect_rc 0 "boundary row changed"
SINCE=$M sim_check "the boundary row's change is sent" 'users["2"]["first_name"] == "Bobby"'
finish
