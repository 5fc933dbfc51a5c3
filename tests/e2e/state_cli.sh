#!/usr/bin/env bash
# state_cli.sh: `joey state migrate|export|import`: create and upgrade a store; export a
# store that has something in every table; import it into an empty store (refused for a
# non-empty one unless --replace, all or nothing for a broken file); and, with
# JOEY_PG_URL, the round trip SQLite -> JSON -> PostgreSQL -> JSON -> SQLite gives the
# same bytes, the PostgreSQL store works for plan and run, and no password is printed.
set -e
source "$(dirname "$0")/lib.bash"
sim_start
export BRAZE_KEY=test-key BRAZE_URL="$SIM_URL" GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
unset JOEY_STATE JOEY_STATE_URL
PG_SCHEMAS=()
drop_pg() { for s in "${PG_SCHEMAS[@]}"; do psql "$JOEY_PG_URL" -qAt -c "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true; done; }
trap 'drop_pg; e2e_cleanup' EXIT

mkdir -p "$TMP/cfg"
sqlite3 "$TMP/data.db" "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT, updated_at TEXT);
INSERT INTO users VALUES (1,'ann@example.com','Ann','2024-01-01'),(2,'bob@example.com','Bob','2024-01-02'),
 (3,'cy@example.com','Cy','2024-01-03'),(4,'di@example.com','Dï','2024-01-04');"
cat > "$TMP/cfg/config.json" <<'EOF2'
[
 {"class":"App","id":"db","type":"sqlite","options":{"file":"data.db"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"${BRAZE_KEY}","restEndpoint":"BRAZE_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"sqlite-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Schedule","id":"users_sched","sourceId":"src","recurring":false,"incremental":true,"options":{"column":"updated_at"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Property","id":"name","type":"string","sourceId":"src","options":{"column":"name"}},
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email","first_name":"name"}}
]
EOF2
J="--config $TMP/cfg"
S="$TMP/.joey/state.db"
V=$(sed -n 's/^#define STATE_SCHEMA_VERSION \([0-9]*\)$/\1/p' "$SRC/src/state/state.h") # this joey's schema version

# ---- migrate
run state migrate $J; expect_rc 0 "migrate creates the store"
expect_out '^state store ".*/\.joey/state\.db" \(SQLite\): created at schema version '"$V"'$' "migrate says created"
run state migrate $J; expect_rc 0 "migrate again"
expect_out "already at schema version $V" "migrate says already"
sqlite3 "$S" "DROP TABLE marks; UPDATE meta SET value = 1 WHERE key = 'schema_version'"
run state migrate $J --json; expect_rc 0 "migrate upgrades version 1"
expect_out '"schema_version":'"$V"',"previous_version":1' "migrate --json says from 1 to $V"
run state; expect_rc 2 "joey state without a subcommand"
run state frob; expect_rc 2 "unknown subcommand"
expect_err 'unknown subcommand "frob"' "unknown subcommand named"

# ---- a store with something in every table: records, a failed row (ledger), runs, a mark
sim_post /_sim/faults '{"action":"row_error","external_id":"3","type":"EMAIL_BAD_FORMAT"}'
run run $J; expect_rc 1 "a run with a failing row"
sim_post /_sim/faults '{"action":"clear_row_error","external_id":"3"}'
run run $J; expect_rc 0 "the next run converges"

# ---- export
run state export --json $J; expect_rc 0 "export"
printf '%s\n' "$OUT" > "$TMP/a.jsonl"
python3 - "$TMP/a.jsonl" "$V" <<'PY' && ok "export: header, every table, end line with counts" || bad "export shape"
import json, sys, collections
lines = [json.loads(l) for l in open(sys.argv[1])]
assert lines[0] == {"joey_state_export": 1, "schema_version": int(sys.argv[2])}, lines[0]
end = lines[-1]["end"]
rows = collections.Counter(l["table"] for l in lines[1:-1])
assert dict(rows) == {k: v for k, v in end.items() if v}, (rows, end)
assert end["records"] == 4 and end["runs"] == 2 and end["ledger"] >= 1 and end["marks"] == 1, end
order = [l["table"] for l in lines[1:-1]]
assert order == sorted(order, key=["records", "runs", "ledger", "locks", "marks"].index)
recs = [l["row"] for l in lines if l.get("table") == "records"]
assert [r["key"] for r in recs] == [1, 2, 3, 4]
for r in recs:
    assert list(r) == ["dest_id", "key", "payload", "hash", "in_scope", "pending", "attempts",
                       "last_error", "braze_exists", "checked_at", "confirmed_at", "updated_at"]
    assert isinstance(json.loads(r["payload"]), dict) and len(r["hash"]) == 32
    assert r["in_scope"] is True and r["pending"] is False
assert "Dï" in recs[3]["payload"]
led = [l["row"] for l in lines if l.get("table") == "ledger"]
assert led[0]["key"] == 3 and "EMAIL_BAD_FORMAT" in led[0]["error"], led
PY

# ---- import into an empty store, and the export of that is the same
run state import --state "$TMP/b/state.db" "$TMP/a.jsonl"; expect_rc 0 "import into a new store"
expect_err 'joey: imported' "import reports what it loaded"
run state export --state "$TMP/b/state.db"; expect_rc 0 "export of the imported store"
[ "$OUT" = "$(cat "$TMP/a.jsonl")" ] && ok "SQLite -> JSON -> SQLite -> JSON is identical" || bad "round trip differs"
M=$(sim_mark); run run --config "$TMP/cfg" --state "$TMP/b/state.db" --full; expect_rc 0 "a run on the imported store"
expect_out 'unchanged 4' "the imported store knows Braze has everything"
SINCE=$M sim_check "a run on the imported store sends nothing" 'len(reqs)==0'
run state export --state "$TMP/b/state.db"; printf '%s\n' "$OUT" > "$TMP/b.jsonl"

# ---- refusals: not empty, truncated, broken; nothing changes
run state import $J < "$TMP/a.jsonl"; expect_rc 1 "import into a non-empty store"
expect_err 'is not empty' "non-empty store refused"
expect_err 'hint: import into a new store, or pass --replace' "non-empty hint"
head -n -1 "$TMP/a.jsonl" > "$TMP/trunc.jsonl"
run state import --replace --state "$TMP/b/state.db" "$TMP/trunc.jsonl"; expect_rc 1 "truncated export"
expect_err 'the export is truncated: it has no end line' "truncated export named"
sed '3s/"hash":"[0-9a-f]*"/"hash":"xyz"/' "$TMP/a.jsonl" > "$TMP/bad.jsonl"
run state import --replace --state "$TMP/b/state.db" "$TMP/bad.jsonl"; expect_rc 1 "broken row"
expect_err "$TMP/bad.jsonl:3: table \"records\": column \"hash\" needs 32 hex digits" "broken row names file and line"
run state export --state "$TMP/b/state.db"
[ "$OUT" = "$(cat "$TMP/b.jsonl")" ] && ok "failed imports changed nothing" || bad "failed import changed the store"
# what the replaced store kept per run id must not describe the imported runs of the same ids
sqlite3 "$TMP/b/state.db" "INSERT OR REPLACE INTO run_notes VALUES (1, 'api', 999)"
run state import --replace --state "$TMP/b/state.db" < "$TMP/a.jsonl"; expect_rc 0 "import --replace"
expect_err 'replacing what it held' "--replace says so"
N=$(sqlite3 "$TMP/b/state.db" "SELECT count(*) FROM run_notes")
[ "$N" = 0 ] && ok "--replace drops the replaced runs' notes" || bad "--replace left $N run notes behind"
run state export --state "$TMP/nope/state.db"; expect_rc 1 "export of a missing store"
expect_err 'does not exist' "missing store named"

# ---- PostgreSQL
if [ -z "${JOEY_PG_URL:-}" ]; then
  echo "skipped: the PostgreSQL part (JOEY_PG_URL is not set)"
  finish
  exit $?
fi
PW=$(url_part "$JOEY_PG_URL" password)
P1="e2e_cli_$$_a"; P2="e2e_cli_$$_b"; PG_SCHEMAS+=("$P1" "$P2")
case $JOEY_PG_URL in *\?*) U1="$JOEY_PG_URL&schema=$P1" ;; *) U1="$JOEY_PG_URL?schema=$P1" ;; esac
NOPW_URL=${JOEY_PG_URL/:$PW@/@}
run state import --state "$U1" < "$TMP/a.jsonl"; expect_rc 0 "import into PostgreSQL"
expect_err "postgresql://$(url_part "$JOEY_PG_URL" user)@$(url_part "$JOEY_PG_URL" host):$(url_part "$JOEY_PG_URL" port)/" "the store is named by its URL"
expect_no "$PW" "import never prints the password"
run state export --state "$U1"; expect_rc 0 "export from PostgreSQL"
[ "$OUT" = "$(cat "$TMP/a.jsonl")" ] && ok "SQLite -> JSON -> PostgreSQL -> JSON is identical" || { bad "PostgreSQL round trip differs"; diff <(printf '%s\n' "$OUT") "$TMP/a.jsonl" | head -20; }
# JOEY_STATE_URL is used when --state is not given, before JOEY_STATE
JOEY_STATE="$TMP/elsewhere.db" JOEY_STATE_URL="$U1" run state migrate $J
expect_out "PostgreSQL\\): already at schema version $V" "JOEY_STATE_URL picks the store"
export JOEY_STATE_URL="$U1"
run plan $J --full; expect_rc 0 "plan on the PostgreSQL store"
expect_out 'unchanged +4' "plan: Braze has everything"
sqlite3 "$TMP/data.db" "UPDATE users SET name = 'Bobby', updated_at = '2024-02-01' WHERE id = 2"
M=$(sim_mark); run run $J; expect_rc 0 "run on the PostgreSQL store"
SINCE=$M sim_check "run with PostgreSQL state sends only the change" 'track==[{"external_id":"2","first_name":"Bobby"}]'
[ "$(PGOPTIONS="-c search_path=$P1" psql "$JOEY_PG_URL" -qAt -c "SELECT value FROM marks")" = "2024-02-01" ] && ok "mark stored in PostgreSQL" || bad "mark in PostgreSQL"
run status $J; expect_rc 0 "status on the PostgreSQL store"
expect_out 'no failing records' "status reads the PostgreSQL store"
unset JOEY_STATE_URL
# and back: PostgreSQL -> JSON -> SQLite -> JSON
run state export --state "$U1"; printf '%s\n' "$OUT" > "$TMP/p.jsonl"
run state import --state "$TMP/c/state.db" "$TMP/p.jsonl"; expect_rc 0 "import the PostgreSQL export into SQLite"
run state export --state "$TMP/c/state.db"
[ "$OUT" = "$(cat "$TMP/p.jsonl")" ] && ok "PostgreSQL -> JSON -> SQLite -> JSON is identical" || bad "back to SQLite differs"
# the password: from PGPASSWORD, never printed, also when wrong
case $NOPW_URL in *\?*) U2="$NOPW_URL&schema=$P2" ;; *) U2="$NOPW_URL?schema=$P2" ;; esac
PGPASSWORD="$PW" run state migrate --state "$U2"; expect_rc 0 "password from PGPASSWORD"
expect_out "created at schema version $V" "migrate creates the schema"
WRONG=${U2/@/:not-the-pw-42@}
run state migrate --state "$WRONG"; expect_rc 1 "wrong password"
expect_err "could not connect to the PostgreSQL state store at $(url_part "$JOEY_PG_URL" host):$(url_part "$JOEY_PG_URL" port), database" "connection error names host and port"
expect_no "not-the-pw-42" "a wrong password is not printed"
finish
