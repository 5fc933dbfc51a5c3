#!/usr/bin/env bash
# run_incremental_unordered.sh: a PostgreSQL mark column holding a value outside the
# order a mark needs: 'infinity' (timestamps, dates, floats) or 'NaN' (floats, numeric;
# PostgreSQL sorts it above every number). One such row became the mark, and every
# incremental run then read only `>= 'infinity'`: a new row and a changed row were
# skipped, with exit 0, until the row went. Such a value now counts as no value (as
# NULL): the mark comes from the other rows, and the infinite row is read again by each
# incremental run (unchanged, nothing sent). Skipped without $JOEY_PG_URL.
set -e
source "$(dirname "$0")/lib.bash"
E2E_BACKEND=postgres db_setup
sim_start
export BRAZE_KEY=test-key GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"

# case NAME TYPE V1 V2 ODD: rows 1 (V1) and 2 (ODD) read by a first run; then row 3 (V2)
# arrives and row 1 changes to V2: the incremental run sends both
case_() {
  local name=$1 t=$2 v1=$3 v2=$4 odd=$5 tb="t_$RANDOM"
  sq "CREATE TABLE $tb (id INTEGER PRIMARY KEY, name TEXT, u $t)"
  sq "INSERT INTO $tb VALUES (1, 'Ann', $v1), (2, 'Bob', $odd)"
  mkdir -p "$TMP/$tb"
  cat > "$TMP/$tb/config.json" <<CFG
[
 $DB_APP,
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"BRAZE_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"postgres-import-table","appId":"db","modelId":"users","options":{"table":"$tb"},"mapping":{"id":"user_id"}},
 {"class":"Schedule","id":"s","sourceId":"src","recurring":false,"incremental":true,"options":{"column":"u"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Destination","id":"d_$tb","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","first_name":"name"}}
]
CFG
  local J="--config $TMP/$tb --state $TMP/$tb/state.db" M
  run run $J; expect_rc 0 "$name: first run"
  expect_no "mark now $(tr -d "'" <<<"$odd")" "$name: the odd value is not the mark"
  sq "INSERT INTO $tb VALUES (3, 'Cy', $v2)"
  sq "UPDATE $tb SET name = 'Annie', u = $v2 WHERE id = 1"
  M=$(sim_mark)
  run run $J; expect_rc 0 "$name: incremental run"
  expect_out 'incremental since ' "$name: the run is incremental"
  expect_out 'created 1, updated 1, deleted 0, unsubscribed 0, unchanged 1,' "$name: the new and the changed row are sent, the odd one read"
  SINCE=$M sim_check "$name: Braze got Cy and Annie" \
    'sorted((a["external_id"], a.get("first_name")) for a in track) == [("1", "Annie"), ("3", "Cy")]'
}
case_ "timestamptz infinity" timestamptz "'2026-01-01'" "'2026-02-01'" "'infinity'"
case_ "date infinity" date "'2026-01-01'" "'2026-02-01'" "'infinity'"
case_ "double precision NaN" "double precision" 1 2 "'NaN'"
case_ "double precision Infinity" "double precision" 1 2 "'Infinity'"
case_ "numeric NaN" numeric 1 2 "'NaN'"
# config_like TB: $TMP/TB/config.json, the first case's config reading table TB
config_like() {
  mkdir -p "$TMP/$1"
  sed "s/\"table\":\"t_[0-9]*\"/\"table\":\"$1\"/; s/\"d_t_[0-9]*\"/\"d_$1\"/" \
    "$(ls -d "$TMP"/t_[0-9]* | head -1)/config.json" > "$TMP/$1/config.json"
}
# a mark already stored as 'infinity' (by a joey before such a value was no mark): every
# run read only `>= 'infinity'` and kept it, skipping every change for good; now the run
# reads everything once and stores a usable mark
tb=t_stored
sq "CREATE TABLE $tb (id INTEGER PRIMARY KEY, name TEXT, u timestamptz)"
sq "INSERT INTO $tb VALUES (1, 'Ann', '2026-01-01'), (2, 'Bob', 'infinity')"
config_like "$tb"
J="--config $TMP/$tb --state $TMP/$tb/state.db"
run run $J; expect_rc 0 "stored infinity: first run"
sqlite3 "$TMP/$tb/state.db" "UPDATE marks SET value = 'infinity'"
sq "INSERT INTO $tb VALUES (3, 'Cy', '2026-02-01')"
sq "UPDATE $tb SET name = 'Annie', u = '2026-02-01' WHERE id = 1"
M=$(sim_mark)
run run $J; expect_rc 0 "stored infinity: next run"
expect_out 'full read' "stored infinity: the run reads everything"
expect_out 'mark now 2026-02-01' "stored infinity: a usable mark is stored"
SINCE=$M sim_check "stored infinity: Braze got Cy and Annie" \
  'sorted((a["external_id"], a.get("first_name")) for a in track) == [("1", "Annie"), ("3", "Cy")]'
run run $J; expect_rc 0 "stored infinity: then incremental"
expect_out 'incremental since 2026-02-01' "stored infinity: incremental again"
# a text column's 'infinity' is a string like any other: it is the mark ('i' > '2')
tb=t_text
sq "CREATE TABLE $tb (id INTEGER PRIMARY KEY, name TEXT, u TEXT)"
sq "INSERT INTO $tb VALUES (1, 'Ann', '2026'), (2, 'Bob', 'infinity')"
config_like "$tb"
run run --config "$TMP/$tb" --state "$TMP/$tb/state.db"; expect_rc 0 "text column: first run"
expect_out 'mark now infinity' "text column: 'infinity' is text, the mark"
finish
