#!/usr/bin/env bash
# bench/state_writes.sh: joey's CPU for a first sync, where writing Braze's answers to the
# state store is most of the work joey does itself.
#   bash bench/state_writes.sh [N] [JOEY_BINARY...]
# N users (default 1000000) of bench/export.sh's table and config go to the Braze
# simulator at Braze's default /users/track limit (3,000 requests per 3 s) with 20 ms
# latency, into a fresh SQLite state store, once per joey binary given (default: this
# tree's, built into build-bench); with JOEY_PG_URL set, also into a fresh PostgreSQL
# schema. Prints wall time, joey's CPU (user + system, GNU time) and peak RSS per run,
# and checks that the store holds every user; CPU/1st is each run's CPU over the first
# binary's for that store (the issue's target: 0.5 against the build it was filed at).
# Compare two builds side by side:
#   bash bench/state_writes.sh 1000000 /tmp/base/build-bench/joey build-bench/joey
# RUNS=n (default 1): n rounds, the binaries taking turns in each; then, per store and
# binary, the median CPU and its ratio to the first binary's median (one run's CPU
# varies by 10% on a shared machine: compare medians).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
shift || true
OUT=bench/out/state_writes
rm -rf "$OUT" && mkdir -p "$OUT"
command -v /usr/bin/time >/dev/null || { echo "bench needs GNU time: apt-get install time"; exit 1; }

cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DJOEY_WERROR=OFF >/dev/null
ninja -C build-bench joey braze-sim >/dev/null
JOEYS=("$@")
[ ${#JOEYS[@]} -gt 0 ] || JOEYS=(build-bench/joey)

SIMPID=""
trap '[ -n "$SIMPID" ] && kill $SIMPID 2>/dev/null' EXIT
start_sim() {
  [ -n "$SIMPID" ] && kill $SIMPID 2>/dev/null && wait $SIMPID 2>/dev/null || true
  rm -f "$OUT/port"
  build-bench/braze-sim --port 0 --port-file "$OUT/port" --api-key bench-key --quiet --max-lifetime 1800 \
    --rate track=3000/3 --latency-ms 20 --log-keep 1000 >/dev/null &
  SIMPID=$!
  for _ in $(seq 100); do [ -s "$OUT/port" ] && break; sleep 0.05; done
  export GROUPAROO_OPTION__APP__BRAZE_URL="http://127.0.0.1:$(cat "$OUT/port")"
}

sqlite3 "$OUT/bench.db" <<SQL
PRAGMA journal_mode=OFF;
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT, country TEXT,
  city TEXT, age INTEGER, score REAL, vip INTEGER, signup TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO users SELECT i, 'user' || i || '@example.com', 'First' || (i % 997), 'Last' || (i % 991),
  char(65 + i % 26, 65 + (i / 26) % 26), 'City' || (i % 5000), 18 + i % 60, (i % 1000) / 10.0, i % 7 = 0,
  strftime('%Y-%m-%dT%H:%M:%SZ', 1600000000 + i * 37, 'unixepoch') FROM n;
SQL
mkdir -p "$OUT/cfg"
/usr/bin/python3 - "$OUT/cfg/config.json" "bench.db" <<'PY'
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

STORES=(sqlite)
[ -n "${JOEY_PG_URL:-}" ] && STORES+=(postgres)
echo "== first sync of $N users, track limit 3000 per 3 s, 20 ms latency"
printf "%-40s %-9s %9s %9s %9s %9s\n" "joey" "store" "wall s" "CPU s" "RSS MiB" "CPU/1st"
RUNS=${RUNS:-1}
declare -A CPUS=()
for store in "${STORES[@]}"; do
  first_cpu=""
  for round in $(seq "$RUNS"); do
  for joey in "${JOEYS[@]}"; do
    start_sim
    if [ "$store" = sqlite ]; then
      rm -f "$OUT"/state.db*; state="$OUT/state.db"
    else
      schema="bench_sw_$$_$RANDOM"
      case "$JOEY_PG_URL" in *\?*) state="$JOEY_PG_URL&schema=$schema" ;; *) state="$JOEY_PG_URL?schema=$schema" ;; esac
    fi
    /usr/bin/time -f "%e %U %S %M" -o "$OUT/time" "$joey" run --config "$OUT/cfg" --state "$state" --json \
      > "$OUT/run.json" 2> "$OUT/run.err" || { cat "$OUT/run.err"; exit 1; }
    read -r wall u s rss < "$OUT/time"
    created=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["destinations"][0]["counts"]["created"])' "$OUT/run.json")
    [ "$created" = "$N" ] || { echo "$joey: created $created of $N"; exit 1; }
    if [ "$store" = sqlite ]; then
      rows=$(sqlite3 "$state" "SELECT count(*) FROM records WHERE confirmed_at IS NOT NULL")
      [ "$rows" = "$N" ] || { echo "$joey: the store holds $rows of $N"; exit 1; }
    else
      rows=$(psql -qAt "$JOEY_PG_URL" -c "SELECT count(*) FROM $schema.records WHERE confirmed_at IS NOT NULL")
      psql -qAt "$JOEY_PG_URL" -c "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
      [ "$rows" = "$N" ] || { echo "$joey: the store holds $rows of $N"; exit 1; }
    fi
    cpu=$(printf "%.2f" "$(echo "$u + $s" | bc -l)")
    [ -n "$first_cpu" ] || first_cpu=$cpu
    CPUS["$store $joey"]+="$cpu "
    printf "%-40s %-9s %9.2f %9.2f %9.0f %9.2f\n" "$joey" "$store" "$wall" "$cpu" "$(echo "$rss / 1024" | bc -l)" \
      "$(echo "$cpu / $first_cpu" | bc -l)"
  done
  done
done
if [ "$RUNS" -gt 1 ]; then
  echo "== median CPU of $RUNS runs each"
  printf "%-40s %-9s %9s %9s   %s\n" "joey" "store" "CPU s" "CPU/1st" "runs"
  for store in "${STORES[@]}"; do
    first=""
    for joey in "${JOEYS[@]}"; do
      med=$(printf "%s\n" ${CPUS["$store $joey"]} | sort -n | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}')
      [ -n "$first" ] || first=$med
      printf "%-40s %-9s %9.2f %9.2f   %s\n" "$joey" "$store" "$med" "$(echo "$med / $first" | bc -l)" "${CPUS["$store $joey"]}"
    done
  done
fi
