#!/usr/bin/env bash
# bench/plan.sh: time `joey plan` on N users (default 1,000,000) with 10 properties,
# with a cold (empty) state and with an unchanged state, against `sqlite3` reading the
# same columns to /dev/null in the same run. Prints times, ratios and peak RSS.
#   bash bench/plan.sh [N]
# Targets (issue 3): unchanged-state plan <= 3x the raw read; peak RSS <= 100 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
OUT=bench/out/plan
rm -rf "$OUT" && mkdir -p "$OUT/config"

cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DJOEY_WERROR=OFF >/dev/null
ninja -C build-bench joey bench_seed_state >/dev/null
JOEY=build-bench/joey

echo "generating $N users with 10 properties..."
sqlite3 "$OUT/bench.db" <<SQL
PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT,
  country TEXT, city TEXT, age INTEGER, score REAL, vip INTEGER, signup TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO users SELECT i, 'user' || i || '@example.com', 'First' || (i % 997),
  'Last' || (i % 991), char(65 + i % 26, 65 + (i / 26) % 26), 'City' || (i % 5000),
  18 + i % 60, (i % 1000) / 10.0, i % 7 = 0,
  strftime('%Y-%m-%dT%H:%M:%SZ', 1600000000 + i * 37, 'unixepoch') FROM n;
SQL

python3 - "$OUT/config/config.json" <<'PY'
import json, sys
props = [("email","email"),("first_name","string"),("last_name","string"),("country","string"),
         ("city","string"),("age","integer"),("score","float"),("vip","boolean"),("signup","date")]
objs = [
  {"class":"App","id":"db","type":"sqlite","options":{"file":"bench.db"}},
  {"class":"App","id":"braze","type":"braze","options":{"apiKey":"BENCH_KEY","restEndpoint":"http://127.0.0.1:4710"}},
  {"class":"Model","id":"users","name":"Users","type":"profile"},
  {"class":"Source","id":"users_src","type":"sqlite-import-table","appId":"db","modelId":"users",
   "options":{"table":"users"},"mapping":{"id":"user_id"}},
  {"class":"Property","id":"user_id","type":"integer","unique":True,"sourceId":"users_src","options":{"column":"id"}},
]
for name, typ in props:
  objs.append({"class":"Property","id":name,"type":typ,"sourceId":"users_src","options":{"column":name}})
objs.append({"class":"Group","id":"vips","name":"VIPs","modelId":"users","rules":[{"propertyId":"vip","op":"eq","match":True}]})
mapping = {"external_id":"user_id"}
mapping.update({n: n for n, _ in props})
objs.append({"class":"Destination","id":"braze_users","type":"braze-export-users","appId":"braze","modelId":"users",
  "syncMode":"sync","collection":"model","mapping":mapping,"destinationGroupMemberships":{"VIP":"vips"}})
json.dump(objs, open(sys.argv[1], "w"), indent=1)
PY

timeit() { # timeit LABEL CMD...: prints seconds and peak RSS; sets T to the seconds
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$OUT/time" "$@" >/dev/null
  read -r secs rss < "$OUT/time"
  printf "%-34s %8.2f s   peak RSS %7.1f MiB\n" "$label" "$secs" "$(echo "$rss / 1024" | bc -l)"
  T=$secs
}
command -v /usr/bin/time >/dev/null || { echo "bench needs GNU time: apt-get install time"; exit 1; }
command -v bc >/dev/null || { echo "bench needs bc: apt-get install bc"; exit 1; }

cols="id, email, first_name, last_name, country, city, age, score, vip, signup"
timeit "raw read (sqlite3)" sqlite3 "$OUT/bench.db" "SELECT $cols FROM users ORDER BY id"
raw=$T
timeit "plan, cold state" $JOEY plan --config "$OUT/config" --state "$OUT/state.db"
cold=$T
/usr/bin/time -f "seeding state: %e s" build-bench/bench_seed_state "$OUT/config" "$OUT/state.db"
timeit "raw read again (sqlite3)" sqlite3 "$OUT/bench.db" "SELECT $cols FROM users ORDER BY id"
raw2=$T
timeit "plan, unchanged state" $JOEY plan --config "$OUT/config" --state "$OUT/state.db"
warm=$T
$JOEY plan --config "$OUT/config" --state "$OUT/state.db" | grep -E "create|update|unchanged" | head -3
best_raw=$(echo "if ($raw < $raw2) $raw else $raw2" | bc -l)
printf "ratio unchanged-state plan / raw read: %.2f (target <= 3)\n" "$(echo "$warm / $best_raw" | bc -l)"
printf "ratio cold-state plan / raw read:      %.2f\n" "$(echo "$cold / $best_raw" | bc -l)"
