#!/usr/bin/env bash
# run_incremental_unordered_sqlite.sh: a SQLite REAL mark column holding infinity (a
# value of 9e999). Its text "Inf" became the mark, and SQLite orders every number below
# text, so each incremental run compared `column >= 'Inf'`, read nothing and kept the
# mark: a new row and a changed row were skipped with exit 0, for good. Infinity now
# counts as no value (as NULL), as on PostgreSQL (run_incremental_unordered.sh).
set -e
source "$(dirname "$0")/lib.bash"
sim_start
sqlite3 "$TMP/data.db" "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, u REAL);
INSERT INTO users VALUES (1, 'Ann', 1.0), (2, 'Bob', 9e999);"
mkdir -p "$TMP/cfg"
cat > "$TMP/cfg/config.json" <<CFG
[
 {"class":"App","id":"db","type":"sqlite","options":{"file":"data.db"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"test-key","restEndpoint":"$SIM_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"sqlite-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Schedule","id":"s","sourceId":"src","recurring":false,"incremental":true,"options":{"column":"u"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","first_name":"name"}}
]
CFG
J="--config $TMP/cfg --state $TMP/state.db"
run run $J; expect_rc 0 "first run"
expect_out 'mark now 1.0$' "infinity is not the mark"
sqlite3 "$TMP/data.db" "INSERT INTO users VALUES (3, 'Cy', 2.0); UPDATE users SET name = 'Annie', u = 2.0 WHERE id = 1;"
M=$(sim_mark)
run run $J; expect_rc 0 "incremental run"
expect_out 'incremental since 1.0 ' "the run is incremental from the finite mark"
expect_out 'created 1, updated 1, deleted 0, unsubscribed 0, unchanged 1,' "the new and the changed row are sent, the infinite one read"
expect_out 'mark now 2.0$' "the mark moves"
SINCE=$M sim_check "Braze got Cy and Annie" \
  'sorted((a["external_id"], a.get("first_name")) for a in track) == [("1", "Annie"), ("3", "Cy")]'
finish
