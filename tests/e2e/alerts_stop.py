#!/usr/bin/env python3
"""alerts_stop.py: a webhook that accepts the connection and never answers must not hold
up joey serve's SIGTERM: the request in flight ends when serve stops, and the message
stays queued (a failed attempt, retried later). (Before, serve waited for the
request's 30 s timeout: longer than many process managers' grace period, e.g.
Kubernetes' 30 s, after which it is killed.)"""
import json
import os
import socket
import sqlite3
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_lib import TMP, Server, Sim, check, finish, small_config, wait_for  # noqa: E402

ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(16)
conns = []


def accept():
    while True:
        conns.append(ls.accept())  # and never answer


threading.Thread(target=accept, daemon=True).start()
sim = Sim()
root = os.path.join(TMP, "p")
os.makedirs(root)
cfg, db = small_config(root, sim.url, n=20)
os.makedirs(os.path.join(cfg, "alerts"))
with open(os.path.join(cfg, "alerts", "ops.json"), "w") as f:
    json.dump({"class": "Alert", "id": "ops", "type": "webhook", "triggers": {"runFailed": True},
               "options": {"url": "http://127.0.0.1:%d/hang" % ls.getsockname()[1], "secret": "${WH_SECRET}"}}, f)
state = os.path.join(root, "state.db")
srv = Server(cfg, state, env={"BRAZE_KEY": "wrong-key", "WH_SECRET": "whsec-test"})
srv.post("/api/v1/runs", {"destination": "d"})
check("the webhook is being sent to (and hangs)", wait_for(lambda: conns, 30), srv.read_log()[-2000:])
time.sleep(1)
t0 = time.time()
rc = srv.stop(timeout=60)
took = time.time() - t0
check("serve stops within 10 s of SIGTERM while the webhook hangs (%.1f s)" % took, rc == 0 and took < 10,
      srv.read_log()[-2000:])
with sqlite3.connect(state) as c:
    rows = c.execute("SELECT status, attempts, last_error FROM alert_deliveries").fetchall()
check("the message stays queued, to be sent again", len(rows) == 1 and rows[0][0] == "pending"
      and "before joey stopped" in (rows[0][2] or ""), rows)
log = srv.read_log()
check("no sanitizer report", "Sanitizer" not in log and "runtime error:" not in log, log[-3000:])
finish()
