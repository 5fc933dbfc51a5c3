#!/usr/bin/env bash
# bench/export.sh: joey run into the Braze simulator at Braze's default /users/track
# rate (3,000 requests per 3 s) with ~20 ms added latency.
#   bash bench/export.sh [N]          (default N = 100000)
# Prints: first-sync time, objects/s as a fraction of the limit (target >= 0.9), mean
# objects per /users/track request (target 75), 429s (target 0), CPU and peak RSS; then
# an update run where 1% of records changed one field (data points sent must equal the
# changed fields exactly) and a no-change run. Also a 10,000-record first sync and
# no-change run to compare with Grouparoo 0.9.0's measured 137 s and 61 s.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
OUT=bench/out/export
rm -rf "$OUT" && mkdir -p "$OUT"
command -v /usr/bin/time >/dev/null || { echo "bench needs GNU time: apt-get install time"; exit 1; }

cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DJOEY_WERROR=OFF >/dev/null
ninja -C build-bench joey braze-sim >/dev/null
JOEY=build-bench/joey

SIMPID=""
trap '[ -n "$SIMPID" ] && kill $SIMPID 2>/dev/null' EXIT
start_sim() {
  [ -n "$SIMPID" ] && kill $SIMPID 2>/dev/null && wait $SIMPID 2>/dev/null || true
  rm -f "$OUT/port"
  build-bench/braze-sim --port 0 --port-file "$OUT/port" --api-key bench-key --quiet --max-lifetime 1800 \
    --rate track=3000/3 --latency-ms 20 --log-keep 1000 >/dev/null &
  SIMPID=$!
  for _ in $(seq 100); do [ -s "$OUT/port" ] && break; sleep 0.05; done
  export BRAZE_URL="http://127.0.0.1:$(cat "$OUT/port")" GROUPAROO_OPTION__APP__BRAZE_URL="http://127.0.0.1:$(cat "$OUT/port")"
}
stats() { curl -s "$BRAZE_URL/_sim/stats"; }
make_db() { # make_db FILE N
  sqlite3 "$1" <<SQL
PRAGMA journal_mode=OFF;
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT, country TEXT,
  city TEXT, age INTEGER, score REAL, vip INTEGER, signup TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
INSERT INTO users SELECT i, 'user' || i || '@example.com', 'First' || (i % 997), 'Last' || (i % 991),
  char(65 + i % 26, 65 + (i / 26) % 26), 'City' || (i % 5000), 18 + i % 60, (i % 1000) / 10.0, i % 7 = 0,
  strftime('%Y-%m-%dT%H:%M:%SZ', 1600000000 + i * 37, 'unixepoch') FROM n;
SQL
}
make_config() { # make_config DIR DBFILE
  mkdir -p "$1"
  python3 - "$1/config.json" "$2" <<'PY'
import json, sys
props = [("email","email"),("first_name","string"),("last_name","string"),("country","string"),
         ("city","string"),("age","integer"),("score","float"),("vip","boolean"),("signup","date")]
objs = [
  {"class":"App","id":"db","type":"sqlite","options":{"file":sys.argv[2]}},
  {"class":"App","id":"braze","type":"braze","options":{"apiKey":"bench-key","restEndpoint":"BRAZE_URL"}},
  {"class":"Model","id":"users","name":"Users","type":"profile"},
  {"class":"Source","id":"users_src","type":"sqlite-import-table","appId":"db","modelId":"users",
   "options":{"table":"users"},"mapping":{"id":"user_id"}},
  {"class":"Property","id":"user_id","type":"integer","unique":True,"sourceId":"users_src","options":{"column":"id"}},
]
for name, typ in props:
  objs.append({"class":"Property","id":name,"type":typ,"sourceId":"users_src","options":{"column":name}})
objs.append({"class":"Group","id":"vips","name":"VIPs","modelId":"users","rules":[{"propertyId":"vip","op":"eq","match":True}]})
mapping = {"external_id":"user_id"}; mapping.update({n: n for n, _ in props})
objs.append({"class":"Destination","id":"braze_users","type":"braze-export-users","appId":"braze","modelId":"users",
  "syncMode":"sync","collection":"model","mapping":mapping,"destinationGroupMemberships":{"VIP":"vips"},
  "options":{"maxDeletePercent":10}})
json.dump(objs, open(sys.argv[1], "w"), indent=1)
PY
}
timed() { # timed LABEL CMD...: prints wall, CPU, RSS; sets WALL
  local label=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$OUT/time" "$@" > "$OUT/last.out" 2>&1 || true
  read -r WALL U S RSS < "$OUT/time"
  printf "%-38s %8.2f s wall, %6.2f s CPU, peak RSS %6.1f MiB\n" "$label" "$WALL" "$(echo "$U + $S" | bc -l)" "$(echo "$RSS / 1024" | bc -l)"
}

echo "== $N records, track limit 3000 per 3 s, 20 ms latency"
make_db "$OUT/bench.db" "$N"; make_config "$OUT/cfg" "bench.db"
start_sim
timed "first sync ($N creates)" $JOEY run --config "$OUT/cfg" --state "$OUT/state.db" --json
first=$WALL
python3 - "$(stats)" "$first" "$N" "$OUT/last.out" <<'PY'
import json, sys
st = json.loads(sys.argv[1]); wall = float(sys.argv[2]); n = int(sys.argv[3])
run = json.load(open(sys.argv[4]))["destinations"][0]
tr = st["track"]; reqs = tr["requests"]; objs = tr["objects"]["sum"]
print("  requests %d, objects %d, mean objects/request %.1f (max %d)" % (reqs, objs, objs / reqs, tr["objects"]["max"]))
print("  429s: %d   created: %d   failed: %d" % (st["rate_limited"], run["counts"]["created"], run["counts"]["failed"]))
print("  records/s: %.0f   requests/s: %.0f = %.2f of the 1,000 requests/s limit (objects/s %.0f of 75,000)"
      % (n / wall, reqs / wall, reqs / wall / 1000, objs / wall))
PY

dp0=$(stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["data_points"])')
sqlite3 "$OUT/bench.db" "UPDATE users SET city = city || 'x' WHERE id % 100 = 0"
changed=$(sqlite3 "$OUT/bench.db" "SELECT count(*) FROM users WHERE id % 100 = 0")
timed "update run (1% changed one field)" $JOEY run --config "$OUT/cfg" --state "$OUT/state.db" --json
dp1=$(stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["data_points"])')
echo "  data points sent: $((dp1 - dp0)) for $changed changed fields (target: equal)"
r0=$(stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests_total"])')
timed "no-change run" $JOEY run --config "$OUT/cfg" --state "$OUT/state.db"
r1=$(stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests_total"])')
echo "  requests sent: $((r1 - r0)) (target 0)"

echo "== 10,000 records, as Grouparoo 0.9.0 was measured (137 s first sync, 61 s no-change run)"
make_db "$OUT/g.db" 10000; make_config "$OUT/gcfg" "g.db"
start_sim
timed "first sync (10,000)" $JOEY run --config "$OUT/gcfg" --state "$OUT/g-state.db"
printf "  %.0fx faster than Grouparoo's 137 s (target >= 300x)\n" "$(echo "137 / $WALL" | bc -l)"
timed "no-change run (10,000)" $JOEY run --config "$OUT/gcfg" --state "$OUT/g-state.db"
printf "  %.0fx faster than Grouparoo's 61 s (target >= 1000x)\n" "$(echo "61 / $WALL" | bc -l)"
