#!/usr/bin/env bash
# workers.sh: several `joey worker` processes share one PostgreSQL state store
# (docs/scaling.md). Three workers; the elected leader fires a schedule once; its job
# splits one destination into 6 key ranges; one worker is killed with SIGKILL mid-run.
# Then: Braze (the simulator) equals the source, no row lost, nothing sent twice beyond
# the batches in flight at the kill, and the request rate of all workers together
# stayed under the workspace's limit (a low one, which three uncoordinated workers
# would exceed threefold). A second job (updates and deletes in every range) runs on
# the two workers left. Skipped without JOEY_PG_URL.
set -e
E2E_STATE=postgres
source "$(dirname "$0")/lib.bash"

N=${WORKERS_N:-20000}
LIMIT=60 # /users/track requests per 3 s, for the simulator and joey's rateLimits
sim_start --latency-ms 150 --rate "track=$LIMIT/3" --log-keep 100000
export BRAZE_KEY=test-key BRAZE_URL="$SIM_URL" GROUPAROO_OPTION__APP__BRAZE_URL="$SIM_URL"
mkdir -p "$TMP/cfg"
sqlite3 "$TMP/data.db" "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, n INTEGER);
WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < $N)
INSERT INTO users SELECT i, 'u' || i || '@example.com', i % 97 FROM s;"
cat > "$TMP/cfg/config.json" <<EOF
[
 {"class":"App","id":"db","type":"sqlite","options":{"file":"data.db"}},
 {"class":"App","id":"braze","type":"braze","options":{"apiKey":"\${BRAZE_KEY}","restEndpoint":"BRAZE_URL","rateLimits":"track=$LIMIT/3"}},
 {"class":"Model","id":"users","name":"Users","type":"profile"},
 {"class":"Source","id":"src","type":"sqlite-import-table","appId":"db","modelId":"users","options":{"table":"users"},"mapping":{"id":"user_id"}},
 {"class":"Property","id":"user_id","type":"integer","unique":true,"sourceId":"src","options":{"column":"id"}},
 {"class":"Property","id":"email","type":"email","sourceId":"src","options":{"column":"email"}},
 {"class":"Property","id":"n","type":"integer","sourceId":"src","options":{"column":"n"}},
 {"class":"Schedule","id":"every_hour","name":"Hourly","sourceId":"src","recurring":true,"recurringFrequency":3600000,"incremental":false,"options":{"column":"id"}},
 {"class":"Destination","id":"d","type":"braze-export-users","appId":"braze","modelId":"users","syncMode":"sync","collection":"model",
  "mapping":{"external_id":"user_id","email":"email","n":"n"},"options":{"partitions":6}}
]
EOF

# ---- an SQLite store cannot have workers ----
run worker --config "$TMP/cfg" --state "$TMP/x.db"
expect_rc 1 "worker with an SQLite store refused"
expect_err "workers need a PostgreSQL state store" "and says why"
run run --config "$TMP/cfg" --state "$TMP/x.db" --partitions 4
expect_rc 1 "run --partitions with an SQLite store refused"
expect_err "workers need a PostgreSQL state store" "and says why (run)"

run state migrate --config "$TMP/cfg"
expect_rc 0 "state store created"

# ---- three workers; the leader fires the schedule once ----
declare -a WPID
for i in 1 2 3; do
  "$JOEY" worker --config "$TMP/cfg" --lease 3 --concurrency 4 >"$TMP/w$i.log" 2>&1 &
  WPID[$i]=$!
done
jobs_count() { state_query "" "SELECT count(*) FROM work_jobs"; }
job_status() { state_query "" "SELECT status FROM work_jobs WHERE id = $1"; }
for _ in $(seq 1 100); do [ "$(jobs_count)" -ge 1 ] && break; sleep 0.1; done
if [ "$(jobs_count)" = 1 ]; then ok "the schedule queued one job"; else bad "no job queued by the schedule"; fi
# kill, with SIGKILL, a worker that holds a work item, once Braze has had a few seconds of it
KILLED=""
for _ in $(seq 1 100); do
  if [ "$(python3 "$SRC/tests/e2e/sim.py" mark "$SIM_URL")" -ge $((LIMIT * 3 / 2)) ]; then
    holder=$(state_query "" "SELECT worker FROM work_items WHERE status = 'running' ORDER BY id LIMIT 1")
    pid=$(cut -d: -f2 <<<"$holder")
    for i in 1 2 3; do
      if [ "${WPID[$i]}" = "$pid" ]; then KILLED=$i; fi
    done
    [ -n "$KILLED" ] && break
  fi
  sleep 0.1
done
if [ -n "$KILLED" ]; then
  KILL_TIME=$(date +%s.%N)
  kill -9 "${WPID[$KILLED]}"
  wait "${WPID[$KILLED]}" 2>/dev/null || true
  KILL_SEQ=$(python3 "$SRC/tests/e2e/sim.py" mark "$SIM_URL")
  ok "worker $KILLED (pid ${WPID[$KILLED]}) killed with SIGKILL while holding a work item"
else
  bad "no worker held a work item to kill"
fi
for _ in $(seq 1 600); do [ "$(job_status 1)" != running ] && break; sleep 0.2; done
if [ "$(job_status 1)" = success ]; then ok "job 1 succeeded"; else bad "job 1: $(job_status 1)"; fi
if [ "$(state_query "" "SELECT count(*) FROM work_items WHERE job_id = 1 AND claims > 1")" -ge 1 ]; then
  ok "the killed worker's item was claimed again after its lease ran out"
else bad "no item was claimed twice"; fi
if [ "$(jobs_count)" = 1 ]; then ok "the schedule fired once with three workers"; else bad "$(jobs_count) jobs queued"; fi
leaders=$(cat "$TMP"/w*.log | grep -c "is now the scheduler leader" || true)
if [ -n "$KILLED" ] && grep -q "is now the scheduler leader" "$TMP/w$KILLED.log"; then want_leaders=2; else want_leaders=1; fi
if [ "$leaders" = "$want_leaders" ]; then ok "one leader at a time ($leaders election(s))"; else bad "$leaders leader elections, expected $want_leaders"; cat "$TMP"/w*.log | grep leader; fi
if [ "$(state_query "" "SELECT status || ' ' || created FROM runs ORDER BY id DESC LIMIT 1")" = "success $N" ] ||
   [ "$(state_query "" "SELECT status FROM runs ORDER BY id DESC LIMIT 1")" = success ]; then
  ok "the destination's run row says success"
else bad "run row: $(state_query "" "SELECT status, created, error FROM runs")"; fi
if [ "$(state_query "" "SELECT count(*) FROM locks")" = 0 ]; then ok "the job released its lock"; else bad "locks left: $(state_query "" "SELECT * FROM locks")"; fi

# ---- what Braze got ----
check_sim() { # check_sim NAME SINCE_SEQ KILL_SEQ [RANGES [KILL_TIME]]: equal to the source, duplicates, rate
  # RANGES: "lo|hi" lines, the key ranges of the items a worker died on (duplicates must be in them)
  python3 - "$TMP/data.db" "$SIM_URL" "$LIMIT" "$2" "${3:-0}" "${4:-}" "${5:-0}" <<'PY'
import collections, datetime, json, sqlite3, sys, urllib.request
db, url, limit, since, kill_seq = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ranges = [tuple(int(x) if x else None for x in l.split("|")) for l in sys.argv[6].split()]
kill_time = float(sys.argv[7])
get = lambda p: json.load(urllib.request.urlopen(url + p, timeout=30))
rows = {str(i): (e, n) for i, e, n in sqlite3.connect(db).execute("SELECT id, email, n FROM users")}
users = {u["external_id"]: u for u in get("/_sim/users")["users"] if "external_id" in u}
bad = []
if set(rows) != set(users):
    bad.append("ids differ: missing %d (%s), extra %d (%s)" % (len(set(rows) - set(users)), sorted(set(rows) - set(users))[:5],
               len(set(users) - set(rows)), sorted(set(users) - set(rows))[:5]))
wrong = [k for k, (e, n) in rows.items() if k in users and (users[k].get("email") != e or users[k].get("custom_attributes", {}).get("n") != n)]
if wrong:
    bad.append("%d users with wrong attributes, e.g. %s" % (len(wrong), wrong[:5]))
reqs = [q for q in get("/_sim/requests?since=%d" % since)["requests"] if q.get("endpoint") == "track"]
applied = [q for q in reqs if 200 <= q["status"] < 300]
when = lambda q: datetime.datetime.fromisoformat(q["time"].replace("Z", "+00:00")).timestamp()
sent = collections.Counter(a["external_id"] for q in applied for a in q["body"].get("attributes", []))
first = {}
for q in applied:
    for a in q["body"].get("attributes", []):
        first.setdefault(a["external_id"], when(q))
twice = {k: c for k, c in sent.items() if c > 1}
# What a killed worker sends again: the batches in flight at the kill (--concurrency 4, 150 ms
# each) and those Braze answered that it had not yet committed (answers are committed every
# 0.5 s, src/engine/run_answers.c): users Braze first got within the last moments before the
# kill, in the ranges it held. "Moments": 0.5 s + 150 ms, and 2.5 s for a process starved of
# CPU (ctest -j3 on 2 cores) between an answer and its commit. Nothing confirmed before that
# may be sent again.
SLACK = 3.0
early = sorted(k for k in twice if first[k] < kill_time - SLACK) if kill_seq else sorted(twice)
if early:
    bad.append("%d users sent more than once that Braze had confirmed more than %.0f s before the kill, e.g. %s"
               % (len(early), SLACK, early[:5]))
outside = [k for k in twice if not any((lo is None or int(k) >= lo) and (hi is None or int(k) < hi) for lo, hi in ranges)]
if outside:
    bad.append("%d users sent twice outside the killed worker's ranges %s, e.g. %s" % (len(outside), ranges, sorted(outside)[:5]))
n429 = sum(1 for q in reqs if q["status"] == 429)
ts = sorted(datetime.datetime.fromisoformat(q["time"].replace("Z", "+00:00")).timestamp() for q in reqs)
fixed = collections.Counter(int(t // 3) for t in ts)
worst_fixed = max(fixed.values()) if fixed else 0
j, worst_sliding = 0, 0
for i, t in enumerate(ts):
    while ts[j] <= t - 3:
        j += 1
    worst_sliding = max(worst_sliding, i - j + 1)
span = ts[-1] - ts[0] if len(ts) > 1 else 0
print("%d track requests (%d applied, %d answered 429) in %.1f s: %.1f/s; most in one of the simulator's 3 s windows %d, "
      "in any 3 s %d (limit %d); %d users sent twice" % (len(reqs), len(applied), n429, span, len(reqs) / span if span else 0,
      worst_fixed, worst_sliding, limit, len(twice)))
if n429 > 2:
    bad.append("%d requests answered 429: the workers went over the shared limit" % n429)
if worst_fixed > limit:
    bad.append("%d requests arrived in one 3 s window of the simulator (limit %d)" % (worst_fixed, limit))
if worst_sliding > limit + 3:
    bad.append("%d requests arrived within 3 s (limit %d)" % (worst_sliding, limit))
if bad:
    print("\n".join(bad)); sys.exit(1)
PY
}
RESUMED=$(state_query "" "SELECT coalesce(lo_int::text, '') || '|' || coalesce(hi_int::text, '') FROM work_items WHERE job_id = 1 AND claims > 1")
if msg=$(check_sim "job 1" 0 "${KILL_SEQ:-0}" "$RESUMED" "${KILL_TIME:-0}"); then ok "job 1: Braze equals the source, no duplicates beyond the kill, rate kept ($msg)"
else bad "job 1: $msg"; fi

# ---- a second job on the two workers left: updates and deletes in every range ----
MARK=$(python3 "$SRC/tests/e2e/sim.py" mark "$SIM_URL")
sqlite3 -cmd ".timeout 20000" "$TMP/data.db" "UPDATE users SET n = n + 1000 WHERE id % 10 = 0; DELETE FROM users WHERE id % 200 = 7;"
run run --config "$TMP/cfg" --partitions 6 --detach --json
expect_rc 0 "run --partitions 6 --detach queues a job"
JOB2=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["jobs"][0])' "$OUT")
for _ in $(seq 1 600); do [ "$(job_status "$JOB2")" != running ] && break; sleep 0.2; done
if [ "$(job_status "$JOB2")" = success ]; then ok "job $JOB2 succeeded"; else bad "job $JOB2: $(job_status "$JOB2")"; fi
want=$(sqlite3 "$TMP/data.db" "SELECT (SELECT count(*) FROM users WHERE id % 10 = 0) || ' ' || ($N / 200 + ($N % 200 >= 7))")
got=$(state_query "" "SELECT sum(updated) || ' ' || sum(deleted) FROM work_items WHERE job_id = $JOB2")
if [ "$got" = "$want" ]; then ok "job $JOB2: updates and deletes in every range ($got)"; else bad "job $JOB2: updated/deleted $got, want $want"; fi
if msg=$(check_sim "job 2" "$MARK" 0); then ok "job $JOB2: Braze equals the source ($msg)"; else bad "job $JOB2: $msg"; fi

# ---- run --partitions in the foreground: works with the workers, reports the whole run ----
sqlite3 -cmd ".timeout 20000" "$TMP/data.db" "UPDATE users SET n = n + 1 WHERE id % 50 = 1"
run run --config "$TMP/cfg" --partitions 3 --json
expect_rc 0 "run --partitions 3 in the foreground"
expect_out '"updated":[0-9]+' "it reports the run"
want=$(sqlite3 "$TMP/data.db" "SELECT count(*) FROM users WHERE id % 50 = 1")
if grep -q "\"updated\":$want," <<<"$OUT"; then ok "the whole run's counts ($want updated)"; else bad "counts: want $want updated"; fi

# ---- the mass-delete guard holds per range: deletes bunched in the top keys ----
# 10% of the destination, all in the last range: a single run's guard (at most 10%) would
# let it through, the last range's own guard (60% of its rows) does not
sqlite3 -cmd ".timeout 20000" "$TMP/data.db" "DELETE FROM users WHERE id > $((N * 9 / 10))"
run run --config "$TMP/cfg" --partitions 6 --json
expect_rc 1 "deletes bunched in one range are refused by that range's guard"
expect_out 'refusing to delete' "and the guard says so"
if [ "$(state_query "" "SELECT count(*) FROM work_items w JOIN work_jobs j ON j.id = w.job_id WHERE j.id = (SELECT max(id) FROM work_jobs) AND w.deletes_held > 0")" = 1 ]; then
  ok "only the last range held its deletes back"
else bad "ranges holding deletes: $(state_query "" "SELECT part, deletes_held, deleted FROM work_items WHERE job_id = (SELECT max(id) FROM work_jobs)")"; fi
run run --config "$TMP/cfg" --partitions 6 --force
expect_rc 0 "--force lets them through"
if msg=$(check_sim "forced" "$(python3 "$SRC/tests/e2e/sim.py" mark "$SIM_URL")" 0); then ok "Braze equals the source after the forced run"; else bad "forced: $msg"; fi

for i in 1 2 3; do [ "$i" = "$KILLED" ] || kill -TERM "${WPID[$i]}" 2>/dev/null || true; done
for i in 1 2 3; do [ "$i" = "$KILLED" ] || wait "${WPID[$i]}" 2>/dev/null || true; done
if grep -q "ERROR\|AddressSanitizer\|runtime error" "$TMP"/w*.log; then bad "worker logs have errors"; grep -h "ERROR\|Sanitizer\|runtime error" "$TMP"/w*.log | head -5
else ok "worker logs have no errors"; fi
finish
