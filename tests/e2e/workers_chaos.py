#!/usr/bin/env python3
"""workers_chaos.py: a randomized convergence test of workers (docs/scaling.md). Three
`joey worker`s run jobs of one destination in key ranges while, at random moments, one is
killed (SIGKILL, then restarted), stopped (SIGTERM: gives its item back, then restarted)
or frozen past its lease (SIGSTOP, SIGCONT later: a paused VM), and the simulator
injects faults (500s, 429s, resets, an answer lost after it was applied); the source
changes between jobs and sometimes during one. Checked: a closed job has every item
finished, its lock released and its run row agreeing; a job that succeeded with no change
during it leaves Braze equal to the source; once the chaos ends a clean job makes Braze
equal to the source and a job after it changes nothing (the state store agrees with
Braze). SEED, ROUNDS, N, PARTS, NW, LEASE, LAT, CONC change it (a soak: ROUNDS=50 N=20000).
Skipped without JOEY_PG_URL."""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import JOEY, PROCS, TMP, Sim, check, finish, pg_state_url  # noqa: E402

if not os.environ.get("JOEY_PG_URL"):
    print("skipped: no JOEY_PG_URL")
    sys.exit(0)
SEED = int(os.environ.get("SEED", "20261207"))
rnd = random.Random(SEED)
print("seed", SEED, flush=True)
N = int(os.environ.get("N", "8000"))
ROUNDS = int(os.environ.get("ROUNDS", "10"))
PARTS = int(os.environ.get("PARTS", "6"))
NW = int(os.environ.get("NW", "3"))
LEASE = int(os.environ.get("LEASE", "2"))
MIDJOB = os.environ.get("MIDJOB", "1") == "1"
FAULTS = os.environ.get("FAULTS", "1") == "1"
STOPS = os.environ.get("STOPS", "1") == "1"
sim = Sim("--latency-ms", os.environ.get("LAT", "150"))
db = os.path.join(TMP, "data.db")
cfg = os.path.join(TMP, "cfg")
os.makedirs(cfg)
con = sqlite3.connect(db, timeout=30, isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, n INTEGER)")
con.executemany("INSERT INTO users VALUES (?, ?, ?)", [(i, "u%d@example.com" % i, i % 97) for i in range(1, N + 1)])
next_id = N + 1
objs = [
    {"class": "App", "id": "db", "type": "sqlite", "options": {"file": "data.db"}},
    {"class": "App", "id": "braze", "type": "braze", "options": {"apiKey": "${BRAZE_KEY}", "restEndpoint": "BRAZE_URL"}},
    {"class": "Model", "id": "users", "name": "Users", "type": "profile"},
    {"class": "Source", "id": "src", "type": "sqlite-import-table", "appId": "db", "modelId": "users",
     "options": {"table": "users"}, "mapping": {"id": "user_id"}},
    {"class": "Property", "id": "user_id", "type": "integer", "unique": True, "sourceId": "src", "options": {"column": "id"}},
    {"class": "Property", "id": "email", "type": "email", "sourceId": "src", "options": {"column": "email"}},
    {"class": "Property", "id": "n", "type": "integer", "sourceId": "src", "options": {"column": "n"}},
    {"class": "Destination", "id": "d", "type": "braze-export-users", "appId": "braze", "modelId": "users",
     "syncMode": "sync", "collection": "model", "mapping": {"external_id": "user_id", "email": "email", "n": "n"},
     "options": {"partitions": PARTS, "maxDeletePercent": 100}},
]
json.dump(objs, open(os.path.join(cfg, "config.json"), "w"), indent=1)
state = pg_state_url()
schema = state.split("schema=")[1]
ENV = dict(os.environ, BRAZE_KEY="test-key", GROUPAROO_OPTION__APP__BRAZE_URL=sim.url, JOEY_STATE_URL=state)


def sql(q):
    return subprocess.run(["psql", os.environ["JOEY_PG_URL"], "-qAt", "-c", "SET search_path TO %s; %s" % (schema, q)],
                          capture_output=True, text=True, check=True).stdout.strip()


def joey(*args):
    return subprocess.run([JOEY] + list(args), capture_output=True, text=True, env=ENV)


r = joey("state", "migrate", "--config", cfg)
assert r.returncode == 0, r.stderr
workers = {}  # slot -> Popen
stopped = set()
logs = []
lock = threading.Lock()
stats = {"kill": 0, "term": 0, "stop": 0, "fault": 0, "midjob": 0}


def start_worker(slot):
    log = open(os.path.join(TMP, "w%d.%d.log" % (slot, len(logs))), "w")
    logs.append(log.name)
    p = subprocess.Popen([JOEY, "worker", "--config", cfg, "--lease", str(LEASE), "--concurrency", os.environ.get("CONC", "2")],
                         stdout=log, stderr=log, env=ENV)
    PROCS.append(p)
    workers[slot] = p


for s in range(NW):
    start_worker(s)


def cont_later(p, delay):
    time.sleep(delay)
    with lock:
        try:
            p.send_signal(signal.SIGCONT)
        except ProcessLookupError:
            pass
        stopped.discard(p.pid)


def chaos():
    slot = rnd.randrange(NW)
    p = workers[slot]
    if p.pid in stopped:
        return
    a = rnd.random()
    if a < 0.3:
        p.kill()
        p.wait()
        stats["kill"] += 1
        start_worker(slot)
    elif a < 0.5:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            print("worker did not stop on SIGTERM in 30 s", flush=True)
            p.kill()
            p.wait()
        stats["term"] += 1
        start_worker(slot)
    elif a < 0.75 and STOPS:
        with lock:
            stopped.add(p.pid)
        p.send_signal(signal.SIGSTOP)
        stats["stop"] += 1
        threading.Thread(target=cont_later, args=(p, LEASE * rnd.uniform(0.5, 2.5)), daemon=True).start()
    elif a < 0.85 and FAULTS:
        f = rnd.choice([
            [{"endpoint": "track", "status": 500, "count": rnd.randint(1, 4)}],
            [{"endpoint": "track", "action": "apply_then_timeout", "delay_ms": 1500, "count": 1}],
            [{"endpoint": "track", "action": "reset_connection", "count": 2}],
            [{"endpoint": "delete", "status": 503, "count": 2}],
            [{"endpoint": "track", "status": 429, "count": 2, "retry_after": 1}],
        ])
        sim.post("/_sim/faults", f)
        stats["fault"] += 1


def mutate(k_upd, k_del, k_ins):
    global next_id
    ids = [i for (i,) in con.execute("SELECT id FROM users")]
    con.execute("BEGIN")
    for i in rnd.sample(ids, min(k_upd, len(ids))):
        con.execute("UPDATE users SET n = n + ?, email = ? WHERE id = ?", (rnd.randint(1, 1000), "v%d.%d@example.com" % (i, rnd.randint(0, 10**6)), i))
    for i in rnd.sample(ids, min(k_del, len(ids))):
        con.execute("DELETE FROM users WHERE id = ?", (i,))
    for _ in range(k_ins):
        # new ids anywhere, some reusing deleted ones
        i = rnd.choice([next_id, rnd.randint(1, next_id)])
        if i == next_id:
            next_id += 1
        con.execute("INSERT OR REPLACE INTO users VALUES (?, ?, ?)", (i, "n%d.%d@example.com" % (i, rnd.randint(0, 10**6)), rnd.randint(0, 99)))
    con.execute("COMMIT")


def compare(tag):
    rows = {str(i): (e, n) for i, e, n in con.execute("SELECT id, email, n FROM users")}
    users = sim.users()
    bad = []
    miss = sorted(set(rows) - set(users), key=int)
    extra = sorted(set(users) - set(rows), key=int)
    if miss or extra:
        bad.append("missing %d %s extra %d %s" % (len(miss), miss[:8], len(extra), extra[:8]))
    wrong = [k for k, (e, n) in rows.items() if k in users and (users[k].get("email") != e or users[k].get("custom_attributes", {}).get("n") != n)]
    if wrong:
        bad.append("%d wrong e.g. %s" % (len(wrong), [(k, rows[k], users[k].get("email"), users[k].get("custom_attributes", {}).get("n")) for k in wrong[:4]]))
    return check("%s: Braze equals the source" % tag, not bad, "; ".join(bad))


def invariants(job):
    st = sql("SELECT status FROM work_jobs WHERE id = %d" % job)
    if st != "running":
        open_items = sql("SELECT count(*) FROM work_items WHERE job_id = %d AND status <> 'finished'" % job)
        check("job %d (%s): every item finished" % (job, st), open_items == "0",
              sql("SELECT id, part, status, worker, claims FROM work_items WHERE job_id = %d" % job))
        locks = sql("SELECT count(*) FROM locks")
        check("job %d: lock released" % job, locks == "0", sql("SELECT * FROM locks"))
        run = sql("SELECT r.status FROM runs r JOIN work_items i ON i.run_id = r.id WHERE i.job_id = %d LIMIT 1" % job)
        check("job %d: run row %s matches job %s" % (job, run, st), run == st)


def wait_job(job, chaos_on, midjob, timeout=240):
    end = time.time() + timeout
    did_mid = False
    while time.time() < end:
        st = sql("SELECT status FROM work_jobs WHERE id = %d" % job)
        if st != "running":
            return st
        if chaos_on:
            chaos()
            if midjob and not did_mid and rnd.random() < 0.3:
                mutate(30, 5, 5)
                did_mid = True
                stats["midjob"] += 1
        time.sleep(rnd.uniform(0.2, 1.2) if chaos_on else 0.2)
    return "TIMEOUT"


def queue(*extra):
    r = joey("run", "--config", cfg, "--partitions", str(PARTS), "--detach", "--json", *extra)
    if r.returncode != 0:
        print("queue failed:", r.stderr[-2000:], flush=True)
        return None
    return json.loads(r.stdout)["jobs"][0]


def settle():
    for _ in range(60):
        with lock:
            if not stopped:
                return
        time.sleep(0.2)


for rd in range(ROUNDS):
    mutate(rnd.randint(0, N // 3), rnd.randint(0, N // 50), rnd.randint(0, N // 50))
    job = queue()
    if job is None:
        time.sleep(2)
        continue
    midjob = MIDJOB and rnd.random() < 0.5
    time.sleep(rnd.uniform(0, 1.5))
    t0 = time.time()
    st = wait_job(job, True, midjob)
    settle()
    claims = sql("SELECT string_agg(claims::text, ',' ORDER BY part) FROM work_items WHERE job_id = %d" % job)
    print("round %d job %d: %s in %.1f s, claims %s, stats %s" % (rd, job, st, time.time() - t0, claims, stats), flush=True)
    if st == "TIMEOUT":
        check("job %d ends" % job, False, sql("SELECT id, part, status, worker, claims, expires_at FROM work_items WHERE job_id = %d" % job))
        break
    invariants(job)
    if st == "success" and not midjob:
        compare("round %d" % rd)
    if st != "success":
        print("  errors:", sql("SELECT DISTINCT error FROM work_items WHERE job_id = %d AND error IS NOT NULL" % job)[:600], flush=True)

# settle: no chaos, no faults, a clean job then a no-change job
settle()
sim.post("/_sim/faults", {"action": "clear"})
time.sleep(0.5)
for attempt in range(3):
    job = queue()
    st = wait_job(job, False, False)
    invariants(job)
    if st == "success":
        break
    print("clean job", job, st, sql("SELECT DISTINCT error FROM work_items WHERE job_id = %d" % job)[:500], flush=True)
compare("after a clean job")
job = queue()
st = wait_job(job, False, False)
counts = sql("SELECT sum(created), sum(updated), sum(deleted), sum(failed) FROM work_items WHERE job_id = %d" % job)
check("a no-change job changes nothing (%s)" % counts, st == "success" and counts == "0|0|0|0")
for p in workers.values():
    p.send_signal(signal.SIGTERM)
for p in workers.values():
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
errs = []
for name in logs:
    for line in open(name):
        if "ERROR" in line or "Sanitizer" in line or "runtime error" in line:
            errs.append(line.strip())
print("log errors:", len(errs), errs[:5])
print("stats", stats)
finish()
