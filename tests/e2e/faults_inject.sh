#!/usr/bin/env bash
# faults_inject.sh: fault injection into a small `joey run` (creates, updates, a delete,
# group changes), in a build with -DJOEY_FAULTS=ON (scripts/test.sh makes one):
#   - the Nth allocation fails (JOEY_FAIL_ALLOC_AT=N), for every N the run makes;
#   - the Nth SQLite write or sync fails (JOEY_FAIL_IO_AT=N, src/state/faultvfs.c), for
#     every N: as a dying disk (that call and all after it), as a transient error (that
#     call only), and as a full disk (SQLITE_FULL from then on);
#   - the state directory, or the state file, is read-only.
# Every run must end in success or a clean error (exit 1 with a message on stderr; no
# signal, no sanitizer report, no hang), leave a state file that passes
# PRAGMA integrity_check and holds no half-committed batch, and a run without faults
# afterwards must make Braze (the simulator) equal the source.
# FAULT_STRIDE=K tries every Kth N only (default 1: all).
set -e
source "$(dirname "$0")/lib.bash"
if [ "$STATE_BACKEND" != sqlite ]; then
  echo "skipped: the I/O faults are injected through SQLite (E2E_STATE=$STATE_BACKEND)"; echo "0 passed, 0 failed"; exit 0
fi
unset JOEY_STATE JOEY_STATE_URL JOEY_FAIL_ALLOC_AT JOEY_FAIL_IO_AT JOEY_FAIL_IO_ONCE JOEY_FAIL_IO_FULL
if ! JOEY_FAIL_ALLOC_AT=0 "$JOEY" --version 2>&1 >/dev/null | grep -q '^joey: faults: '; then
  echo "skipped: $JOEY was built without -DJOEY_FAULTS=ON"; echo "0 passed, 0 failed"; exit 0
fi
STRIDE=${FAULT_STRIDE:-1}

sim_start
export BRAZE_KEY=test-key BRAZE_URL="$SIM_URL" GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
mkdir -p "$TMP/cfg"
sqlite3 "$TMP/data.db" "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, n INTEGER, vip INTEGER);
INSERT INTO users VALUES (1, 'a@example.com', 1, 1), (2, 'b@example.com', 2, 0), (3, 'c@example.com', 3, 1),
  (4, 'd@example.com', 4, 0), (5, 'e@example.com', 5, 0);"
cat > "$TMP/cfg/config.json" <<'EOF2'
[
 {"class":"App","id":"db","type":"sqlite","options":{"file":"data.db"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"${BRAZE_KEY}","restEndpoint":"BRAZE_URL"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"sqlite-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Property","id":"n","type":"integer","sourceId":"src","options":{"column":"n"}},
 {"class":"Property","id":"vip","type":"boolean","sourceId":"src","options":{"column":"vip"}},
 {"class":"Group","id":"vips","name":"VIPs","modelId":"users","rules":[{"propertyId":"vip","op":"eq","match":true}]},
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email","n":"n"},"destinationGroupMemberships":{"VIP":"vips"}}
]
EOF2
ST="$TMP/state/state.db"
J=(--config "$TMP/cfg" --state "$ST" --force --timeout 5)

equal_to_source() { # the simulator holds exactly the source's users and values
  python3 - "$TMP/data.db" "$SIM_URL" <<'PY'
import json, sqlite3, sys, urllib.request
rows = {str(i): (e, n, bool(v)) for i, e, n, v in sqlite3.connect(sys.argv[1]).execute("SELECT id, email, n, vip FROM users")}
users = {u["external_id"]: u for u in json.load(urllib.request.urlopen(sys.argv[2] + "/_sim/users"))["users"]}
bad = []
if set(rows) != set(users):
    bad.append("ids differ: missing %s, extra %s" % (sorted(set(rows) - set(users)), sorted(set(users) - set(rows))))
for k, (e, n, v) in rows.items():
    u = users.get(k)
    if not u: continue
    ca = u.get("custom_attributes", {})
    if u.get("email") != e or ca.get("n") != n or (("VIP" in ca.get("groups", [])) != v):
        bad.append("%s: braze %r/%r/%r, source %r/%r/%r" % (k, u.get("email"), ca.get("n"), ca.get("groups"), e, n, v))
if bad:
    print("; ".join(bad[:5])); sys.exit(1)
PY
}
# what the store says Braze has: one line per record (without times)
records() { sqlite3 "$ST" "SELECT dest_id, key, hex(hash), in_scope, pending FROM records ORDER BY 1, 2" 2>&1; }

# ---- the starting point: one clean run, then a change of the source ----
run run "${J[@]}"; expect_rc 0 "baseline run"
cp "$ST" "$TMP/base.db"
[ ! -e "$ST-wal" ] || cp "$ST-wal" "$TMP/base.db-wal"
curl -s "$SIM_URL/_sim/users" > "$TMP/base_users.json"
BASE_RECORDS=$(records)
sqlite3 "$TMP/data.db" "UPDATE users SET n = n + 10 WHERE id <= 2; UPDATE users SET vip = 1 - vip WHERE id IN (3, 4);
  DELETE FROM users WHERE id = 5; INSERT INTO users VALUES (6, 'f@example.com', 6, 1);"

restore() { # the store and Braze as after the baseline run
  rm -f "$ST" "$ST-wal" "$ST-shm"
  cp "$TMP/base.db" "$ST"
  [ ! -e "$TMP/base.db-wal" ] || cp "$TMP/base.db-wal" "$ST-wal"
  sim_post /_sim/reset '{}'
  sim_post /_sim/users "@$TMP/base_users.json"
}

# the run under test, from the starting point, without faults: it must succeed and
# count what a fault run can fail
restore
set +e
env JOEY_FAIL_ALLOC_AT=0 JOEY_FAIL_IO_AT=0 "$JOEY" run "${J[@]}" >"$TMP/out" 2>"$TMP/err"
RC=$?
set -e
OUT=$(cat "$TMP/out"); ERR=$(cat "$TMP/err")
expect_rc 0 "the run under test succeeds without faults"
N_ALLOC=$(sed -n 's/^joey: faults: \([0-9]*\) allocations$/\1/p' "$TMP/err")
N_IO=$(sed -n 's/^joey: faults: \([0-9]*\) writes and syncs$/\1/p' "$TMP/err")
if [ -n "$N_ALLOC" ] && [ -n "$N_IO" ] && [ "$N_ALLOC" -gt 0 ] && [ "$N_IO" -gt 0 ]; then
  ok "counted $N_ALLOC allocations and $N_IO SQLite writes and syncs"
else
  bad "counting mode printed no counts"; finish; exit 1
fi
if msg=$(equal_to_source); then ok "the run under test makes Braze equal the source"; else bad "run under test: $msg"; fi
FINAL_RECORDS=$(records)

# trial MODE N ENV...: restore, run with the fault, check how it ended, then converge.
# Sets TRIAL_OUTCOME (success | error) or appends to TRIAL_BAD.
TRIAL_BAD=()
trial() {
  local mode=$1 n=$2 what rc err integrity
  shift 2
  restore
  set +e
  env "$@" timeout 120 "$JOEY" run "${J[@]}" >"$TMP/out" 2>"$TMP/err"
  rc=$?
  set -e
  err=$(cat "$TMP/err")
  what="$mode N=$n"
  TRIAL_OUTCOME=""
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 1 ]; then
    TRIAL_BAD+=("$what: exit $rc (a signal, a hang or a usage error): ${err:0:600}"); return
  fi
  if grep -qE 'Sanitizer|runtime error:|^==[0-9]+==' <<<"$err"; then
    TRIAL_BAD+=("$what: sanitizer report: ${err:0:1500}"); return
  fi
  if [ "$rc" -eq 1 ] && { ! grep -qE '[a-z]' <<<"$err$(cat "$TMP/out")" || grep -q 'error: no error' <<<"$err"; }; then
    TRIAL_BAD+=("$what: exit 1 without a message saying what failed: ${err:0:600}"); return
  fi
  case $mode in
  alloc) [ "$rc" -eq 0 ] || grep -q '^joey: out of memory (allocating [0-9]* bytes)$' <<<"$err" ||
           grep -qE 'error|failed' <<<"$err$(cat "$TMP/out")" ||
           { TRIAL_BAD+=("$what: exit 1 without saying why: ${err:0:600}"); return; } ;;
  io-full) [ "$rc" -eq 0 ] || grep -q 'the disk is full' <<<"$err$(cat "$TMP/out")" ||
             { TRIAL_BAD+=("$what: a full disk not reported as such: ${err:0:600}"); return; } ;;
  esac
  TRIAL_OUTCOME=$([ "$rc" -eq 0 ] && echo success || echo error)
  integrity=$(sqlite3 "$ST" "PRAGMA integrity_check" 2>&1)
  if [ "$integrity" != ok ]; then TRIAL_BAD+=("$what: integrity_check: $integrity"); return; fi
  # a batch is committed whole or not at all: the rows of each request (the track
  # batch: 1-4 and 6; the delete batch: 5) are all as at the start or all as after
  # the run, never a mix
  local now; now=$(records)
  local g
  for g in '^d\|[12346]\|' '^d\|5\|'; do
    if [ "$(grep -E "$g" <<<"$now")" != "$(grep -E "$g" <<<"$BASE_RECORDS")" ] &&
       [ "$(grep -E "$g" <<<"$now")" != "$(grep -E "$g" <<<"$FINAL_RECORDS")" ]; then
      TRIAL_BAD+=("$what: a partial commit: records now: $(tr '\n' ' ' <<<"$now")"); return
    fi
  done
  set +e
  "$JOEY" run "${J[@]}" >"$TMP/out2" 2>"$TMP/err2"
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then TRIAL_BAD+=("$what: the run after it failed (exit $rc): $(head -c 600 "$TMP/err2")"); return; fi
  local msg
  if ! msg=$(equal_to_source); then TRIAL_BAD+=("$what: Braze differs from the source after the next run: $msg"); return; fi
  integrity=$(sqlite3 "$ST" "PRAGMA integrity_check" 2>&1)
  [ "$integrity" = ok ] || TRIAL_BAD+=("$what: integrity_check after the next run: $integrity")
}

# sweep MODE LAST ENVNAME [ENV...]: trial for N = 1, 1+STRIDE, ... LAST
sweep() {
  local mode=$1 last=$2 var=$3 n successes=0 errors=0 tried=0
  shift 3
  TRIAL_BAD=()
  for ((n = 1; n <= last; n += STRIDE)); do
    trial "$mode" "$n" "$var=$n" "$@"
    tried=$((tried + 1))
    case $TRIAL_OUTCOME in success) successes=$((successes + 1)) ;; error) errors=$((errors + 1)) ;; esac
  done
  if [ ${#TRIAL_BAD[@]} -eq 0 ]; then
    ok "$mode: N=1..$last ($tried runs): $errors clean errors, $successes successes; each converged after"
  else
    FAIL=$((FAIL + 1))
    echo "FAIL $mode: ${#TRIAL_BAD[@]} of $tried runs went wrong"
    printf '  %s\n' "${TRIAL_BAD[@]:0:10}"
  fi
  echo "  $mode: $tried runs, $successes successes, $errors clean errors, ${#TRIAL_BAD[@]} wrong"
}

# a few past the count: runs vary a little (the order answers arrive in)
sweep alloc $((N_ALLOC + 3)) JOEY_FAIL_ALLOC_AT
sweep io $((N_IO + 2)) JOEY_FAIL_IO_AT
sweep io-once $((N_IO + 2)) JOEY_FAIL_IO_AT JOEY_FAIL_IO_ONCE=1
sweep io-full $((N_IO + 2)) JOEY_FAIL_IO_AT JOEY_FAIL_IO_FULL=1

# ---- the state store is read-only: refused before anything is sent ----
# Root writes anyway, so as root the runs are made as nobody.
AS=()
if [ "$(id -u)" = 0 ]; then
  if command -v setpriv >/dev/null; then AS=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
  else AS=(skip); fi
fi
readonly_case() { # readonly_case NAME: the store is made read-only by the caller
  local before after m
  before=$(md5sum "$ST" | cut -d' ' -f1)
  m=$(sim_mark)
  set +e
  "${AS[@]}" "$JOEY" run "${J[@]}" >"$TMP/out" 2>"$TMP/err"
  RC=$?
  set -e
  OUT=$(cat "$TMP/out"); ERR=$(cat "$TMP/err")
  expect_rc 1 "$1: run refused"
  expect_err "read-only" "$1: the message says read-only"
  expect_err "hint:" "$1: with a hint"
  expect_no "Sanitizer" "$1: no sanitizer report"
  after=$(md5sum "$ST" | cut -d' ' -f1)
  if [ "$before" = "$after" ]; then ok "$1: state file unchanged"; else bad "$1: the state file changed"; fi
  SINCE=$m sim_check "$1: nothing sent to Braze" 'reqs==[]'
}
if [ "${AS[0]:-}" = skip ]; then
  echo "skipped: read-only state store (root, and no setpriv to drop privileges)"
else
  restore
  if [ ${#AS[@]} -gt 0 ]; then # nobody must reach the config, the source and the store
    chmod 755 "$TMP"; chmod -R a+rX "$TMP/cfg" "$TMP/state"; chmod a+r "$TMP/data.db"
  fi
  chmod 555 "$TMP/state"
  readonly_case "read-only state directory"
  chmod 755 "$TMP/state"
  if [ ${#AS[@]} -gt 0 ]; then chmod 777 "$TMP/state"; fi
  chmod 444 "$ST"
  readonly_case "read-only state file"
  chmod 755 "$TMP/state"; chmod 644 "$ST"; chmod 700 "$TMP"
  rm -f "$ST-wal" "$ST-shm"
  run run "${J[@]}"; expect_rc 0 "writable again: the run succeeds"
  if msg=$(equal_to_source); then ok "writable again: Braze equals the source"; else bad "writable again: $msg"; fi
fi
finish
