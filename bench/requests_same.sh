#!/usr/bin/env bash
# bench/requests_same.sh: do two joey builds send the same requests and store the same
# state? A check for performance work (issue #15), not a benchmark.
#   bash bench/requests_same.sh [N] OLD_JOEY NEW_JOEY
# Each binary syncs N users (default 30000) of bench/state_writes.sh's table into its own
# simulator (request log on), then a second run after updates (city, the VIP group),
# emails set to NULL, deletes and one record with quotes and a backslash (--force past
# the mass-delete guard). The simulator's logged requests (method, path, headers but
# Host, the body as sent: a one-line body is logged byte for byte) are compared sorted,
# and so are the state rows (key, payload, hash, in_scope, pending, attempts, error).
# With STATE=postgres (and JOEY_PG_URL set) both builds keep their state in a fresh
# PostgreSQL schema instead of an SQLite file (dropped afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-30000}
OLD=$2
NEW=$3
OUT=bench/out/requests_same
rm -rf "$OUT" && mkdir -p "$OUT"
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DJOEY_WERROR=OFF >/dev/null
ninja -C build-bench braze-sim >/dev/null

sqlite3 "$OUT/src.db" <<SQL
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, first_name TEXT, last_name TEXT, country TEXT,
  city TEXT, age INTEGER, score REAL, vip INTEGER, signup TEXT);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO users SELECT i, 'user' || i || '@example.com', 'First' || (i % 997), 'Last' || (i % 991),
  char(65 + i % 26, 65 + (i / 26) % 26), 'City' || (i % 5000), 18 + i % 60, (i % 1000) / 10.0, i % 7 = 0,
  strftime('%Y-%m-%dT%H:%M:%SZ', 1600000000 + i * 37, 'unixepoch') FROM n;
SQL

one() { # one NAME JOEY: both runs, then the normalised request log and state rows
  local d=$OUT/$1 joey=$2 pid
  mkdir -p "$d/cfg"
  cp "$OUT/src.db" "$d/src.db"
  /usr/bin/python3 - "$d/cfg/config.json" "$PWD/$d/src.db" <<'PY'
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
  rm -f "$d/port"
  build-bench/braze-sim --port 0 --port-file "$d/port" --api-key bench-key --quiet --max-lifetime 600 \
    --rate track=3000/3 --latency-ms 5 --seed 1 --log-file "$d/sim.log" >/dev/null &
  pid=$!
  for _ in $(seq 100); do [ -s "$d/port" ] && break; sleep 0.05; done
  export GROUPAROO_OPTION__APP__BRAZE_URL="http://127.0.0.1:$(cat "$d/port")"
  local state=$d/state.db schema=""
  if [ "${STATE:-sqlite}" = postgres ]; then
    schema="bench_rs_$$_$1"
    case "$JOEY_PG_URL" in *\?*) state="$JOEY_PG_URL&schema=$schema" ;; *) state="$JOEY_PG_URL?schema=$schema" ;; esac
  fi
  "$joey" run --config "$d/cfg" --state "$state" --json >"$d/run1.json" 2>"$d/run1.err"
  sqlite3 "$d/src.db" "UPDATE users SET city = 'Moved' || id, vip = 1 - vip WHERE id % 17 = 0;
    UPDATE users SET email = NULL WHERE id % 23 = 0; DELETE FROM users WHERE id % 31 = 0;
    INSERT INTO users (id, email, first_name) VALUES ($N + 1, 'x\"y@example.com', 'Zo\xc3\xab \\ \"q\"');"
  "$joey" run --config "$d/cfg" --state "$state" --json --force >"$d/run2.json" 2>"$d/run2.err" || true
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true
  /usr/bin/python3 - "$d/sim.log" >"$d/requests.txt" <<'PY'
import re, sys
out = []
for line in open(sys.argv[1]):
    line = re.sub(r'^\{"seq":\d+,"time":"[^"]*",', '{', line.rstrip('\n'))
    line = re.sub(r'"Host":"127\.0\.0\.1:\d+",', '', line)
    line = re.sub(r',"body_bytes":.*$', '', line)  # status, response and timing vary
    out.append(line)
print('\n'.join(sorted(out)))
PY
  if [ -n "$schema" ]; then
    psql -qAt "$JOEY_PG_URL" -c "SELECT CASE key_kind WHEN 0 THEN key_int::text ELSE encode(key_text, 'escape') END,
      payload, upper(encode(hash, 'hex')), in_scope::int, pending::int, attempts, last_error
      FROM $schema.records ORDER BY key_kind, key_int, key_text" >"$d/state.txt"
    psql -qAt "$JOEY_PG_URL" -c "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1 || true
  else
    # packed payloads (src/state/sqlite/names.c) unpacked here, independently of joey's decoder
    /usr/bin/python3 - "$d/state.db" >"$d/state.txt" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
names = {}
if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'payload_names'").fetchone():
    names = {i: json.loads(n) for i, n in db.execute("SELECT id, names FROM payload_names")}
def unpack(p):
    if not p.startswith('\x1e'):
        return p
    if p.startswith('\x1e\x1e'):
        return p[1:]  # escaped: a payload that starts with 0x1e itself
    f = p[1:].split('\x1e')
    ns, vals, groups = names[int(f[0])], f[1:-1], f[-1]
    assert len(ns) == len(vals), p
    return '{"attributes":{' + ','.join('"%s":%s' % nv for nv in zip(ns, vals)) + '},"groups":' + groups + '}'
def text(v):
    return '' if v is None else str(v)
for k, p, h, i, pe, a, e in db.execute("SELECT key, payload, hex(hash), in_scope, pending, attempts, last_error"
                                      " FROM records ORDER BY key"):
    print('|'.join(map(text, (k, unpack(p), h, i, pe, a, e))))
PY
  fi
}
one old "$OLD"
one new "$NEW"
printf "requests: %s each\n" "$(wc -l <"$OUT/old/requests.txt")"
rc=0
cmp -s "$OUT/old/requests.txt" "$OUT/new/requests.txt" && echo "requests: the same" || { echo "requests: DIFFER (diff $OUT/old/requests.txt $OUT/new/requests.txt)"; rc=1; }
cmp -s "$OUT/old/state.txt" "$OUT/new/state.txt" && echo "state rows: the same" || { echo "state rows: DIFFER (diff $OUT/old/state.txt $OUT/new/state.txt)"; rc=1; }
exit $rc
