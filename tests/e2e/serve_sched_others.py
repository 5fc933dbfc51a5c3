#!/usr/bin/env python3
"""serve_sched_others.py: a schedule counts the runs other processes started. A `joey
run` from cron (or a second `joey serve` on the same store) syncs the model; `joey
serve`'s frequency schedule is then due a frequency after that run, not after its own
last one. Before, serve knew only its own runs (read once at start), so it synced the
model again right after the other process had, once per interval."""
import os
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import (TMP, JOEY, Server, Sim, check, finish, small_config, wait_for)  # noqa: E402

FREQ = 60  # seconds, the shortest a schedule may have
sim = Sim()
os.environ["BRAZE_KEY"] = "test-key"
schedule = {"class": "Schedule", "id": "often", "name": "Often", "sourceId": "src", "recurring": True,
            "recurringFrequency": FREQ * 1000, "incremental": False, "options": {"column": "id"}}
cfg, db = small_config(TMP, sim.url, n=20, extra_objects=[schedule])
state = os.path.join(TMP, "st", "state.db")
os.makedirs(os.path.dirname(state))


def starts():
    """started_at (s) of every run of destination d, oldest first."""
    con = sqlite3.connect(state, timeout=20)
    try:
        return [r[0] / 1000.0 for r in con.execute(
            "SELECT started_at FROM runs WHERE dest_id = 'd' AND kind = 'run' ORDER BY id")]
    finally:
        con.close()


def cli_run(what):
    out = subprocess.run([JOEY, "run", "--config", cfg, "--state", state], capture_output=True, text=True)
    check(what, out.returncode == 0, out.stderr[-1500:])


# a run 52 s ago (however long the command took): serve's schedule is due 8 s from now
cli_run("a first run from the command line")
t0 = time.time()
con = sqlite3.connect(state)
con.execute("UPDATE runs SET started_at = ?, finished_at = ?", (int((t0 - 52) * 1000), int((t0 - 51) * 1000)))
con.commit()
con.close()
srv = Server(cfg, state)
time.sleep(max(0.0, t0 + 1.5 - time.time()))
check("not due at start (a run 52 s ago)", len(starts()) == 1, starts())

# another process syncs the model before the schedule is due
cli_run("a run from another process")
s = starts()
check("two runs in the history", len(s) == 2, s)
other = s[-1]
time.sleep(max(0.0, t0 + 12 - time.time()))  # serve's own due time (t0 + 8) is past
s = starts()
check("the schedule did not fire right after the other process's run", len(s) == 2,
      [round(x - t0, 1) for x in s])
r = srv.get("/api/v1/schedules")
nxt = r.json[0]["next_run_at"] / 1000.0 if r.status == 200 and r.json and r.json[0]["next_run_at"] else None
check("next run a frequency after the other process's run", nxt is not None and abs(nxt - (other + FREQ)) < 1.5,
      (r.json if r.status == 200 else r, other))
check("stops cleanly", srv.stop(20) == 0)
finish()
