#!/usr/bin/env bash
# bench/sources.sh: time `joey plan` on N users (default 1,000,000) with 10 properties read
# from PostgreSQL and from MariaDB, with an unchanged state, against the servers' own
# clients reading the same columns to /dev/null in the same run
# (psql -c "\copy (SELECT ...) to /dev/null", mariadb -e "SELECT ..." >/dev/null).
# Prints times, ratios and joey's peak RSS. Run by hand (not in CI):
#   bash bench/sources.sh [N]
# Throwaway servers come from scripts/test-servers.sh (stopped at exit).
# Target (issue): unchanged-state plan <= 2x the client's raw read.
# Then 1% of the rows change (email, and updated_at past the mark): an incremental plan
# (Schedule options.column = updated_at, mark set in the state store) against a full one:
# time and records read, and the incremental plan against the client's raw read of just
# the changed rows (target, issue 15: <= 3x). Target (issue 15): unchanged-state plan
# <= 1.3x the raw read at 1M and 5M rows, peak RSS flat.
# Every time is the best of JOEY_BENCH_REPEAT runs (default 3): the machine may be shared.
# 5M rows: JOEY_BENCH_SOURCES=postgres bash bench/sources.sh 5000000 (PostgreSQL loads
# 5M rows in about half a minute). For PostgreSQL each line also gives the server's CPU
# for that run (its backend, from the postmaster's reaped children): on a 2-core machine
# the server, joey's read-ahead thread and joey's diff thread share two cores, so the
# plan's time is at least (joey CPU + server CPU) / 2, printed as the 2-core floor.
# Environment: JOEY_BENCH_BUILD (build directory, default build-bench; configured and built
# here), JOEY_BENCH_BASELINE (another joey binary, e.g. an older build, timed on the same
# data right after this one, its ratios printed beside), JOEY_BENCH_SOURCES (default
# "postgres mysql"; add clickhouse for bench/sources_clickhouse.sh), JOEY_BENCH_REPEAT.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
OUT=bench/out/sources
rm -rf "$OUT" && mkdir -p "$OUT"

command -v /usr/bin/time >/dev/null || { echo "bench needs GNU time: apt-get install time"; exit 1; }
command -v bc >/dev/null || { echo "bench needs bc: apt-get install bc"; exit 1; }
command -v psql >/dev/null || { echo "bench needs psql: apt-get install postgresql-client"; exit 1; }
MARIADB=$(command -v mariadb || command -v mysql || true)
[ -n "$MARIADB" ] || { echo "bench needs the mariadb client: apt-get install mariadb-client"; exit 1; }

BUILD=${JOEY_BENCH_BUILD:-build-bench}
BASELINE=${JOEY_BENCH_BASELINE:-}
# baseline_reads STATE CONFIG: the baseline can open this state store (an older joey refuses a
# store of a newer schema: then it is left out, and says so, instead of stopping the bench)
baseline_reads() {
  local why
  if why=$("$BASELINE" plan --config "$2" --state "$1" 2>&1 >/dev/null); then return 0; fi
  echo "baseline left out: $(head -1 <<<"$why")"
  return 1
}
SOURCES=${JOEY_BENCH_SOURCES:-postgres mysql}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DJOEY_WERROR=OFF >/dev/null
ninja -C "$BUILD" joey bench_seed_state >/dev/null
JOEY=$BUILD/joey

servers=$(bash scripts/test-servers.sh start)
eval "$servers"
trap 'bash scripts/test-servers.sh stop "$JOEY_TEST_SERVERS_DIR" >/dev/null 2>&1 || true' EXIT

# scheme://user:password@host:port/database
url_part() { # url_part URL user|password|host|port|database
  local rest=${1#*://} userpass hostport
  userpass=${rest%%@*}; rest=${rest#*@}; hostport=${rest%%/*}
  case $2 in
  user) echo "${userpass%%:*}" ;; password) echo "${userpass#*:}" ;;
  host) echo "${hostport%%:*}" ;; port) echo "${hostport#*:}" ;; database) echo "${rest#*/}" ;;
  esac
}
MY_ARGS=(--no-defaults -h "$(url_part "$JOEY_MYSQL_URL" host)" -P "$(url_part "$JOEY_MYSQL_URL" port)"
  -u "$(url_part "$JOEY_MYSQL_URL" user)" "-p$(url_part "$JOEY_MYSQL_URL" password)"
  "$(url_part "$JOEY_MYSQL_URL" database)")

has() { case " $SOURCES " in *" $1 "*) return 0 ;; esac; return 1; }
if has postgres; then
echo "generating $N users with 10 properties in PostgreSQL..."
start=$(date +%s.%N)
psql "$JOEY_PG_URL" -qAt -v ON_ERROR_STOP=1 <<SQL
SET client_min_messages = warning;
DROP TABLE IF EXISTS users;
CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT,
  country TEXT, city TEXT, age INTEGER, score DOUBLE PRECISION, vip BOOLEAN, signup TEXT,
  updated_at BIGINT NOT NULL DEFAULT 1);
INSERT INTO users SELECT i, 'user' || i || '@example.com', 'First' || (i % 997),
  'Last' || (i % 991), chr(65 + (i % 26)::int) || chr(65 + ((i / 26) % 26)::int),
  'City' || (i % 5000), 18 + i % 60, (i % 1000) / 10.0, i % 7 = 0,
  to_char(to_timestamp(1600000000 + i * 37) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
  FROM generate_series(1, $N) AS i;
CREATE INDEX users_updated_at ON users (updated_at);
VACUUM ANALYZE users;
SQL
printf "  loaded in %.1f s\n" "$(echo "$(date +%s.%N) - $start" | bc -l)"
fi

if has mysql; then
echo "generating $N users with 10 properties in MariaDB..."
start=$(date +%s.%N)
"$MARIADB" "${MY_ARGS[@]}" >/dev/null <<SQL
SET time_zone = '+00:00';
DROP TABLE IF EXISTS users;
CREATE TABLE users (id BIGINT PRIMARY KEY, email VARCHAR(64), first_name VARCHAR(32),
  last_name VARCHAR(32), country VARCHAR(2), city VARCHAR(32), age INTEGER, score DOUBLE,
  vip BOOLEAN, signup VARCHAR(32), updated_at BIGINT NOT NULL DEFAULT 1,
  INDEX users_updated_at (updated_at)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT INTO users (id, email, first_name, last_name, country, city, age, score, vip, signup)
  SELECT seq, CONCAT('user', seq, '@example.com'), CONCAT('First', seq % 997),
  CONCAT('Last', seq % 991), CONCAT(CHAR(65 + seq % 26 USING ascii), CHAR(65 + (seq DIV 26) % 26 USING ascii)),
  CONCAT('City', seq % 5000), 18 + seq % 60, (seq % 1000) / 10.0, seq % 7 = 0,
  DATE_FORMAT(FROM_UNIXTIME(1600000000 + seq * 37), '%Y-%m-%dT%H:%i:%sZ')
  FROM seq_1_to_$N;
ANALYZE TABLE users;
SQL
printf "  loaded in %.1f s\n" "$(echo "$(date +%s.%N) - $start" | bc -l)"
fi

python3 - "$OUT" "$JOEY_PG_URL" "$JOEY_MYSQL_URL" <<'PY'
import json, os, sys
from urllib.parse import urlsplit
out, urls = sys.argv[1], {"postgres": sys.argv[2], "mysql": sys.argv[3]}
props = [("email","email"),("first_name","string"),("last_name","string"),("country","string"),
         ("city","string"),("age","integer"),("score","float"),("vip","boolean"),("signup","date")]
for kind, url in urls.items():
  u = urlsplit(url)
  opts = {"host": u.hostname, "port": u.port, "user": u.username, "password": u.password,
          "database": u.path.lstrip("/")}
  objs = [
    {"class":"App","id":"db","type":kind,"options":opts},
    {"class":"App","id":"braze","type":"braze","options":{"apiKey":"BENCH_KEY","restEndpoint":"http://127.0.0.1:4710"}},
    {"class":"Model","id":"users","name":"Users","type":"profile"},
    {"class":"Source","id":"users_src","type":kind + "-import-table","appId":"db","modelId":"users",
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
  os.makedirs(f"{out}/{kind}/config", exist_ok=True)
  json.dump(objs, open(f"{out}/{kind}/config/config.json", "w"), indent=1)
  objs.append({"class":"Schedule","id":"inc","name":"Incremental","sourceId":"users_src","recurring":False,
               "incremental":True,"options":{"column":"updated_at"}})
  os.makedirs(f"{out}/{kind}/config_inc", exist_ok=True)
  json.dump(objs, open(f"{out}/{kind}/config_inc/config.json", "w"), indent=1)
PY

REPEAT=${JOEY_BENCH_REPEAT:-3}
SERVER_PID= # the postmaster whose CPU timeit reports (set per source below)
server_cpu() { # CPU seconds of SERVER_PID and its reaped children (backends), 0 without
  if [ -z "$SERVER_PID" ] || [ ! -r "/proc/$SERVER_PID/stat" ]; then echo 0; return; fi
  # fields after the ") " of the command: utime is the 12th, stime, cutime, cstime follow
  sed 's/.*) //' "/proc/$SERVER_PID/stat" | awk -v t="$(getconf CLK_TCK)" '{print ($12 + $13 + $14 + $15) / t}'
}
timeit() { # timeit LABEL CMD...: best of REPEAT runs; prints seconds and peak RSS; sets T, RSS, CPU, SCPU
  local label=$1; shift
  local best="" bestrss=0 bestcpu=0 bestscpu=0 secs rss usr sys i s0 s1
  for ((i = 0; i < REPEAT; i++)); do
    [ -z "$SERVER_PID" ] || sleep 0.3 # earlier backends (a VACUUM, the last run) reaped first
    s0=$(server_cpu)
    /usr/bin/time -f "%e %M %U %S" -o "$OUT/time" "$@" >/dev/null
    [ -z "$SERVER_PID" ] || sleep 0.3 # the backend exits and is reaped after the client
    s1=$(server_cpu)
    read -r secs rss usr sys < "$OUT/time"
    if [ -z "$best" ] || [ "$(echo "$secs < $best" | bc -l)" = 1 ]; then
      best=$secs; bestcpu=$(echo "$usr + $sys" | bc -l); bestscpu=$(echo "$s1 - $s0" | bc -l)
    fi
    if [ "$rss" -gt "$bestrss" ]; then bestrss=$rss; fi
  done
  # CPU (user + sys of that run): on a shared machine the wall time also holds waiting
  local server=""
  [ -z "$SERVER_PID" ] || server=$(printf "   server cpu %5.2f s" "$bestscpu")
  printf "%-36s %8.2f s   cpu %7.2f s%s   peak RSS %7.1f MiB\n" "$label" "$best" "$bestcpu" "$server" "$(echo "$bestrss / 1024" | bc -l)"
  T=$best
  RSS=$bestrss
  CPU=$bestcpu
  SCPU=$bestscpu
}
min() { echo "if ($1 < $2) $1 else $2" | bc -l; }
ratio() { if [ "$(echo "$2 == 0" | bc -l)" = 1 ]; then echo inf; else echo "$1 / $2" | bc -l; fi; } # a time under 0.01 s is 0

cols="id, email, first_name, last_name, country, city, age, score, vip, signup"
SUMMARY=()
bench_one() { # bench_one KIND LABEL CHANGE_SQL_CMD RAW_CHANGED_CMD RAWCMD...
  local kind=$1 label=$2 change=$3 raw_changed=$4; shift 4
  local dir=$OUT/$kind
  echo "== $kind"
  SERVER_PID=
  if [ "$kind" = postgres ]; then SERVER_PID=$(head -1 "$JOEY_TEST_SERVERS_DIR/pg/data/postmaster.pid" 2>/dev/null || true); fi
  timeit "raw read ($label)" "$@"; local raw=$T raw_cpu=$CPU raw_scpu=$SCPU
  timeit "plan, cold state" $JOEY plan --config "$dir/config" --state "$dir/state.db"; local cold=$T
  /usr/bin/time -f "seeding state: %e s" "$BUILD/bench_seed_state" "$dir/config" "$dir/state.db"
  timeit "raw read again ($label)" "$@"; local raw2=$T
  timeit "plan, unchanged state" $JOEY plan --config "$dir/config" --state "$dir/state.db"; local warm=$T
  local rss=$RSS warm_cpu=$CPU warm_scpu=$SCPU
  $JOEY plan --config "$dir/config" --state "$dir/state.db" | grep -E "create|update|unchanged" | head -3
  timeit "raw read again ($label)" "$@"; local raw3=$T
  local best; best=$(min "$(min "$raw" "$raw2")" "$raw3")
  # the raw read's own floor: the busier of the server and the client
  local raw_floor; raw_floor=$(echo "if ($raw_scpu > $raw_cpu) $raw_scpu else $raw_cpu" | bc -l)
  local r; r=$(ratio "$warm" "$best")
  printf "ratio unchanged-state plan / raw read: %.2f (target <= 1.3)\n" "$r"
  printf "ratio cold-state plan / raw read:      %.2f\n" "$(ratio "$cold" "$best")"
  if [ -n "$SERVER_PID" ]; then
    # two cores, three busy processes: no schedule beats half of all the CPU spent
    local floor; floor=$(echo "($warm_cpu + $warm_scpu) / 2" | bc -l)
    printf "2-core floor of the plan: (joey cpu %.2f s + server cpu %.2f s) / 2 = %.2f s;" \
      "$warm_cpu" "$warm_scpu" "$floor"
    printf " of the raw read: server cpu %.2f s, client cpu %.2f s; floors' ratio %.2f\n" \
      "$raw_scpu" "$raw_cpu" "$(ratio "$floor" "$raw_floor")"
    SUMMARY+=("$(printf "%-8s N=%s CPU: plan joey %.2f s + server %.2f s, raw client %.2f s + server %.2f s; 2-core floors plan %.2f s, raw %.2f s, ratio %.2f" \
      "$kind" "$N" "$warm_cpu" "$warm_scpu" "$raw_cpu" "$raw_scpu" "$floor" "$raw_floor" "$(ratio "$floor" "$raw_floor")")")
  fi
  SUMMARY+=("$(printf "%-8s N=%s raw %6.2f s  plan unchanged %6.2f s  ratio %.2f  peak RSS %.1f MiB" \
    "$kind" "$N" "$best" "$warm" "$r" "$(echo "$rss / 1024" | bc -l)")")
  if [ -n "$BASELINE" ] && baseline_reads "$dir/state.db" "$dir/config"; then
    timeit "baseline plan, unchanged state" "$BASELINE" plan --config "$dir/config" --state "$dir/state.db"
    printf "baseline ratio unchanged-state plan / raw read: %.2f\n" "$(ratio "$T" "$best")"
    SUMMARY+=("$(printf "%-8s N=%s baseline  plan unchanged %6.2f s  ratio %.2f  peak RSS %.1f MiB" \
      "$kind" "$N" "$T" "$(ratio "$T" "$best")" "$(echo "$RSS / 1024" | bc -l)")")
  fi

  # 1% of the rows change; the incremental schedule's mark says everything before is read
  sqlite3 "$dir/state.db" "INSERT OR REPLACE INTO marks VALUES ('inc', '2', 0)"
  $change "UPDATE users SET email = CONCAT('changed', id, '@example.com'), updated_at = 2 WHERE id % 100 = 0"
  timeit "plan, 1% changed, full read" $JOEY plan --json --config "$dir/config" --state "$dir/state.db"; local full=$T
  $JOEY plan --json --config "$dir/config" --state "$dir/state.db" > "$OUT/full.json"
  local -n rawc_cmd=$raw_changed
  timeit "raw read of the changed rows" "${rawc_cmd[@]}"; local rawc=$T
  timeit "plan, 1% changed, incremental" $JOEY plan --json --config "$dir/config_inc" --state "$dir/state.db"; local inc=$T
  $JOEY plan --json --config "$dir/config_inc" --state "$dir/state.db" > "$OUT/inc.json"
  # the same without the state look-up thread (src/state/sqlite/lookahead.c), to compare
  JOEY_STATE_LOOKAHEAD=0 timeit "plan, 1% changed, incremental, no look-up thread" $JOEY plan --json --config "$dir/config_inc" --state "$dir/state.db"; local inc1=$T
  timeit "raw read of the changed rows again" "${rawc_cmd[@]}"; rawc=$(min "$rawc" "$T")
  printf "ratio incremental plan / raw read of the changed rows: %.2f (target <= 3); without the look-up thread %.2f\n" \
    "$(ratio "$inc" "$rawc")" "$(ratio "$inc1" "$rawc")"
  SUMMARY+=("$(printf "%-8s N=%s raw changed rows %6.3f s  incremental plan %6.3f s  ratio %.2f  (no look-up thread %6.3f s, ratio %.2f)" \
    "$kind" "$N" "$rawc" "$inc" "$(ratio "$inc" "$rawc")" "$inc1" "$(ratio "$inc1" "$rawc")")")
  if [ -n "$BASELINE" ] && baseline_reads "$dir/state.db" "$dir/config"; then
    timeit "baseline plan, 1% changed, incremental" "$BASELINE" plan --json --config "$dir/config_inc" --state "$dir/state.db"
    "$BASELINE" plan --json --config "$dir/config_inc" --state "$dir/state.db" > "$OUT/inc_base.json"
    cmp -s "$OUT/inc.json" "$OUT/inc_base.json" || echo "!! the baseline's incremental plan differs"
    SUMMARY+=("$(printf "%-8s N=%s baseline           incremental plan %6.3f s  ratio %.2f" \
      "$kind" "$N" "$T" "$(ratio "$T" "$rawc")")")
  fi
  local rf ri uf ui
  rf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["models"][0]["records"])' "$OUT/full.json")
  ri=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["models"][0]["records"])' "$OUT/inc.json")
  uf=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["destinations"][0]["counts"]["update"])' "$OUT/full.json")
  ui=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["destinations"][0]["counts"]["update"])' "$OUT/inc.json")
  printf "incremental: %s records read, %s updates (full read: %s records, %s updates)\n" "$ri" "$ui" "$rf" "$uf"
  SUMMARY+=("$(printf "%-8s 1%% changed: incremental %6.2f s, %s records read; full %6.2f s, %s records read; same %s updates" \
    "$kind" "$inc" "$ri" "$full" "$rf" "$ui")")
}

pg_change() { psql "$JOEY_PG_URL" -qAt -c "$1"; psql "$JOEY_PG_URL" -qAt -c "VACUUM ANALYZE users"; }
my_change() { "$MARIADB" "${MY_ARGS[@]}" -e "$1"; }
pg_raw_changed=(psql "$JOEY_PG_URL" -qAt -c "\\copy (SELECT $cols FROM users WHERE updated_at >= 2 ORDER BY id) to /dev/null")
my_raw_changed=("$MARIADB" "${MY_ARGS[@]}" -e "SELECT $cols FROM users WHERE updated_at >= 2 ORDER BY id")
has postgres && bench_one postgres psql pg_change pg_raw_changed psql "$JOEY_PG_URL" -qAt -c "\\copy (SELECT $cols FROM users ORDER BY id) to /dev/null"
has mysql && bench_one mysql mariadb my_change my_raw_changed "$MARIADB" "${MY_ARGS[@]}" -e "SELECT $cols FROM users ORDER BY id"

echo "== summary (N=$N)"
printf "%s\n" "${SUMMARY[@]}"

# ---- ClickHouse (issue #17; bench/sources_clickhouse.sh, its own server and data) ----
if has clickhouse; then
  echo "== clickhouse (bench/sources_clickhouse.sh)"
  JOEY_CLICKHOUSE_URL= bash bench/sources_clickhouse.sh "$N"
fi
