#!/usr/bin/env bash
# diff_warehouse.sh: the warehouse diff (--diff warehouse) against the streaming diff on
# 10,000 users (two sources: users, and purchases summed per user) in PostgreSQL, with
# the state stores in the same database. Two simulators and two state stores take the
# same history, one streaming, one in the warehouse. After 1% of the records change:
# both plans are identical, the warehouse plan reads only the ~100 changed records
# (bytes counted by a proxy in front of the server), both runs send the same Braze
# requests, and the simulator ends equal to the source. Skipped without JOEY_PG_URL.
set -e
source "$(dirname "$0")/lib.bash"
[ -n "${JOEY_PG_URL:-}" ] || { echo "skipped: JOEY_PG_URL is not set"; echo "0 passed, 0 failed"; exit 0; }
N=10000
D="e2e_wh_$$_$RANDOM" # the sources' schema; the state stores are ${D}_sa and ${D}_sb
PSQL=(psql "$JOEY_PG_URL" -qAt -v ON_ERROR_STOP=1)
wh_cleanup() {
  "${PSQL[@]}" -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $D CASCADE;
    DROP SCHEMA IF EXISTS ${D}_sa CASCADE; DROP SCHEMA IF EXISTS ${D}_sb CASCADE" >/dev/null 2>&1 || true
  e2e_cleanup
}
trap wh_cleanup EXIT
sq() { "${PSQL[@]}" -c "SET search_path = $D; $1"; }

"${PSQL[@]}" -c "CREATE SCHEMA $D" >/dev/null
sq "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT, city TEXT, score DOUBLE PRECISION);
    INSERT INTO users SELECT i, 'u' || i || '@example.com', 'Name' || i, 'City' || (i % 50), i % 100
      FROM generate_series(1, $N) i;
    CREATE TABLE purchases (id SERIAL PRIMARY KEY, user_id INTEGER, amount DOUBLE PRECISION);
    CREATE INDEX ON purchases (user_id);
    INSERT INTO purchases (user_id, amount) SELECT i, i % 17 FROM generate_series(1, $N) i, generate_series(1, 2)
      WHERE i % 3 = 0;"

# every byte the server sends goes through the proxy, joey's state store included
python3 "$SRC/tests/e2e/byteproxy.py" "$(url_part "$JOEY_PG_URL" host)" "$(url_part "$JOEY_PG_URL" port)" \
  "$TMP/proxy.port" "$TMP/proxy.log" &
for _ in $(seq 1 100); do [ -s "$TMP/proxy.port" ] && break; sleep 0.05; done
PPORT=$(cat "$TMP/proxy.port")
USER_=$(url_part "$JOEY_PG_URL" user)
export E2E_DB_PASSWORD=$(url_part "$JOEY_PG_URL" password)
DBNAME=$(url_part "$JOEY_PG_URL" database)
PURL="postgresql://$USER_:$E2E_DB_PASSWORD@127.0.0.1:$PPORT/$DBNAME"
SA="$PURL?schema=${D}_sa" # the streaming side
SB="$PURL?schema=${D}_sb" # the warehouse side
bytes() { python3 "$SRC/tests/e2e/byteproxy.py" total "$TMP/proxy.log" | cut -d' ' -f1; }

sim_start; SIM_A=$SIM_URL
sim_start; SIM_B=$SIM_URL
config() { # config DIR SIM_URL
  mkdir -p "$1"
  cat > "$1/config.json" <<EOF2
[
 {"class":"App","id":"db","type":"postgres","options":{"host":"127.0.0.1","port":$PPORT,"database":"$DBNAME",
  "user":"$USER_","password":"\${E2E_DB_PASSWORD}","schema":"$D"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"test-key","restEndpoint":"$2"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"users_src","type":"postgres-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Source","id":"buys","type":"postgres-import-table","appId":"db","modelId":"users","options":{"table":"purchases"},"mapping":{"user_id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"users_src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"users_src","options":{"column":"email"}},
 {"class":"Property","id":"name","type":"string","sourceId":"users_src","options":{"column":"name"}},
 {"class":"Property","id":"city","type":"string","sourceId":"users_src","options":{"column":"city"}},
 {"class":"Property","id":"score","type":"float","sourceId":"users_src","options":{"column":"score"}},
 {"class":"Property","id":"spent","type":"float","sourceId":"buys","options":{"column":"amount","aggregationMethod":"sum"}},
 {"class":"Group","id":"vip","name":"VIP","modelId":"users","rules":[{"propertyId":"score","op":"gte","match":90}]},
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email","first_name":"name","home_city":"city","spent":"spent"},
  "destinationGroupMemberships":{"VIP":"vip"},"options":{"maxDeletePercent":50}}
]
EOF2
}
config "$TMP/a" "$SIM_A"
config "$TMP/b" "$SIM_B"
A="--config $TMP/a --state $SA"
B="--config $TMP/b --state $SB"
jq_() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(*[$1])" "$TMP/out"; } # values, space-separated

# ---- first runs: everything is created; the warehouse side reads every record once
run run $A --diff stream --json; expect_rc 0 "stream: first run"
run run $B --diff warehouse --json; expect_rc 0 "warehouse: first run"
[ "$(jq_ 'd["diff"]["read"], d["diff"]["candidates"], d["diff"]["digests"]')" = "$N $N $N" ] &&
  ok "warehouse: first run reads and compares all $N records, stores $N digests" || bad "first run counts: $OUT"
SIM_URL=$SIM_A sim_check "stream: Braze has every user" "len(users) == $N"
SIM_URL=$SIM_B sim_check "warehouse: Braze has every user" "len(users) == $N"

# ---- nothing changed: the warehouse side reads nothing, sends nothing
M=$(SIM_URL=$SIM_B sim_mark)
run run $B --diff warehouse --json; expect_rc 0 "warehouse: unchanged run"
[ "$(jq_ 'd["diff"]["read"], d["destinations"][0]["counts"]["unchanged"]')" = "0 $N" ] &&
  ok "warehouse: unchanged run reads 0 records, counts $N unchanged" || bad "unchanged run counts: $OUT"
SIM_URL=$SIM_B SINCE=$M sim_check "warehouse: unchanged run sends nothing" 'len(reqs) == 0'

# ---- 1% changes: 50 renamed, 10 with a new purchase, 20 deleted, 20 new
sq "UPDATE users SET name = name || ' Jr' WHERE id % 200 = 1;
    INSERT INTO purchases (user_id, amount) SELECT id, 5 FROM users WHERE id % 1000 = 7;
    DELETE FROM users WHERE id % 500 = 3;
    INSERT INTO users SELECT i, 'u' || i || '@example.com', 'New' || i, 'City1', 95
      FROM generate_series($N + 1, $N + 20) i;"

b0=$(bytes); run plan $B --diff stream --json --details; expect_rc 0 "stream plan"; b1=$(bytes)
cp "$TMP/out" "$TMP/plan_stream.json"
run plan $B --diff warehouse --json --details; expect_rc 0 "warehouse plan"; b2=$(bytes)
cp "$TMP/out" "$TMP/plan_wh.json"
run plan $A --diff stream --json --details; expect_rc 0 "stream plan on the streaming side"
cp "$TMP/out" "$TMP/plan_stream_a.json"
python3 - "$TMP/plan_stream.json" "$TMP/plan_wh.json" "$TMP/plan_stream_a.json" <<'PY' && ok "plans identical: warehouse and streaming, both state stores" || bad "plans differ"
import json, sys
s, w, a = (json.load(open(p)) for p in sys.argv[1:4])
d = w["models"][0].pop("diff")
assert d["used"] == "warehouse", d
assert s == w, "warehouse plan differs from the streaming plan"
assert s == a, "the two state stores differ"
c = s["destinations"][0]["counts"]
assert (c["create"], c["update"], c["delete"], c["unchanged"]) == (20, 60, 20, 9920), c
PY
READ=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["models"][0]["diff"]; print(d["read"], d["candidates"])' "$TMP/plan_wh.json")
[ "$READ" = "80 100" ] && ok "warehouse plan: 100 keys come back, 80 records read (20 were deleted)" || bad "warehouse plan read/candidates: $READ"
BS=$((b1 - b0)); BW=$((b2 - b1))
echo "bytes from PostgreSQL: streaming plan $BS, warehouse plan $BW ($(python3 -c "print(round($BS / max($BW, 1), 1))")x less)"
[ "$BW" -gt 0 ] && [ $((BW * 10)) -lt "$BS" ] && ok "warehouse plan receives under a tenth of the streaming plan's bytes" ||
  bad "bytes: streaming $BS, warehouse $BW"

# ---- the runs: the same Braze requests either way
MA=$(SIM_URL=$SIM_A sim_mark); MB=$(SIM_URL=$SIM_B sim_mark)
run run $A --diff stream --json; expect_rc 0 "stream: run after the changes"
run run $B --diff warehouse --json; expect_rc 0 "warehouse: run after the changes"
[ "$(jq_ 'd["diff"]["read"], d["diff"]["digests"]')" = "80 80" ] &&
  ok "warehouse run: 80 records read, 80 digests stored" || bad "run counts: $OUT"
python3 - "$SIM_A" "$MA" "$SIM_B" "$MB" <<'PY' && ok "the same Braze requests from both runs" || bad "Braze requests differ"
import json, sys, urllib.request
def reqs(url, since):
    with urllib.request.urlopen(url + "/_sim/requests?since=" + since, timeout=10) as r:
        d = json.load(r)
    d = d["requests"] if isinstance(d, dict) else d
    out = []
    for q in d:
        if q.get("path", "").startswith("/_sim"):
            continue
        b = q.get("body") or {}
        for k in ("attributes", "external_ids", "events", "purchases"):
            for x in b.get(k, []) if isinstance(b, dict) else []:
                out.append((q["path"], k, json.dumps(x, sort_keys=True)))
    return sorted(out)
a, b = reqs(sys.argv[1], sys.argv[2]), reqs(sys.argv[3], sys.argv[4])
assert a == b, (len(a), len(b), [x for x in a if x not in b][:5], [x for x in b if x not in a][:5])
assert len(a) >= 80, len(a)
PY
"${PSQL[@]}" -F $'\t' -c "SELECT u.id, u.email, u.name, u.city, coalesce(sum(p.amount), 0), u.score >= 90
  FROM $D.users u LEFT JOIN $D.purchases p ON p.user_id = u.id GROUP BY u.id ORDER BY u.id" > "$TMP/source.tsv"
python3 - "$SIM_B" "$TMP/source.tsv" <<'PY' && ok "Braze (warehouse side) ends equal to the source" || bad "Braze differs from the source"
import json, sys, urllib.request
with urllib.request.urlopen(sys.argv[1] + "/_sim/users", timeout=30) as r:
    users = {u["external_id"]: u for u in json.load(r)["users"] if "external_id" in u}
rows = [l.split("\t") for l in open(sys.argv[2]).read().splitlines()]
assert len(users) == len(rows), (len(users), len(rows))
for i, email, name, city, spent, vip in rows:
    u = users[i]
    ca = u.get("custom_attributes", {})
    assert (u.get("email"), u.get("first_name"), u.get("home_city")) == (email, name, city), (i, u)
    assert float(ca.get("spent", 0)) == float(spent), (i, ca, spent)
    assert ("VIP" in ca.get("groups", [])) == (vip == "t"), (i, ca, vip)
PY

# ---- and after that run, nothing is read again
run run $B --diff warehouse --json; expect_rc 0 "warehouse: run after the run"
[ "$(jq_ 'd["diff"]["read"]')" = 0 ] && ok "warehouse: nothing read once Braze has the changes" || bad "read: $OUT"

# ---- the text plan says what the database did
sq "UPDATE users SET city = 'Elsewhere' WHERE id = 2"
run plan $B --diff warehouse; expect_rc 0 "text plan"
expect_out 'warehouse diff: 1 may have changed, 1 read' "text plan names the warehouse diff"
finish
