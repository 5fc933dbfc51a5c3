#!/usr/bin/env bash
# bench/warehouse_diff.sh: the warehouse diff against the streaming diff on N users
# (default 1,000,000; 10 properties, plus purchases summed per user from a second table)
# in PostgreSQL, with the state store in the same database and 1% of the records
# changed (80% renamed, 10% deleted, 10% new). Times `joey plan` both ways, directly on
# loopback and through a link held to JOEY_BENCH_MBPS (default 1000: 1 Gbit/s), and
# counts the bytes the server sends (a counting proxy, tests/e2e/byteproxy.py, in front
# of it) and the records joey reads. Prints the numbers and the ratios. Run by hand:
#   bash bench/warehouse_diff.sh [N] [CHANGED_PERCENT]
# A throwaway server comes from scripts/test-servers.sh (stopped at exit).
# Environment: JOEY_BENCH_BUILD (build directory, default build-bench; configured and
# built here as a Release build).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
PCT=${2:-1}
OUT=bench/out/warehouse_diff
rm -rf "$OUT" && mkdir -p "$OUT"
command -v /usr/bin/time >/dev/null || { echo "bench needs GNU time: apt-get install time"; exit 1; }
command -v psql >/dev/null || { echo "bench needs psql: apt-get install postgresql-client"; exit 1; }

BUILD=${JOEY_BENCH_BUILD:-build-bench}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DJOEY_WERROR=OFF >/dev/null
ninja -C "$BUILD" joey bench_seed_state braze-sim >/dev/null
JOEY=$PWD/$BUILD/joey

servers=$(JOEY_TEST_SERVERS=pg bash scripts/test-servers.sh start)
eval "$servers"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  bash scripts/test-servers.sh stop "$JOEY_TEST_SERVERS_DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT

url_part() { # url_part URL user|password|host|port|database
  local rest=${1#*://} userpass hostport
  userpass=${rest%%@*}; rest=${rest#*@}; hostport=${rest%%/*}
  case $2 in
  user) echo "${userpass%%:*}" ;; password) echo "${userpass#*:}" ;;
  host) echo "${hostport%%:*}" ;; port) echo "${hostport#*:}" ;; database) echo "${rest#*/}" ;;
  esac
}
PSQL=(psql "$JOEY_PG_URL" -qAt -v ON_ERROR_STOP=1)

echo "generating $N users and $((N / 3 * 2)) purchases in PostgreSQL..."
"${PSQL[@]}" <<SQL
SET client_min_messages = warning;
CREATE SCHEMA src;
SET search_path = src;
CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT,
  country TEXT, city TEXT, age INTEGER, score DOUBLE PRECISION, vip BOOLEAN, signup TEXT);
INSERT INTO users SELECT i, 'user' || i || '@example.com', 'First' || (i % 997),
  'Last' || (i % 991), chr(65 + (i % 26)::int) || chr(65 + ((i / 26) % 26)::int),
  'City' || (i % 5000), 18 + i % 60, (i % 1000) / 10.0, i % 7 = 0,
  '2024-01-01T00:00:00Z' FROM generate_series(1, $N) i;
CREATE TABLE purchases (id BIGSERIAL PRIMARY KEY, user_id BIGINT, amount DOUBLE PRECISION);
INSERT INTO purchases (user_id, amount) SELECT i, i % 17 FROM generate_series(1, $N) i, generate_series(1, 2)
  WHERE i % 3 = 0;
CREATE INDEX ON purchases (user_id);
ANALYZE users;
ANALYZE purchases;
SQL

python3 tests/e2e/byteproxy.py "$(url_part "$JOEY_PG_URL" host)" "$(url_part "$JOEY_PG_URL" port)" \
  "$OUT/proxy.port" "$OUT/proxy.log" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$OUT/proxy.port" ] && break; sleep 0.05; done
PPORT=$(cat "$OUT/proxy.port")
MBPS=${JOEY_BENCH_MBPS:-1000}
python3 tests/e2e/byteproxy.py "$(url_part "$JOEY_PG_URL" host)" "$(url_part "$JOEY_PG_URL" port)" \
  "$OUT/slow.port" "$OUT/slow.log" "$MBPS" &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$OUT/slow.port" ] && break; sleep 0.05; done
SPORT=$(cat "$OUT/slow.port")
"$BUILD/braze-sim" --port 0 --port-file "$OUT/sim.port" --api-key k --max-lifetime 7200 --quiet &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$OUT/sim.port" ] && break; sleep 0.05; done
export BENCH_DB_PASSWORD=$(url_part "$JOEY_PG_URL" password)
DB=$(url_part "$JOEY_PG_URL" database)
USER_=$(url_part "$JOEY_PG_URL" user)
# three ways to the same server: through the counting proxy (bytes), directly (timed on
# loopback) and through the slow link (timed)
DPORT=$(url_part "$JOEY_PG_URL" port)
STATE="postgresql://$USER_:$BENCH_DB_PASSWORD@127.0.0.1:$PPORT/$DB?schema=bench_state"
DSTATE="postgresql://$USER_:$BENCH_DB_PASSWORD@127.0.0.1:$DPORT/$DB?schema=bench_state"
SSTATE="postgresql://$USER_:$BENCH_DB_PASSWORD@127.0.0.1:$SPORT/$DB?schema=bench_state"
mkdir -p "$OUT/config"
cat > "$OUT/config/config.json" <<EOF
[
 {"class":"App","id":"db","type":"postgres","options":{"host":"127.0.0.1","port":$PPORT,"database":"$DB",
  "user":"$USER_","password":"\${BENCH_DB_PASSWORD}","schema":"src"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"k","restEndpoint":"http://127.0.0.1:$(cat "$OUT/sim.port")"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"users_src","type":"postgres-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Source","id":"buys","type":"postgres-import-table","appId":"db","modelId":"users","options":{"table":"purchases"},"mapping":{"user_id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"users_src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"users_src","options":{"column":"email"}},
 {"class":"Property","id":"first_name","type":"string","sourceId":"users_src","options":{"column":"first_name"}},
 {"class":"Property","id":"last_name","type":"string","sourceId":"users_src","options":{"column":"last_name"}},
 {"class":"Property","id":"country","type":"string","sourceId":"users_src","options":{"column":"country"}},
 {"class":"Property","id":"city","type":"string","sourceId":"users_src","options":{"column":"city"}},
 {"class":"Property","id":"age","type":"integer","sourceId":"users_src","options":{"column":"age"}},
 {"class":"Property","id":"score","type":"float","sourceId":"users_src","options":{"column":"score"}},
 {"class":"Property","id":"vip","type":"boolean","sourceId":"users_src","options":{"column":"vip"}},
 {"class":"Property","id":"signup","type":"date","sourceId":"users_src","options":{"column":"signup"}},
 {"class":"Property","id":"spent","type":"float","sourceId":"buys","options":{"column":"amount","aggregationMethod":"sum"}},
 {"class":"Group","id":"vips","name":"VIPs","modelId":"users","rules":[{"propertyId":"vip","op":"eq","match":true}]},
 {"class":"Destination","id":"braze_users","type":"braze-export-users","appId":"braze","modelId":"users",
  "syncMode":"sync","collection":"model","options":{"maxDeletePercent":50},
  "mapping":{"external_id":"user_id","email":"email","first_name":"first_name","last_name":"last_name",
   "country":"country","home_city":"city","age":"age","score":"score","signup":"signup","spent":"spent"},
  "destinationGroupMemberships":{"VIP":"vips"}}
]
EOF
mkdir -p "$OUT/direct" "$OUT/slow"
sed "s/\"port\":$PPORT/\"port\":$DPORT/" "$OUT/config/config.json" > "$OUT/direct/config.json"
sed "s/\"port\":$PPORT/\"port\":$SPORT/" "$OUT/config/config.json" > "$OUT/slow/config.json"
C="--config $OUT/config --state $STATE"
CD="--config $OUT/direct --state $DSTATE"
CS="--config $OUT/slow --state $SSTATE"
bytes() { python3 tests/e2e/byteproxy.py total "$OUT/proxy.log" | cut -d' ' -f1; }

/usr/bin/time -f "seeding the state store (Braze has everything): %e s" "$BUILD/bench_seed_state" "$OUT/direct" "$DSTATE"
/usr/bin/time -f "first warehouse run (reads every record once, stores the digests): %e s" \
  "$JOEY" run $CD --diff warehouse --json > "$OUT/first_run.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("  ", d["diff"])' "$OUT/first_run.json"

CH=$((N * PCT / 100))
echo "changing $CH records ($PCT%): $((CH * 8 / 10)) renamed, $((CH / 10)) deleted, $((CH / 10)) new"
"${PSQL[@]}" <<SQL
SET search_path = src;
UPDATE users SET first_name = first_name || ' Jr' WHERE id IN (SELECT i * ($N / ($CH * 8 / 10)) FROM generate_series(1, $CH * 8 / 10) i);
DELETE FROM users WHERE id IN (SELECT i * ($N / ($CH / 10)) - 1 FROM generate_series(1, $CH / 10) i);
INSERT INTO users SELECT i, 'new' || i || '@example.com', 'New', 'User', 'ZZ', 'City1', 30, 1.5, false,
  '2025-01-01T00:00:00Z' FROM generate_series($N + 1, $N + $CH / 10) i;
ANALYZE users;
SQL

# the best of two timed runs of `joey plan` with ARGS: "<wall s> <joey's CPU s>"
best_time() {
  local best="999999 0"
  for pass in 1 2; do
    /usr/bin/time -f "%e %U %S" -o "$OUT/time.txt" "$JOEY" plan "$@" --json > "$OUT/timed.json"
    best=$(python3 -c "
e, u, s = map(float, open('$OUT/time.txt').read().split()[-3:])
b = '$best'.split()
print(b[0], b[1]) if float(b[0]) <= e else print(round(e, 2), round(u + s, 2))")
  done
  echo "$best"
}
# plan MODE: bytes from the server and records read (through the counting proxy), then
# times (directly, and through the slow link)
declare -A T TS C B R
plan() {
  local mode=$1 b0 b1
  b0=$(bytes)
  "$JOEY" plan $C --diff "$mode" --json > "$OUT/plan_$mode.json"
  b1=$(bytes)
  read -r T[$mode] C[$mode] <<<"$(best_time $CD --diff "$mode")"
  cmp -s "$OUT/plan_$mode.json" "$OUT/timed.json" || { echo "plans through the proxy and direct differ"; exit 1; }
  TS[$mode]=$(best_time $CS --diff "$mode" | cut -d' ' -f1)
  B[$mode]=$((b1 - b0))
  R[$mode]=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["models"][0]; print(d.get("diff", {}).get("read", d["records"]))' "$OUT/plan_$mode.json")
}
plan stream
plan warehouse
python3 - "$OUT/plan_stream.json" "$OUT/plan_warehouse.json" <<'PY'
import json, sys
s, w = (json.load(open(p)) for p in sys.argv[1:])
d = w["models"][0].pop("diff")
assert d["used"] == "warehouse", d
assert s == w, "the plans differ"
print("plans identical:", s["destinations"][0]["counts"], "; warehouse: %d keys returned" % d["candidates"])
PY
printf '\n%-10s %10s %14s %22s %16s %14s\n' mode "plan (s)" "joey CPU (s)" "plan, slow link (s)" "bytes received" "records read"
for m in stream warehouse; do printf '%-10s %10s %14s %22s %16s %14s\n' "$m" "${T[$m]}" "${C[$m]}" "${TS[$m]}" "${B[$m]}" "${R[$m]}"; done
echo "(plan: loopback, best of 2; slow link: through a userspace proxy capped at $MBPS Mbit/s, which also adds latency to every round trip)"
python3 -c "print('ratio stream/warehouse: time %.2fx (loopback), %.2fx (slow link), joey CPU %.1fx, bytes %.1fx, records %.1fx' % (${T[stream]} / ${T[warehouse]}, ${TS[stream]} / ${TS[warehouse]}, ${C[stream]} / max(${C[warehouse]}, 0.01), ${B[stream]} / max(${B[warehouse]}, 1), ${R[stream]} / max(${R[warehouse]}, 1)))"
/usr/bin/time -f "warehouse run after the changes (sends them to the simulator): %e s" \
  "$JOEY" run $CD --diff warehouse --json > "$OUT/run.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("  ", d["diff"], d["destinations"][0]["counts"])' "$OUT/run.json"
