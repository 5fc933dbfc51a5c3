#!/usr/bin/env bash
# grouparoo_example.sh: Grouparoo's example project (examples/grouparoo-example: the
# files of grouparoo/app-example-config as they are, plus one Braze app + destination
# file) runs in joey from its project root: validate, run, and Braze holds its 1,000
# users with the right properties (expectations computed by sqlite3 from the source
# database, not by joey). Then a successful purchase for user 272 alone (the users
# table does not change) reaches Braze on the next run: purchases has its own
# incremental schedule (options.column created_at), as in Grouparoo.
set -euo pipefail
source "$(dirname "$0")/lib.bash"

P=$TMP/project
cp -r "$SRC/examples/grouparoo-example" "$P"
(cd "$P" && sqlite3 data/source.sqlite <import.sql)
DB=$P/data/source.sqlite
[ "$(sqlite3 "$DB" 'SELECT count(*) FROM users')" = 1000 ] && ok "the example's database is built (1000 users)" \
  || { RC=1; bad "the example's database is built"; }

sim_start
export GROUPAROO_OPTION__APP__BRAZE_API_KEY=test-key
export GROUPAROO_OPTION__APP__BRAZE_REST_ENDPOINT=$SIM_URL
unset JOEY_CONFIG JOEY_STATE JOEY_SECRETS_FILE
cd "$P" # Grouparoo runs from its project root; joey's default config directory is ./config

# ---- the path rule: data/source.sqlite is read from the project root ----
mv "$DB" config/source.sqlite.tmp && mkdir -p config/data && mv config/source.sqlite.tmp config/data/source.sqlite
run validate
expect_rc 1 "validate: the database under config/ is not where the example says"
expect_out "apps/product_db.json:7:13: error: App \"product_db\": options.file: SQLite database \"$(pwd -P)/data/source.sqlite\" does not exist" \
  "the missing file is reported at its option, with the path tried"
expect_out "hint: \"config/data/source.sqlite\" exists; paths are relative to the project root $(pwd -P) " \
  "the hint names the file under config/"
(cd config && "$JOEY" validate --config . >"$TMP/out" 2>&1) && RC=0 || RC=$?
OUT=$(cat "$TMP/out")
expect_rc 1 "validate --config . inside config/: the same root"
expect_out "SQLite database \"$(pwd -P)/data/source.sqlite\" does not exist" "--config . resolves from its parent"
mv config/data/source.sqlite "$DB" && rmdir config/data

# ---- validate: the example's files load as they are ----
(cd config && "$JOEY" validate --config . --state "$TMP/unused.db" >"$TMP/out" 2>&1) && RC=0 || RC=$?
OUT=$(cat "$TMP/out")
expect_rc 0 "validate --config . from inside config/"
run validate
expect_rc 0 "validate the example"
expect_out 'config "\./config" is valid' "the example is valid"
# what joey says about the example: Grouparoo-era fields it ignores, each once
expect_out 'Record "pro_c83846e5-aebe-4981-aa0d-3b1d5b71157d": Record objects are ignored' "sample records are ignored"
expect_out 'Group "all_emails": type: group "type" is deprecated' "group type is deprecated"
expect_out 'Property "user_id": identifying: ' "identifying is ignored"
expect_out 'App "mailchimp": type: type "mailchimp" belongs to a Grouparoo destination plugin joey does not export to: the app and its destinations are skipped' "the Mailchimp app is skipped with a warning"
expect_out 'Destination "newsletter": type: type "mailchimp-export" belongs to a Grouparoo destination plugin' "the Mailchimp destination is skipped with a warning"
n_warn=$(grep -c ': warning: ' <<<"$OUT" || true)
[ "$n_warn" = 13 ] && ok "13 warnings: 2 records, 2 group types, 7 identifying, Mailchimp app and destination" \
  || bad "expected 13 warnings, got $n_warn"
expect_no "error:" "no errors"
run validate --check-apps
expect_rc 0 "validate --check-apps: tables, columns and high-water columns exist, Braze answers"
expect_out 'source "users": ok \(5 properties, schedule column "updated_at"\)' "users: schedule column checked"
expect_out 'source "purchases": ok \(2 properties, schedule column "created_at"\)' "purchases: schedule column checked"
# a misspelt high-water column (in a copy of the project)
mkdir "$TMP/typo" && cp -r config "$TMP/typo/config" && ln -s "$P/data" "$TMP/typo/data"
sed -i 's/"column": "updated_at"/"column": "updated_a"/' "$TMP/typo/config/sources/users.json"
run validate --check-apps --config "$TMP/typo/config"
expect_rc 1 "validate --check-apps: a schedule column that does not exist"
expect_err 'sources/users.json:25:17: error: source "users": column "updated_a" does not exist in table "users"' \
  "reported at the schedule's options.column"
expect_err 'detail: used by schedule "users_schedule" (options.column)' "naming the schedule"
expect_err 'hint: did you mean "updated_at"?' "with did-you-mean"

# ---- the expectations, from the source database ----
# sampled users: the first and last, the two sample records of the example, its test's
# user 534, user 272, and every high-value Spanish speaker
expected() { # expected: a Python list literal of the sampled users as Braze should hold them
  python3 - "$DB" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("""
  SELECT u.id, u.email, u.first_name, u.last_name, u.language,
         (SELECT coalesce(sum(p.price), 0) FROM purchases p WHERE p.user_id = u.id AND p.state = 'successful'),
         (SELECT count(p.price) FROM purchases p WHERE p.user_id = u.id AND p.state = 'successful')
  FROM users u
  WHERE u.id IN (1, 10, 272, 440, 534, 1000)
     OR (u.language = 'Spanish' AND (SELECT sum(p.price) FROM purchases p
                                     WHERE p.user_id = u.id AND p.state = 'successful') > 100)
  ORDER BY u.id""").fetchall()
out = [dict(id=str(r[0]), email=r[1], first_name=r[2], last_name=r[3], language=r[4], ltv=float(r[5]),
            purchase_count=r[6], hvss=(r[4] == "Spanish" and r[5] > 100)) for r in rows]
print(repr(out))
PY
}
HVSS=6c1f0a4e-3b2d-4c5e-8f7a-9b0c1d2e3f4a
user_ok='users[e["id"]].get("email") == e["email"] and users[e["id"]].get("first_name") == e["first_name"]
  and users[e["id"]].get("last_name") == e["last_name"]
  and abs(float(ca(e["id"]).get("ltv") or 0) - e["ltv"]) < 1e-9 and ca(e["id"]).get("purchase_count") == e["purchase_count"]
  and (subs(e["id"]).get("'$HVSS'") == "subscribed") == e["hvss"]'

# ---- the first run: every user ----
run run
expect_rc 0 "run"
sim_check "Braze holds the 1000 users" 'len(users) == 1000 and set(users) == set(str(i) for i in range(1, 1001))'
EXP=$(expected)
n_hvss=$(python3 -c "import sys; print(sum(e['hvss'] for e in $EXP))")
[ "$n_hvss" -gt 0 ] && ok "some users are high-value Spanish speakers ($n_hvss)" || bad "no high-value Spanish speaker sampled"
sim_check "sampled users have their properties and subscription" "all($user_ok for e in $EXP)"
# the simulator keeps no "language": check what was sent
sim_check "sampled users were sent their language" \
  "all(any(a['external_id'] == e['id'] and a.get('language') == e['language'] for a in track) for e in $EXP)"
sim_check "exactly the high-value Spanish speakers are subscribed" \
  "sum(1 for u in users if subs(u).get('$HVSS') == 'subscribed') == $(sqlite3 "$DB" "SELECT count(*) FROM users u WHERE u.language = 'Spanish' AND (SELECT sum(price) FROM purchases p WHERE p.user_id = u.id AND p.state = 'successful') > 100")"

# ---- a purchase for user 272 only: nothing in users changes ----
[ "$(sqlite3 "$DB" "SELECT language FROM users WHERE id = 272")" = Spanish ] && ok "user 272 speaks Spanish" || bad "user 272"
before=$(sqlite3 "$DB" "SELECT count(*) || ' ' || sum(price) FROM purchases WHERE user_id = 272 AND state = 'successful'")
# created now, so after the purchases schedule's mark (the newest created_at read)
sqlite3 "$DB" "INSERT INTO purchases (id, user_id, item, category, price, state, created_at)
               VALUES (1001, 272, 7, 'Garden', 250.5, 'successful', strftime('%Y-%m-%d %H:%M:%f', 'now'))"
EXP=$(expected)
python3 -c "import sys; e = [e for e in $EXP if e['id'] == '272'][0]; sys.exit(0 if e['hvss'] and e['purchase_count'] == ${before%% *} + 1 else 1)" \
  && ok "user 272 is now a high-value Spanish speaker (was: $before)" || bad "user 272 expectation"
MARK=$(sim_mark)
run run
expect_rc 0 "second run"
sim_check "user 272 has the new ltv, purchase_count and subscription" "all($user_ok for e in $EXP if e['id'] == '272')"
SINCE=$MARK sim_check "only user 272 is sent" \
  'set(a["external_id"] for a in track) == {"272"}'
sim_check "the other sampled users are as before" "all($user_ok for e in $EXP)"

finish
