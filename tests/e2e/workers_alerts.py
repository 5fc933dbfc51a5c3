#!/usr/bin/env python3
"""workers_alerts.py: alerts where only `joey worker` processes run (docs/scaling.md: the
leader fires the schedules; docs/config.md "Alerts"). No joey serve and no joey run:
the worker that queued a failing job must also send the alert it opened. (Before, only
joey serve started the thread that sends queued messages: the incident opened, logged
a warning, and its message stayed pending forever.) Skipped without JOEY_PG_URL."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_lib import JOEY, PROCS, TMP, Server, Sim, check, finish, pg_state_url, small_config, wait_for  # noqa: E402
from alert_servers import Webhook  # noqa: E402

if not os.environ.get("JOEY_PG_URL"):
    print("skipped: no JOEY_PG_URL")
    sys.exit(0)

sim = Sim()
wh = Webhook()
root = os.path.join(TMP, "p")
os.makedirs(root)
cfg, db = small_config(root, sim.url, n=50, extra_objects=[
    {"class": "Schedule", "id": "hourly", "sourceId": "src", "recurring": True, "recurringFrequency": 3600000,
     "incremental": False, "options": {"column": "id"}}])
os.makedirs(os.path.join(cfg, "alerts"))
with open(os.path.join(cfg, "alerts", "ops.json"), "w") as f:
    json.dump({"class": "Alert", "id": "ops", "type": "webhook", "triggers": {"runFailed": True},
               "options": {"url": wh.url + "/ops", "secret": "${WH_SECRET}"}}, f)
pg = pg_state_url()
ENV = dict(os.environ, BRAZE_KEY="wrong-key", WH_SECRET="whsec-" + os.urandom(8).hex())
LOGS = []


def worker_log(i):
    with open(os.path.join(TMP, "w%d.log" % i)) as f:
        return f.read()


def start_worker(i):
    log = open(os.path.join(TMP, "w%d.log" % i), "w")
    p = subprocess.Popen([JOEY, "worker", "--config", cfg, "--state", pg, "--lease", "3"], env=ENV, stdout=log,
                         stderr=subprocess.STDOUT)
    PROCS.append(p)
    return p


def events():
    return [json.loads(r["body"]) for r in wh.got("/ops")]


p = subprocess.run([JOEY, "state", "migrate", "--config", cfg, "--state", pg], env=ENV, capture_output=True, text=True)
check("state store created", p.returncode == 0, p.stdout + p.stderr)

# ---- the leader's scheduled job fails (Braze refuses the key): the worker sends the alert ----
w = start_worker(1)
check("the worker's job failed and opened the incident",
      wait_for(lambda: "incident 1 opened" in worker_log(1), 30), worker_log(1)[-2000:])
got = wait_for(lambda: events(), 15)
check("joey worker sends the alert it opened (no joey serve, no joey run)",
      got and [e["event"] for e in got] == ["alert.opened"] and got[0]["trigger"] == "runFailed", worker_log(1)[-2000:])
check("the message names the failed run", got and got[0]["run"]["status"] == "failed"
      and "API key" in got[0]["summary"], got)
check("no link to a run without JOEY_PUBLIC_URL (a worker has no UI)", got and "run_url" not in got[0], got)
w.terminate()
w.wait(timeout=60)
check("the worker stops on SIGTERM", w.returncode == 0, worker_log(1)[-2000:])
log = worker_log(1)
check("no sanitizer report", "Sanitizer" not in log and "runtime error:" not in log, log[-3000:])
check("the webhook's secret is in no log line", ENV["WH_SECRET"] not in log, "")

# ---- serve --worker: a job whose source cannot be read is not queued, but its run failed ----
dpath = os.path.join(cfg, "destinations", "d.json")
with open(dpath) as f:
    dest = json.load(f)
dest["options"] = {"partitions": 4}
with open(dpath, "w") as f:
    json.dump(dest, f)
srv = Server(cfg, pg, args=["--worker"], env=dict(ENV, BRAZE_KEY="test-key"))
srv.post("/api/v1/runs", {"destination": "d"})
check("a good job resolves the incident",
      wait_for(lambda: [e["event"] for e in events()] == ["alert.opened", "alert.resolved"], 30),
      [e["event"] for e in events()])
subprocess.run(["sqlite3", db, "ALTER TABLE users RENAME TO users_gone"], check=True)
srv.wait_runs_done()
r = srv.post("/api/v1/runs", {"destination": "d"})
check("the run is asked for", r.status == 202, r)
got = wait_for(lambda: events()[2:], 20)
check("a job that could not be queued (the source is gone) opens runFailed",
      got and [e["event"] for e in got] == ["alert.opened"] and "does not exist" in got[0]["summary"],
      (got, srv.read_log()[-2000:]))
r = srv.get("/api/v1/runs?destination=d")
last = r.json["items"][0] if r.status == 200 and r.json["items"] else {}
check("and is in the run history as a failed run saying why", last.get("status") == "failed"
      and "does not exist" in (last.get("error") or "") and got and got[0]["run"]["id"] == last.get("id"), r)
srv.stop()
log = srv.read_log()
check("serve: no sanitizer report", "Sanitizer" not in log and "runtime error:" not in log, log[-3000:])
finish()
