#!/usr/bin/env bash
# bench/sources_clickhouse.sh: time `joey plan` on N users (default 1,000,000) with 10
# properties read from ClickHouse (Debian's clickhouse-server, started here by
# scripts/test-servers.sh), cold and with an unchanged state, against a raw read of the
# same columns in the same order over the same HTTP interface in the same run
# (curl POST "SELECT ... ORDER BY id FORMAT TabSeparated" > /dev/null).
# Prints times, ratios and joey's peak RSS. Run by hand (not in CI):
#   bash bench/sources_clickhouse.sh [N]
# Also run by bench/sources.sh when JOEY_BENCH_SOURCES names clickhouse.
# Environment: JOEY_BENCH_BUILD (build directory, default build-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
OUT=bench/out/sources_clickhouse
rm -rf "$OUT" && mkdir -p "$OUT"
command -v /usr/bin/time >/dev/null || { echo "bench needs GNU time: apt-get install time"; exit 1; }
command -v bc >/dev/null || { echo "bench needs bc: apt-get install bc"; exit 1; }
command -v curl >/dev/null || { echo "bench needs curl: apt-get install curl"; exit 1; }

BUILD=${JOEY_BENCH_BUILD:-build-bench}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DJOEY_WERROR=OFF >/dev/null
ninja -C "$BUILD" joey bench_seed_state >/dev/null
JOEY=$BUILD/joey

if [ -z "${JOEY_CLICKHOUSE_URL:-}" ]; then
  servers=$(JOEY_TEST_SERVERS=clickhouse bash scripts/test-servers.sh start)
  eval "$servers"
  trap 'bash scripts/test-servers.sh stop "$JOEY_TEST_SERVERS_DIR" >/dev/null 2>&1 || true' EXIT
fi
url_part() { # url_part URL user|password|host|port|database
  local rest=${1#*://} userpass hostport
  userpass=${rest%%@*}; rest=${rest#*@}; hostport=${rest%%/*}
  case $2 in
  user) echo "${userpass%%:*}" ;; password) echo "${userpass#*:}" ;;
  host) echo "${hostport%%:*}" ;; port) echo "${hostport#*:}" ;; database) echo "${rest#*/}" ;;
  esac
}
CH_USER=$(url_part "$JOEY_CLICKHOUSE_URL" user)
CH_PW=$(url_part "$JOEY_CLICKHOUSE_URL" password)
CH_HOST=$(url_part "$JOEY_CLICKHOUSE_URL" host)
CH_PORT=$(url_part "$JOEY_CLICKHOUSE_URL" port)
CH_DB=$(url_part "$JOEY_CLICKHOUSE_URL" database)
chq() { curl -sS --fail-with-body -H "X-ClickHouse-User: $CH_USER" -H "X-ClickHouse-Key: $CH_PW" \
  "http://$CH_HOST:$CH_PORT/?database=$CH_DB" --data-binary "$1"; }

echo "generating $N users with 10 properties in ClickHouse..."
start=$(date +%s.%N)
chq "DROP TABLE IF EXISTS users"
chq "CREATE TABLE users (id Int64, email String, first_name String, last_name String, country String,
  city String, age Int32, score Float64, vip UInt8, signup String) ENGINE = MergeTree ORDER BY id"
chq "INSERT INTO users SELECT number + 1, concat('user', toString(number + 1), '@example.com'),
  concat('First', toString((number + 1) % 997)), concat('Last', toString((number + 1) % 991)),
  concat(substring('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 1 + (number + 1) % 26, 1), substring('ABCDEFGHIJKLMNOPQRSTUVWXYZ', 1 + intDiv(number + 1, 26) % 26, 1)),
  concat('City', toString((number + 1) % 5000)), 18 + (number + 1) % 60, ((number + 1) % 1000) / 10.0,
  (number + 1) % 7 = 0, formatDateTime(toDateTime(1600000000 + (number + 1) * 37), '%Y-%m-%dT%H:%M:%SZ')
  FROM system.numbers LIMIT $N"
chq "OPTIMIZE TABLE users FINAL"
printf "  loaded in %.1f s\n" "$(echo "$(date +%s.%N) - $start" | bc -l)"

mkdir -p "$OUT/config"
cat > "$OUT/config/config.json" <<EOF
[
 {"class":"App","id":"db","type":"clickhouse","options":{"host":"http://$CH_HOST","port":$CH_PORT,"database":"$CH_DB","user":"$CH_USER","password":"$CH_PW"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"BENCH_KEY","restEndpoint":"http://127.0.0.1:4710"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"users_src","type":"clickhouse-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
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
 {"class":"Group","id":"vips","name":"VIPs","modelId":"users","rules":[{"propertyId":"vip","op":"eq","match":true}]},
 {"class":"Destination","id":"braze_users","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email","first_name":"first_name","last_name":"last_name","country":"country",
   "home_city":"city","age":"age","score":"score","vip":"vip","signup":"signup"},"destinationGroupMemberships":{"VIP":"vips"}}
]
EOF

timeit() { # timeit LABEL CMD...: prints seconds and peak RSS; sets T to the seconds
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$OUT/time" "$@" >/dev/null
  read -r secs rss < "$OUT/time"
  printf "%-36s %8.2f s   peak RSS %7.1f MiB\n" "$label" "$secs" "$(echo "$rss / 1024" | bc -l)"
  T=$secs
}
min() { echo "if ($1 < $2) $1 else $2" | bc -l; }
# the raw read, as a command /usr/bin/time can run
cat > "$OUT/raw.sh" <<EOF
exec curl -sS --fail -H "X-ClickHouse-User: $CH_USER" -H "X-ClickHouse-Key: $CH_PW" "http://$CH_HOST:$CH_PORT/?database=$CH_DB" \\
  --data-binary "SELECT id, email, first_name, last_name, country, city, age, score, vip, signup FROM users ORDER BY id FORMAT TabSeparated" -o /dev/null
EOF

echo "== clickhouse"
timeit "raw read (curl)" bash "$OUT/raw.sh"; raw1=$T
timeit "plan, cold state" "$JOEY" plan --config "$OUT/config" --state "$OUT/state.db"; cold=$T
/usr/bin/time -f "seeding state: %e s" "$BUILD/bench_seed_state" "$OUT/config" "$OUT/state.db"
timeit "raw read again (curl)" bash "$OUT/raw.sh"; raw2=$T
timeit "plan, unchanged state" "$JOEY" plan --config "$OUT/config" --state "$OUT/state.db"; warm=$T
rss=$(awk '{print $2}' "$OUT/time")
"$JOEY" plan --config "$OUT/config" --state "$OUT/state.db" | grep -E "create|update|unchanged" | head -3
best=$(min "$raw1" "$raw2")
echo "== summary (N=$N)"
printf "clickhouse raw %6.2f s  plan unchanged %6.2f s  ratio %.2f  plan cold %6.2f s  ratio %.2f  peak RSS %.1f MiB\n" \
  "$best" "$warm" "$(echo "$warm / $best" | bc -l)" "$cold" "$(echo "$cold / $best" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
