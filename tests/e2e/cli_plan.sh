#!/usr/bin/env bash
# cli_plan.sh: `joey validate` and `joey plan` end to end on the demo and on bad input.
set -e
source "$(dirname "$0")/lib.bash"
export JOEY_NOW=2026-11-24T12:00:00Z
export GROUPAROO_OPTION__APP__DEMO_BRAZE_API_KEY=sekrit-key-123
D="$TMP/demo"
demo_copy "$D"

run --help;                                   expect_rc 0 "joey --help"
run frobnicate;                               expect_rc 2 "unknown command"
run plan --bogus --config "$D/config";        expect_rc 2 "unknown plan option"
run plan --config;                            expect_rc 2 "missing option value"
for c in plan run; do
  run $c --config "$D/config" --destination; expect_rc 2 "$c --destination without a value"
  expect_err 'option --destination needs a value' "$c --destination: says the value is missing"
  expect_no "unknown option" "$c --destination: reported once, not also as an unknown option"
done

run validate --config "$D/config"
expect_rc 0 "demo validates"
expect_out 'is valid' "validate says valid"

run plan --config "$D/config"
expect_rc 0 "demo plans"
expect_out 'destination "braze_sync" \(sync mode' "plan names the sync destination"
expect_out '^  create +8$' "all 8 users would be created in braze_sync"
expect_out 'destination "braze_additive" \(additive mode; model "users", members of group "high_value"\)' "additive destination tracks its group"
expect_out 'model "users": 8 records read, 1 secondary rows without a primary record ignored|model "users": 8 records read' "records counted"
expect_no "sekrit-key-123" "plan never prints the API key"
state_exists "$D/.joey/state.db" && bad "plan must not create the state store" || ok "plan writes no state"

run plan --config "$D/config" --details --destination braze_additive
expect_rc 0 "plan --details for one destination"
expect_out 'lifetime_value: 262.5' "details list field values"
expect_out 'subscribe: "3c9e1f7a-2b4d-4e6f-8a1c-5d7e9f0a1b2c"' "details list subscription changes"
if grep -q braze_sync <<<"$OUT"; then bad "--destination filters"; else ok "--destination filters"; fi

run plan --config "$D/config" --json --details
expect_rc 0 "plan --json"
if python3 -c 'import json,sys; d=json.load(sys.stdin); ds={x["id"]: x for x in d["destinations"]}; assert len(ds)==3; assert ds["braze_sync"]["counts"]["create"]==8; assert len(ds["braze_sync"]["records"])==8' <<<"$OUT"; then ok "plan --json is valid JSON with counts"; else bad "plan --json shape"; fi

run plan --config "$D/config" --destination nope
expect_rc 2 "unknown destination"
expect_err 'destination "nope" does not exist' "unknown destination named"
expect_err 'hint: destinations in this config: "braze_additive"' "unknown destination hint lists ids"

# state directory is taken from --state
run plan --config "$D/config" --state "$TMP/elsewhere/state.db"
expect_rc 0 "plan with --state on a missing file (empty state)"

# a value that does not fit its property's type is reported and sent as empty
sqlite3 "$D/demo.db" "UPDATE users SET newsletter = 'maybe' WHERE id = 4"
run plan --config "$D/config"
expect_rc 0 "plan with an invalid value"
expect_err 'source "users_table": record "4": property "newsletter": "maybe" is not a valid boolean; sent as empty' "invalid value named with record and property"
expect_out '1 invalid values treated as empty' "invalid values counted"
sqlite3 "$D/demo.db" "UPDATE users SET newsletter = 0 WHERE id = 4"

# a missing table names the table and the source
sed -i 's/"table": "purchases"/"table": "purchasez"/' "$D/config/sources/purchases_table.json"
run plan --config "$D/config"
expect_rc 1 "missing table fails"
expect_err 'purchasez' "missing table named"
sed -i 's/"table": "purchasez"/"table": "purchases"/' "$D/config/sources/purchases_table.json"

# a state store from a newer joey is refused
state_make_version "$D/.joey/state.db" 999
run plan --config "$D/config"
expect_rc 1 "newer state refused"
expect_err 'newer joey' "newer state message"
state_remove "$D/.joey/state.db"

# a file that is not a joey state store
mkdir -p "$D/.joey" && echo "not a database" > "$D/.joey/state.db"
run plan --config "$D/config" --state "$D/.joey/state.db"
expect_rc 1 "garbage state refused"
expect_err 'state.db' "garbage state names the file"
rm -rf "$D/.joey"

# an invalid config fails plan with the validation report
echo '{"class":"Property","id":"broken","type":"strin","sourceId":"users_table","options":{"column":"x"}}' > "$D/config/properties/broken.json"
run plan --config "$D/config"
expect_rc 1 "plan refuses an invalid config"
expect_err 'properties/broken.json' "error names the file"
run validate --config "$D/config"
expect_rc 1 "validate reports invalid"
expect_out 'did you mean "string"\?' "did-you-mean for the type"
rm "$D/config/properties/broken.json"

run validate --config "$TMP/does-not-exist"
expect_rc 1 "missing config dir"

# workers need a PostgreSQL store: refused before anything is made at an SQLite path
for cmd in "worker" "serve --worker --listen 127.0.0.1:0" "run --partitions 2"; do
  run $cmd --config "$D/config" --state "$TMP/nowhere/state.db"
  expect_rc 1 "$cmd with an SQLite store refused"
  expect_err "workers need a PostgreSQL state store" "$cmd: says why"
  [ ! -e "$TMP/nowhere" ] && ok "$cmd: no SQLite store created" || bad "$cmd: created $(ls -R "$TMP/nowhere" | tr '\n' ' ')"
  rm -rf "$TMP/nowhere"
done
finish
