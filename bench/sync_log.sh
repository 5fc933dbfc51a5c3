#!/usr/bin/env bash
# bench/sync_log.sh: a first sync of N records (default 1,000,000) into the Braze
# simulator at Braze's default /users/track rate (3,000 requests per 3 s, ~20 ms added
# latency, as bench/export.sh), with the destination's sync log off, into an SQLite
# log database, and into a PostgreSQL one (when JOEY_PG_URL is set, e.g. from
# scripts/test-servers.sh), side by side. Target: with the log on, within 10% of the
# time with it off. Each configuration runs ROUNDS times (default 2), interleaved, each
# with a fresh simulator and state store; the ratio compares medians.
#   bash bench/sync_log.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
ROUNDS=${ROUNDS:-2}
OUT=bench/out/sync_log
rm -rf "$OUT" && mkdir -p "$OUT"
command -v /usr/bin/time >/dev/null || { echo "bench needs GNU time: apt-get install time"; exit 1; }

cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DJOEY_WERROR=OFF >/dev/null
ninja -C build-bench joey braze-sim >/dev/null
JOEY=build-bench/joey

SIMPID=""
PGSCHEMA="bench_synclog_$$"
cleanup() {
  [ -n "$SIMPID" ] && kill $SIMPID 2>/dev/null || true
  [ -n "${JOEY_PG_URL:-}" ] && psql "$JOEY_PG_URL" -qAt -c "DROP SCHEMA IF EXISTS $PGSCHEMA CASCADE" >/dev/null 2>&1 || true
}
trap cleanup EXIT
start_sim() {
  [ -n "$SIMPID" ] && kill $SIMPID 2>/dev/null && wait $SIMPID 2>/dev/null || true
  rm -f "$OUT/port"
  build-bench/braze-sim --port 0 --port-file "$OUT/port" --api-key bench-key --quiet --max-lifetime 1800 \
    --rate track=3000/3 --latency-ms 20 --log-keep 1000 >/dev/null &
  SIMPID=$!
  for _ in $(seq 100); do [ -s "$OUT/port" ] && break; sleep 0.05; done
  export GROUPAROO_OPTION__APP__BRAZE_URL="http://127.0.0.1:$(cat "$OUT/port")"
}

# the users table of bench/export.sh
sqlite3 "$OUT/bench.db" <<SQL
PRAGMA journal_mode=OFF;
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT, country TEXT,
  city TEXT, age INTEGER, score REAL, vip INTEGER, signup TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO users SELECT i, 'user' || i || '@example.com', 'First' || (i % 997), 'Last' || (i % 991),
  char(65 + i % 26, 65 + (i / 26) % 26), 'City' || (i % 5000), 18 + i % 60, (i % 1000) / 10.0, i % 7 = 0,
  strftime('%Y-%m-%dT%H:%M:%SZ', 1600000000 + i * 37, 'unixepoch') FROM n;
SQL

# make_config DIR LOGAPP_JSON|"" : bench/export.sh's project, the log app and syncLogAppId
make_config() {
  mkdir -p "$1"
  /usr/bin/python3 - "$1/config.json" "$2" <<'PY'
import json, sys
props = [("email","email"),("first_name","string"),("last_name","string"),("country","string"),
         ("city","string"),("age","integer"),("score","float"),("vip","boolean"),("signup","date")]
objs = [
  {"class":"App","id":"db","type":"sqlite","options":{"file":"bench.db"}},
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
opts = {"maxDeletePercent": 10}
if sys.argv[2]:
  objs.append(json.loads(sys.argv[2]))
  opts["syncLogAppId"] = "logdb"
objs.append({"class":"Destination","id":"braze_users","type":"braze-export-users","appId":"braze","modelId":"users",
  "syncMode":"sync","collection":"model","mapping":mapping,"destinationGroupMemberships":{"VIP":"vips"},
  "options":opts})
json.dump(objs, open(sys.argv[1], "w"), indent=1)
PY
}
url_part() { # url_part URL user|password|host|port|database
  local rest=${1#*://} userpass hostport
  userpass=${rest%%@*}; rest=${rest#*@}; hostport=${rest%%/*}
  case $2 in
  user) echo "${userpass%%:*}" ;; password) echo "${userpass#*:}" ;;
  host) echo "${hostport%%:*}" ;; port) echo "${hostport#*:}" ;; database) echo "${rest#*/}" ;;
  esac
}

CONFIGS=(off sqlite)
make_config "$OUT/off" ""
make_config "$OUT/sqlite" '{"class":"App","id":"logdb","type":"sqlite","options":{"file":"synclog.db"}}'
if [ -n "${JOEY_PG_URL:-}" ]; then
  psql "$JOEY_PG_URL" -qAt -v ON_ERROR_STOP=1 -c "CREATE SCHEMA $PGSCHEMA" >/dev/null
  export BENCH_PG_PASSWORD=$(url_part "$JOEY_PG_URL" password)
  make_config "$OUT/postgres" "$(printf '{"class":"App","id":"logdb","type":"postgres","options":{"host":"%s","port":%s,"database":"%s","user":"%s","password":"${BENCH_PG_PASSWORD}","schema":"%s"}}' \
    "$(url_part "$JOEY_PG_URL" host)" "$(url_part "$JOEY_PG_URL" port)" "$(url_part "$JOEY_PG_URL" database)" \
    "$(url_part "$JOEY_PG_URL" user)" "$PGSCHEMA")"
  CONFIGS+=(postgres)
else
  echo "(JOEY_PG_URL is not set: no PostgreSQL log database; scripts/test-servers.sh start gives one)"
fi

declare -A TIMES CPUS
echo "machine: $(nproc) CPUs, $(uptime | sed 's/.*load/load/')"
echo "== first sync of $N records, track limit 3000 per 3 s, 20 ms latency; sync log off / SQLite / PostgreSQL"
for round in $(seq 1 "$ROUNDS"); do
  for c in "${CONFIGS[@]}"; do
    start_sim
    rm -rf "$OUT/$c.state.db"*
    [ "$c" = sqlite ] && rm -rf "$OUT/synclog.db"*
    [ "$c" = postgres ] && psql "$JOEY_PG_URL" -qAt -c "SET client_min_messages = warning; DROP TABLE IF EXISTS $PGSCHEMA.joey_sync_records, $PGSCHEMA.joey_sync_runs, $PGSCHEMA.joey_sync_meta" >/dev/null
    /usr/bin/time -f "%e %U %S %M" -o "$OUT/time" $JOEY run -v --config "$OUT/$c" --state "$OUT/$c.state.db" --json \
      > "$OUT/$c.out" 2> "$OUT/$c.err" || true
    read -r WALL U S RSS < "$OUT/time"
    log=$(/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["destinations"][0]; l=d["sync_log"]; print("created %d, log %s" % (d["counts"]["created"], "off" if l is None else "%s, %d rows" % (l["status"], l["rows"])))' "$OUT/$c.out")
    # how long the end of the run waited for the log writer (it writes while the export runs)
    waited=$(sed -n 's/.*sync log: waited \([0-9.]*\) s for the writer.*/, end of run waited \1 s for the writer/p' "$OUT/$c.err" | head -1)
    printf "round %d  %-9s %8.2f s wall, %6.2f s CPU, peak RSS %6.1f MiB  (%s%s)\n" "$round" "$c" "$WALL" \
      "$(echo "$U + $S" | bc -l)" "$(echo "$RSS / 1024" | bc -l)" "$log" "$waited"
    TIMES[$c]="${TIMES[$c]:-} $WALL"
    CPUS[$c]="${CPUS[$c]:-} $(echo "$U + $S" | bc -l)"
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
off=$(echo "${TIMES[off]}" | median)
offc=$(echo "${CPUS[off]}" | median)
printf "median  %-9s %8.2f s wall, %6.2f s CPU\n" off "$off" "$offc"
for c in "${CONFIGS[@]:1}"; do
  m=$(echo "${TIMES[$c]}" | median)
  mc=$(echo "${CPUS[$c]}" | median)
  printf "median  %-9s %8.2f s wall = %.3f x the time with the log off (target <= 1.10); %6.2f s CPU = %.3f x\n" \
    "$c" "$m" "$(echo "$m / $off" | bc -l)" "$mc" "$(echo "$mc / $offc" | bc -l)"
done
echo "machine after: $(uptime | sed 's/.*load/load/') (joey's CPU only: a PostgreSQL log's inserts run in the server)"
rows=$(sqlite3 "$OUT/synclog.db" "SELECT count(*) FROM joey_sync_records" 2>/dev/null || echo "?")
echo "rows in the SQLite log after its last round: $rows (target $N)"
