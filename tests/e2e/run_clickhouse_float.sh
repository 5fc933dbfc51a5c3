#!/usr/bin/env bash
# run_clickhouse_float.sh: an incremental schedule on a ClickHouse Float32 column: the
# mark is the column's exact value. ClickHouse prints a Float32 as its shortest text
# (1.2345678), and `m >= 1.2345678` compares the column as a Float64 (1.2345677614...),
# which is below: the row that set the mark and every later row with its value were
# skipped, for good. A Float64 column's inf or nan is never the mark (it was, and every
# incremental run then read only `>= inf`). Needs $JOEY_CLICKHOUSE_URL (scripts/test-servers.sh); skipped
# without it, except CI=true.
set -e
source "$(dirname "$0")/lib.bash"
ch_setup e2e_chf
chq "CREATE TABLE scores (id Int64, name String, m Float32) ENGINE = ReplacingMergeTree ORDER BY id" "$DB"
chq "INSERT INTO scores VALUES (1,'Ann',0.5),(2,'Bob',1.2345678)" "$DB"

sim_start
export BRAZE_KEY=test-key GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL" CH_PASSWORD="$CH_PW" GROUPAROO_OPTION__APP__CH_LOGIN="$CH_USER"
mkdir -p "$TMP/cfg"
cat > "$TMP/cfg/config.json" <<EOF2
[
 {"class":"App","id":"ch","type":"clickhouse","options":{"host":"http://$CH_HOST","port":$CH_PORT,"database":"$DB","user":"CH_LOGIN","password":"\${CH_PASSWORD}"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"BRAZE_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"clickhouse-import-table","appId":"ch","modelId":"users","options":{"table":"scores"},"mapping":{"id":"user_id"}},
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
expect_out 'mark now 1\.2345677614212036' "the mark is the Float32's exact value"

# a row with the boundary row's value arrives after the run
chq "INSERT INTO scores VALUES (3,'Cy',1.2345678)" "$DB"
M=$(sim_mark); run run $J; expect_rc 0 "incremental run"
expect_out 'incremental since ' "the run is incremental"
SINCE=$M sim_check "the row with the mark's value is sent" '[a["external_id"] for a in track] == ["3"]'

# the boundary row itself changes without moving its value
chq "INSERT INTO scores VALUES (2,'Bobby',1.2345678)" "$DB"
chq "OPTIMIZE TABLE scores FINAL" "$DB"
M=$(sim_mark); run run $J; expect_rc 0 "boundary row changed"
SINCE=$M sim_check "the boundary row's change is sent" 'users["2"]["first_name"] == "Bobby"'

# a Float64 mark column holding inf or nan: never the mark (source_since_unordered); the
# mark `inf` made every incremental run read only `>= inf`, every change skipped
for odd in inf nan -inf; do
  T="odd_$RANDOM"
  chq "CREATE TABLE $T (id Int64, name String, m Float64) ENGINE = ReplacingMergeTree ORDER BY id" "$DB"
  chq "INSERT INTO $T VALUES (1,'Ann',1),(2,'Bob',$odd)" "$DB"
  mkdir -p "$TMP/$T"
  sed "s/\"table\":\"scores\"/\"table\":\"$T\"/" "$TMP/cfg/config.json" > "$TMP/$T/config.json"
  JT="--config $TMP/$T --state $TMP/$T/state.db"
  run run $JT; expect_rc 0 "Float64 $odd: first run"
  expect_out 'mark now 1$' "Float64 $odd: the mark is the other row's"
  chq "INSERT INTO $T VALUES (3,'Cy',2),(1,'Annie',2)" "$DB"
  chq "OPTIMIZE TABLE $T FINAL" "$DB"
  M=$(sim_mark); run run $JT; expect_rc 0 "Float64 $odd: incremental run"
  expect_out 'incremental since 1 ' "Float64 $odd: the run is incremental"
  SINCE=$M sim_check "Float64 $odd: the new and the changed row are sent" \
    'sorted((a["external_id"], a.get("first_name")) for a in track) == [("1", "Annie"), ("3", "Cy")]'
done
finish
