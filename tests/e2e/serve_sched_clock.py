#!/usr/bin/env python3
"""serve_sched_clock.py: a run in the history that started in the future (written by a
`joey run` on a host whose clock is a day ahead, or before this host's clock was set
back) does not hold a schedule back. Before, serve took it as the last run, so a
one-minute schedule was next due a day and a minute later: no run, and no change sent,
for a day."""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import (TMP, Server, Sim, check, finish, small_config)  # noqa: E402

sim = Sim()
os.environ["BRAZE_KEY"] = "test-key"
schedule = {"class": "Schedule", "id": "often", "name": "Often", "sourceId": "src", "recurring": True,
            "recurringFrequency": 60000, "incremental": False, "options": {"column": "id"}}
cfg, db = small_config(TMP, sim.url, n=20, extra_objects=[schedule])
state = os.path.join(TMP, "st", "state.db")
os.makedirs(os.path.dirname(state))

srv = Server(cfg, state)
done = srv.wait_runs_done()
check("first start: the schedule runs", done and len(done) == 1 and done[0]["status"] == "success", done)
check("stopped", srv.stop(20) == 0)

# the run's start, as a host a day ahead would have written it
day = 24 * 3600 * 1000
con = sqlite3.connect(state, timeout=20)
con.execute("UPDATE runs SET started_at = started_at + ?, finished_at = finished_at + ?", (day, day))
con.commit()
con.close()

srv = Server(cfg, state)
time.sleep(1)
now = int(time.time() * 1000)
r = srv.get("/api/v1/schedules")
nxt = r.json[0]["next_run_at"] if r.status == 200 and r.json else None
check("a future start does not push the schedule a day out", nxt is not None and nxt <= now + 60000 + 5000,
      {"next_run_at": nxt, "now": now})
done = srv.wait_runs_done(30)
check("the schedule runs (the future run is not taken as the last one)",
      done and len(done) == 2 and done[0]["status"] == "success", done)
check("stopped again", srv.stop(20) == 0)
finish()
