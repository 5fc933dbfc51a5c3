#!/usr/bin/env python3
"""workers_sigterm.py: a worker stopped with SIGTERM gives its work item back to the queue
(docs/scaling.md); such a claim does not count towards the claims an item may have
(WORK_MAX_CLAIMS, meant for workers that die on it). Six workers in turn claim the one item
of a job, send a little and get SIGTERM; a seventh finishes it: the job succeeds and Braze
(the simulator) has every user. (Before, the sixth claim failed the item: "claimed 5 times:
its workers kept ending without finishing it (killed, out of memory?)".) Skipped without
JOEY_PG_URL."""
import json
import os
import signal
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import JOEY, PROCS, TMP, Sim, check, finish, pg_state_url, wait_for  # noqa: E402

if not os.environ.get("JOEY_PG_URL"):
    print("skipped: no JOEY_PG_URL")
    sys.exit(0)
N = 3000
sim = Sim("--latency-ms", "200")
db = os.path.join(TMP, "data.db"); cfg = os.path.join(TMP, "cfg"); os.makedirs(cfg)
con = sqlite3.connect(db, timeout=30, isolation_level=None)
con.execute("PRAGMA journal_mode=WAL")
con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, n INTEGER)")
con.executemany("INSERT INTO users VALUES (?, ?, ?)", [(i, "u%d@example.com" % i, 1) for i in range(1, N + 1)])
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
     "syncMode": "sync", "collection": "model", "mapping": {"external_id": "user_id", "email": "email", "n": "n"}},
]
json.dump(objs, open(os.path.join(cfg, "config.json"), "w"))
state = pg_state_url(); schema = state.split("schema=")[1]
ENV = dict(os.environ, BRAZE_KEY="test-key", GROUPAROO_OPTION__APP__BRAZE_URL=sim.url, JOEY_STATE_URL=state)
def sql(q):
    return subprocess.run(["psql", os.environ["JOEY_PG_URL"], "-qAt", "-c", "SET search_path TO %s; %s" % (schema, q)],
                          capture_output=True, text=True, check=True).stdout.strip()
def joey(*a): return subprocess.run([JOEY] + list(a), capture_output=True, text=True, env=ENV)
assert joey("state", "migrate", "--config", cfg).returncode == 0
r = joey("run", "--config", cfg, "--partitions", "1", "--detach", "--json"); assert r.returncode == 0, r.stderr
job = json.loads(r.stdout)["jobs"][0]
logs = []
for k in range(6):  # six graceful stops, each after the worker sent a little
    log = os.path.join(TMP, "w%d.log" % k); logs.append(log)
    p = subprocess.Popen([JOEY, "worker", "--config", cfg, "--lease", "5", "--concurrency", "1"],
                         stdout=open(log, "w"), stderr=subprocess.STDOUT, env=ENV)
    PROCS.append(p)
    m = sim.get("/_sim/stats")["requests_total"]
    wait_for(lambda: sim.get("/_sim/stats")["requests_total"] >= m + 2, 20)
    p.send_signal(signal.SIGTERM)
    p.wait(30)
print("after 6 SIGTERMs:", sql("SELECT status, claims, error FROM work_items"), flush=True)
p = subprocess.Popen([JOEY, "worker", "--config", cfg, "--lease", "5"], stdout=open(os.path.join(TMP, "last.log"), "w"),
                     stderr=subprocess.STDOUT, env=ENV)
PROCS.append(p)
wait_for(lambda: sql("SELECT status FROM work_jobs WHERE id = %d" % job) != "running", 60)
check("the job succeeds although its item was given back six times with SIGTERM",
      sql("SELECT status FROM work_jobs WHERE id = %d" % job) == "success",
      sql("SELECT status, claims, error FROM work_items"))
check("Braze has every user", len(sim.users()) == N, len(sim.users()))
p.send_signal(signal.SIGTERM); p.wait(30)
finish()
