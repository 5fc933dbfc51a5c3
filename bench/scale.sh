#!/usr/bin/env bash
# bench/scale.sh: first syncs of N records (default 1,000,000) by 1, 2 and 4 workers
# sharing one PostgreSQL state store (docs/scaling.md), into the Braze simulator.
#   JOEY_PG_URL=postgresql://... bash bench/scale.sh [N]
# Two regimes, each with 1, 2 and 4 `joey worker` processes on one job of 8 partitions:
#   latency-bound  no rate limit, LATENCY ms per request (default 100) and CONC requests
#                  in flight per worker (default 8): one worker can send at most
#                  CONC / LATENCY requests/s, so more workers should go faster;
#   rate-bound     Braze's default /users/track limit, 3,000 per 3 s, 20 ms latency: one
#                  worker already rides near the limit; the workers share it, so more
#                  workers must not go faster, nor get 429s.
#   shared-limit   a low limit, 600 per 3 s (200 requests/s), 100 ms latency, 8 in flight
#                  per worker: one worker stays under it, two would not: the workers
#                  together ride at the limit and get no 429s.
# After each first sync a second job with nothing changed measures the diff alone
# (every record read from the source and the state, nothing sent): daily deltas.
# Prints per run: wall time from queueing to the job's end, records/s, requests/s, 429s,
# and the ratio to one worker. REGIMES="latency rate shared" picks regimes. Needs psql.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
LATENCY=${LATENCY:-100}
CONC=${CONC:-8}
PARTS=${PARTS:-8}
WORKERS=${WORKERS:-"1 2 4"}
OUT=bench/out/scale
: "${JOEY_PG_URL:?set JOEY_PG_URL (eval \"\$(JOEY_TEST_SERVERS=pg bash scripts/test-servers.sh start)\")}"
rm -rf "$OUT" && mkdir -p "$OUT"

cmake -S . -B build-scale -G Ninja -DCMAKE_BUILD_TYPE=Release -DJOEY_WERROR=OFF >/dev/null
ninja -C build-scale joey braze-sim >/dev/null
JOEY=$PWD/build-scale/joey
SCHEMA=joey_bench_scale_$$
case $JOEY_PG_URL in *\?*) export JOEY_STATE_URL="$JOEY_PG_URL&schema=$SCHEMA" ;; *) export JOEY_STATE_URL="$JOEY_PG_URL?schema=$SCHEMA" ;; esac
psql_state() { PGOPTIONS="-c search_path=$SCHEMA -c client_min_messages=warning" psql "$JOEY_PG_URL" -qAt -c "$1"; }

SIMPID=""
WPIDS=()
cleanup() {
  for p in "${WPIDS[@]}" $SIMPID; do kill "$p" 2>/dev/null || true; done
  psql "$JOEY_PG_URL" -qAt -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
}
trap cleanup EXIT

start_sim() { # start_sim ARGS...: a fresh simulator
  [ -n "$SIMPID" ] && { kill "$SIMPID" 2>/dev/null; wait "$SIMPID" 2>/dev/null || true; }
  rm -f "$OUT/port"
  build-scale/braze-sim --port 0 --port-file "$OUT/port" --api-key bench-key --quiet --max-lifetime 7200 \
    --log-keep 0 "$@" >/dev/null &
  SIMPID=$!
  for _ in $(seq 100); do [ -s "$OUT/port" ] && break; sleep 0.05; done
  export BRAZE_URL="http://127.0.0.1:$(cat "$OUT/port")" GROUPAROO_OPTION__APP__BRAZE_URL="http://127.0.0.1:$(cat "$OUT/port")"
}
stat_of() { curl -s "$BRAZE_URL/_sim/stats" | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

echo "== making $N records"
sqlite3 "$OUT/bench.db" >/dev/null <<SQL
PRAGMA journal_mode=OFF;
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT, country TEXT,
  city TEXT, age INTEGER, score REAL, vip INTEGER, signup TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO users SELECT i, 'user' || i || '@example.com', 'First' || (i % 997), 'Last' || (i % 991),
  char(65 + i % 26, 65 + (i / 26) % 26), 'City' || (i % 5000), 18 + i % 60, (i % 1000) / 10.0, i % 7 = 0,
  strftime('%Y-%m-%dT%H:%M:%SZ', 1600000000 + i * 37, 'unixepoch') FROM n;
SQL
make_config() { # make_config DIR RATELIMITS
  mkdir -p "$1"
  python3 - "$1/config.json" "$2" "$PARTS" <<'PY'
import json, sys
props = [("email","email"),("first_name","string"),("last_name","string"),("country","string"),
         ("city","string"),("age","integer"),("score","float"),("vip","boolean"),("signup","date")]
opts = {"apiKey":"bench-key","restEndpoint":"BRAZE_URL"}
if sys.argv[2]:
  opts["rateLimits"] = sys.argv[2]
objs = [
  {"class":"App","id":"db","type":"sqlite","options":{"file":"bench.db"}},
  {"class":"App","id":"braze","type":"braze","options":opts},
  {"class":"Model","id":"users","name":"Users","type":"profile"},
  {"class":"Source","id":"users_src","type":"sqlite-import-table","appId":"db","modelId":"users",
   "options":{"table":"users"},"mapping":{"id":"user_id"}},
  {"class":"Property","id":"user_id","type":"integer","unique":True,"sourceId":"users_src","options":{"column":"id"}},
]
for name, typ in props:
  objs.append({"class":"Property","id":name,"type":typ,"sourceId":"users_src","options":{"column":name}})
mapping = {"external_id":"user_id"}; mapping.update({n: n for n, _ in props})
objs.append({"class":"Destination","id":"braze_users","type":"braze-export-users","appId":"braze","modelId":"users",
  "syncMode":"sync","collection":"model","mapping":mapping,"options":{"partitions":int(sys.argv[3])}})
json.dump(objs, open(sys.argv[1], "w"), indent=1)
PY
}

# one_run CFG W CONC: a first sync by W workers; prints a line, sets SECS
one_run() {
  local cfg=$1 w=$2 conc=$3 t0 t1 status reqs n429
  psql "$JOEY_PG_URL" -qAt -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
  "$JOEY" state migrate --config "$cfg" >/dev/null
  curl -s -X POST "$BRAZE_URL/_sim/reset" >/dev/null
  WPIDS=()
  for i in $(seq 1 "$w"); do
    "$JOEY" worker --config "$cfg" --concurrency "$conc" >"$OUT/worker$i.log" 2>&1 &
    WPIDS+=($!)
  done
  sleep 0.5
  t0=$(date +%s.%N)
  "$JOEY" run --config "$cfg" --partitions "$PARTS" --detach >/dev/null
  while :; do
    status=$(psql_state "SELECT status FROM work_jobs ORDER BY id DESC LIMIT 1")
    [ "$status" != running ] && break
    sleep 0.2
  done
  t1=$(date +%s.%N)
  for p in "${WPIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${WPIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  WPIDS=()
  SECS=$(echo "$t1 - $t0" | bc -l)
  reqs=$(stat_of 'd["endpoints"]["track"]["total"]')
  n429=$(stat_of 'd["rate_limited"]')
  local users created
  users=$(stat_of 'd["users"]')
  created=$(psql_state "SELECT sum(created) FROM work_items")
  printf "  %d worker%s: %7.1f s  %8.0f records/s  %6.0f requests/s  429s %d  job %s, %s users in Braze\n" \
    "$w" "$([ "$w" = 1 ] && echo " " || echo s)" "$SECS" "$(echo "$N / $SECS" | bc -l)" "$(echo "$reqs / $SECS" | bc -l)" \
    "$n429" "$status" "$users"
  [ "$status" = success ] && [ "$users" = "$N" ] || echo "  WARNING: the job did not end as expected (created $created)"
  # the same again with nothing changed: the diff alone
  for i in $(seq 1 "$w"); do
    "$JOEY" worker --config "$cfg" --concurrency "$conc" >>"$OUT/worker$i.log" 2>&1 &
    WPIDS+=($!)
  done
  sleep 0.5
  t0=$(date +%s.%N)
  "$JOEY" run --config "$cfg" --partitions "$PARTS" --detach >/dev/null
  while [ "$(psql_state "SELECT status FROM work_jobs ORDER BY id DESC LIMIT 1")" = running ]; do sleep 0.2; done
  t1=$(date +%s.%N)
  for p in "${WPIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${WPIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  WPIDS=()
  NOCHANGE=$(echo "$t1 - $t0" | bc -l)
  printf "             no-change job: %6.1f s  %8.0f records/s diffed, unchanged %s\n" "$NOCHANGE" \
    "$(echo "$N / $NOCHANGE" | bc -l)" "$(psql_state "SELECT sum(unchanged) FROM work_items WHERE job_id = 2")"
}

regime() { # regime TITLE RATELIMITS CONC SIM_ARGS...
  local title=$1 rl=$2 conc=$3; shift 3
  echo "== $title"
  make_config "$OUT/cfg" "$rl"
  start_sim "$@"
  local base=""
  for w in $WORKERS; do
    one_run "$OUT/cfg" "$w" "$conc"
    if [ -z "$base" ]; then base=$SECS; else printf "     %d workers / 1 worker: %.2fx faster\n" "$w" "$(echo "$base / $SECS" | bc -l)"; fi
  done
}

REGIMES=${REGIMES:-"latency rate shared"}
case " $REGIMES " in *" latency "*)
regime "latency-bound: $N records, $PARTS partitions, no rate limit, ${LATENCY} ms latency, $CONC requests in flight per worker" \
  "track=1000000/3" "$CONC" --rate track=1000000/3 --latency-ms "$LATENCY" ;; esac
case " $REGIMES " in *" rate "*)
regime "rate-bound: $N records, $PARTS partitions, Braze's default limit 3,000 requests per 3 s, 20 ms latency, 32 in flight per worker" \
  "" 32 --rate track=3000/3 --latency-ms 20 ;; esac
case " $REGIMES " in *" shared "*)
regime "shared-limit: $N records, $PARTS partitions, limit 600 requests per 3 s, ${LATENCY} ms latency, $CONC in flight per worker" \
  "track=600/3" "$CONC" --rate track=600/3 --latency-ms "$LATENCY" ;; esac
