#!/usr/bin/env bash
# bench/sources_fakes.sh: time `joey plan` on N users (default 200,000) with 8 properties
# read from Snowflake and from BigQuery through warehouse-fake (tests/fakes/README.md),
# against a raw read of the same columns through the same fake in the same run (one
# statement / job, every partition or page fetched and parsed: bench/fake_raw.py), and
# against sqlite3 reading the same columns from the same file. Prints times and ratios.
# Run by hand (not in CI):  bash bench/sources_fakes.sh [N]
# The fake encodes every cell as JSON on each request, so the raw read measures the
# fake's own cost too; the ratio shows what joey adds on top of the protocol.
# Environment: JOEY_BENCH_BUILD (build directory, default build-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200000}
OUT=bench/out/sources_fakes
rm -rf "$OUT" && mkdir -p "$OUT/db" "$OUT/cfg"
command -v /usr/bin/time >/dev/null || { echo "bench needs GNU time: apt-get install time"; exit 1; }
BUILD=${JOEY_BENCH_BUILD:-build-bench}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DJOEY_WERROR=OFF >/dev/null
ninja -C "$BUILD" joey warehouse-fake >/dev/null
JOEY=$BUILD/joey FAKE=$BUILD/warehouse-fake
openssl genrsa -out "$OUT/key.pem" 2048 2>/dev/null
openssl rsa -in "$OUT/key.pem" -pubout -out "$OUT/pub.pem" 2>/dev/null

echo "generating $N users..."
/usr/bin/python3 - "$OUT/db/BENCH.db" "$N" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1]); n = int(sys.argv[2])
db.execute('CREATE TABLE "USERS" ("ID" NUMBER(38,0), "EMAIL" VARCHAR, "FIRST_NAME" VARCHAR, "COUNTRY" VARCHAR, '
           '"AGE" NUMBER(38,0), "SCORE" FLOAT, "VIP" BOOLEAN, "SIGNUP" TIMESTAMP_NTZ)')
db.executemany('INSERT INTO "USERS" VALUES (?,?,?,?,?,?,?,?)',
               ((i, f"user{i}@example.com", f"Name{i}", "FR" if i % 3 else "DE", 18 + i % 60, i * 0.5, i % 2,
                 f"2024-01-{1 + i % 28:02d} 10:00:00") for i in range(1, n + 1)))
db.commit()
PY
cp "$OUT/db/BENCH.db" "$OUT/db/bench.db"

start_fake() { # start_fake MODE PORTFILE ARGS...
  local mode=$1 pf=$2; shift 2
  "$FAKE" --mode "$mode" --db-dir "$OUT/db" --public-key "$OUT/pub.pem" --rows-per-partition 10000 \
    --port-file "$pf" --max-lifetime 1800 --quiet "$@" &
  for _ in $(seq 1 100); do [ -s "$pf" ] && break; sleep 0.05; done
}
start_fake snowflake "$OUT/sf.port" --account bench --user joey --token bench-pat
start_fake bigquery "$OUT/bq.port" --client-email joey@bench.iam.gserviceaccount.com --project bench
trap 'for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done' EXIT
SF="http://127.0.0.1:$(cat "$OUT/sf.port")" BQ="http://127.0.0.1:$(cat "$OUT/bq.port")"
export BENCH_KEY="$(cat "$OUT/key.pem")"

config() { # config APP-JSON SOURCE-TYPE TABLE ID EMAIL FIRST COUNTRY AGE SCORE VIP SIGNUP
  local app=$1 st=$2 t=$3
  cat > "$OUT/cfg/config.json" <<EOF
[ $app,
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"k","restEndpoint":"http://127.0.0.1:9"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"$st","appId":"wh","modelId":"users","options":{"table":"$t"},"mapping":{"$4":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"$4"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"$5"}},
 {"class":"Property","id":"first_name","type":"string","sourceId":"src","options":{"column":"$6"}},
 {"class":"Property","id":"country","type":"string","sourceId":"src","options":{"column":"$7"}},
 {"class":"Property","id":"age","type":"integer","sourceId":"src","options":{"column":"$8"}},
 {"class":"Property","id":"score","type":"float","sourceId":"src","options":{"column":"$9"}},
 {"class":"Property","id":"vip","type":"boolean","sourceId":"src","options":{"column":"${10}"}},
 {"class":"Property","id":"signup","type":"date","sourceId":"src","options":{"column":"${11}"}},
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email","first_name":"first_name","country":"country","age":"age","score":"score","vip":"vip","signup":"signup"}}
]
EOF
}
timed() { # timed NAME CMD...: seconds into $T
  local s e; s=$(date +%s.%N); "${@:2}" >"$OUT/$1.out" 2>"$OUT/$1.err" || { echo "$1 failed:"; tail -5 "$OUT/$1.err"; exit 1; }
  e=$(date +%s.%N); T=$(echo "$e - $s" | bc); printf '  %-32s %8.2f s\n' "$1" "$T"
}
cols_sf='"ID", "EMAIL", "FIRST_NAME", "COUNTRY", "AGE", "SCORE", "VIP", "SIGNUP"'
echo "N = $N users, 8 properties; joey plan (empty state) vs a raw read of the same columns"
timed sqlite3_raw sqlite3 "$OUT/db/BENCH.db" "SELECT $cols_sf FROM \"USERS\" ORDER BY \"ID\""; RAW_SQLITE=$T

config '{"class":"App","id":"wh","type":"snowflake-keypair","options":{"account":"bench","username":"joey","private_key":"${BENCH_KEY}","warehouse":"COMPUTE_WH","database":"BENCH","endpoint":"'"$SF"'"}}' \
  snowflake-import-table USERS ID EMAIL FIRST_NAME COUNTRY AGE SCORE VIP SIGNUP
timed snowflake_raw /usr/bin/python3 bench/fake_raw.py snowflake "$SF" bench-pat "SELECT $cols_sf FROM \"USERS\" ORDER BY \"ID\""; RAW_SF=$T
timed snowflake_joey_plan /usr/bin/time -f '%M' "$JOEY" plan --config "$OUT/cfg" --state "$OUT/sf_state.db"; JOEY_SF=$T
RSS_SF=$(tail -1 "$OUT/snowflake_joey_plan.err")

config '{"class":"App","id":"wh","type":"bigquery","options":{"project_id":"bench","dataset":"bench","client_email":"joey@bench.iam.gserviceaccount.com","private_key":"${BENCH_KEY}","endpoint":"'"$BQ"'"}}' \
  bigquery-import-table USERS ID EMAIL FIRST_NAME COUNTRY AGE SCORE VIP SIGNUP
timed bigquery_raw /usr/bin/python3 bench/fake_raw.py bigquery "$BQ" "$OUT/key.pem" 'SELECT `ID`, `EMAIL`, `FIRST_NAME`, `COUNTRY`, `AGE`, `SCORE`, `VIP`, `SIGNUP` FROM `USERS` ORDER BY `ID`'; RAW_BQ=$T
timed bigquery_joey_plan /usr/bin/time -f '%M' "$JOEY" plan --config "$OUT/cfg" --state "$OUT/bq_state.db"; JOEY_BQ=$T
RSS_BQ=$(tail -1 "$OUT/bigquery_joey_plan.err")

echo "ratios (same run):"
printf '  snowflake: joey plan / raw protocol read = %.2f, / sqlite3 = %.2f, joey peak RSS %s KiB\n' \
  "$(echo "$JOEY_SF / $RAW_SF" | bc -l)" "$(echo "$JOEY_SF / $RAW_SQLITE" | bc -l)" "$RSS_SF"
printf '  bigquery:  joey plan / raw protocol read = %.2f, / sqlite3 = %.2f, joey peak RSS %s KiB\n' \
  "$(echo "$JOEY_BQ / $RAW_BQ" | bc -l)" "$(echo "$JOEY_BQ / $RAW_SQLITE" | bc -l)" "$RSS_BQ"
