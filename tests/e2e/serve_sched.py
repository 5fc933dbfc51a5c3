#!/usr/bin/env python3
"""serve_sched.py: `joey serve` as a scheduler: a recurring schedule runs at start and
not again after a restart (its last run is remembered), a run asked for while one is
going is queued once (not stacked), SIGTERM mid-run exits 0 with the state consistent
(a later run converges, nothing lost), SIGHUP with a broken config keeps the old one
and reports why, and a run that fails shows its error. Frequencies and cron timing are
covered with a fake clock by tests/unit/sched/sched.c."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import (TMP, JOEY, Server, Sim, check, finish, small_config, wait_for)  # noqa: E402

sim = Sim()
os.environ["BRAZE_KEY"] = "test-key"
schedule = {"class": "Schedule", "id": "every_hour", "name": "Hourly", "sourceId": "src", "recurring": True,
            "recurringFrequency": 3600000, "incremental": False, "options": {"column": "id"}}
cfg, db = small_config(TMP, sim.url, n=2000, extra_objects=[schedule])
state = os.path.join(TMP, "st", "state.db")
os.makedirs(os.path.dirname(state))


def runs(srv):
    r = srv.get("/api/v1/runs?limit=100")
    return r.json["items"] if r.status == 200 else []


# ---- a schedule that never ran runs at start ----
srv = Server(cfg, state)
done = srv.wait_runs_done()
check("schedule never run: runs at start", done and done[0]["status"] == "success"
      and done[0]["counts"]["created"] == 2000, done)
r = srv.get("/api/v1/schedules")
check("schedule: next run an hour after the last", r.status == 200 and r.json[0]["next_run_at"]
      and r.json[0]["next_run_at"] - r.json[0]["last_run_at"] == 3600000, r)
check("SIGTERM when idle: exit 0", srv.stop(20) == 0)

srv = Server(cfg, state)
time.sleep(2)
check("after a restart the schedule is not due again", len(runs(srv)) == 1, runs(srv))

# ---- overlap: asked for five times while running -> runs once more ----
subprocess.run(["sqlite3", "-cmd", ".timeout 20000", db, "UPDATE users SET n = n + 1"], check=True)
sim.post("/_sim/faults", [{"endpoint": "track", "action": "slow", "delay_ms": 1500, "count": 1}])
r = srv.post("/api/v1/runs", {"destination": "d"})
check("run started", r.status == 202 and r.json["started"] == ["d"], r)
wait_for(lambda: any(x["status"] == "running" for x in runs(srv)), 10)
answers = [srv.post("/api/v1/runs", {"destination": "d"}).json for _ in range(5)]
check("requests while running are queued", all(a["queued"] == ["d"] for a in answers), answers)
q = [x for x in runs(srv) if x["status"] == "queued"]
check("queued once, not stacked", len(q) == 1, runs(srv))
done = srv.wait_runs_done(60)
check("exactly one more run after the running one", done and len(done) == 3
      and [x["status"] for x in done] == ["success"] * 3, done)
check("the queued run found nothing left to send", done and done[0]["counts"]["unchanged"] == 2000, done)
metrics = srv.get("/metrics").raw
check("metrics count the runs", 'joey_runs_total{destination="d",status="success"} 2' in metrics, metrics[:1500])

# ---- SIGHUP with a broken config: old one kept, reason shown ----
src_file = os.path.join(cfg, "sources", "src.json")
good = open(src_file).read()
with open(src_file, "w") as f:
    f.write(good.replace('"table": "users"', '"table": "users", "colour": 1'))
srv.signal(signal.SIGHUP)
st = wait_for(lambda: (lambda j: j if j["config_error"] else None)(srv.get("/api/v1/status").json), 10)
check("SIGHUP broken config: error reported", st and "config reload failed" in st["config_error"]["error"]
      and any(d["file"] == "sources/src.json" for d in st["config_error"]["diagnostics"]), st)
check("SIGHUP broken config: logged", "config reload failed" in srv.read_log())
r = srv.get("/api/v1/models/users")
check("SIGHUP broken config: the old config still serves", r.status == 200 and len(r.json["sources"]) == 1, r)
check("metrics show the config error", "joey_config_error 1" in srv.get("/metrics").raw)
r = srv.post("/api/v1/runs", {"destination": "d"})
srv.wait_runs_done()
check("runs still work on the old config", runs(srv)[0]["status"] == "success", runs(srv)[:1])
with open(src_file, "w") as f:
    f.write(good)
srv.signal(signal.SIGHUP)
st = wait_for(lambda: (lambda j: j if not j["config_error"] else None)(srv.get("/api/v1/status").json), 10)
check("SIGHUP fixed config: error cleared", st is not None, st)

# ---- SIGTERM mid-run: exits 0, state consistent, nothing lost ----
subprocess.run(["sqlite3", "-cmd", ".timeout 20000", db, "UPDATE users SET n = n + 1000"], check=True)
sim.post("/_sim/faults", [{"endpoint": "track", "action": "slow", "delay_ms": 1500, "count": 100000}])
srv.stop(20)
srv = Server(cfg, state, args=["--concurrency", "2"])
srv.post("/api/v1/runs", {"destination": "d"})
live = wait_for(lambda: [x for x in runs(srv) if x["status"] == "running" and x["counts"]["updated"] > 0], 30)
check("progress while running", live and live[0]["counts"]["updated"] < 2000 and live[0]["trigger"] == "api", live)
t0 = time.time()
code = srv.stop(60)
took = time.time() - t0
check("SIGTERM mid-run: exit 0 within a bounded time", code == 0 and took < 15, (code, took, srv.read_log()[-1500:]))
con = sqlite3.connect(state)
check("state file intact", con.execute("PRAGMA integrity_check").fetchone()[0] == "ok")
last = con.execute("SELECT status, updated FROM runs ORDER BY id DESC LIMIT 1").fetchone() \
    if "updated" in [c[1] for c in con.execute("PRAGMA table_info(runs)")] else \
    con.execute("SELECT status FROM runs ORDER BY id DESC LIMIT 1").fetchone()
con.close()
check("interrupted run recorded as such", last and last[0] == "interrupted", last)
sim.post("/_sim/faults", [{"action": "clear"}])
out = subprocess.run([JOEY, "run", "--config", cfg, "--state", state, "--json"], capture_output=True, text=True)
check("a later run completes", out.returncode == 0, out.stderr[-1500:])
users = sim.users()
want = {str(i): i + 1 + 1000 for i in range(1, 2001)}
check("Braze equals the source after the interrupted run", len(users) == 2000 and all(
    users[k]["custom_attributes"].get("n") == v for k, v in want.items()),
    [(k, users.get(k, {}).get("custom_attributes")) for k in list(want)[:3]])

# ---- a failing run shows its error ----
os.environ["BRAZE_KEY"] = "wrong-key"
srv = Server(cfg, state)
subprocess.run(["sqlite3", "-cmd", ".timeout 20000", db, "UPDATE users SET n = n + 1 WHERE id = 1"], check=True)
srv.post("/api/v1/runs", {"destination": "d"})
done = srv.wait_runs_done()
check("wrong key: the run fails with a reason", done and done[0]["status"] == "failed"
      and "key" in (done[0]["error"] or ""), done[:1] if done else done)
check("wrong key: the key is in no answer", "wrong-key" not in json.dumps(done))
check("stops cleanly", srv.stop(20) == 0)

finish()
