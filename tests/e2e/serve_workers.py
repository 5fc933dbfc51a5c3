#!/usr/bin/env python3
"""serve_workers.py: `joey serve --worker` with a second `joey worker` (docs/scaling.md),
what the API and the UI's live run panel see of a run the workers execute as a job of
key-range work items, and the mass-delete guard on such a job (issue #16):
- a job's run row moves while the items run: its counts (requests, throttled 429s,
  created) and records_read grow during the job, within each item too (the workers
  write their items' counts as they go), and it keeps its summary at the end;
- a job whose ranges' guards held its deletes is shown held with the job's numbers
  (every range's held deletes against the whole destination), not its first range's;
- a viewer cannot approve it (403); an editor can: the approval is queued as a forced
  job for the workers (not a run of the serve process alone), it deletes the users,
  and is audited as run.approve.
Skipped without JOEY_PG_URL."""
import json
import os
import signal
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import (JOEY, PROCS, TMP, Server, Sim, check, finish, pg_state_url, small_config,  # noqa: E402
                       wait_for)

if not os.environ.get("JOEY_PG_URL"):
    print("skipped: no JOEY_PG_URL")
    sys.exit(0)

N = 3000
PARTS = 4
# Braze allows 4 /users/track requests a second: the job takes a while and meets 429s
sim = Sim("--rate", "track=4/1")
os.environ["BRAZE_KEY"] = "test-key"
cfg, db = small_config(TMP, sim.url, n=N)
dpath = os.path.join(cfg, "destinations", "d.json")
d = json.load(open(dpath))
d["options"] = {"partitions": PARTS}
json.dump(d, open(dpath, "w"), indent=2)
state = pg_state_url()
schema = state.split("schema=")[1]
subprocess.run([JOEY, "state", "migrate", "--config", cfg, "--state", state], check=True, capture_output=True)


def sql(q):
    return subprocess.run(["psql", os.environ["JOEY_PG_URL"], "-qAt", "-c", "SET search_path TO %s; %s" % (schema, q)],
                          capture_output=True, text=True, check=True).stdout.strip()


srv = Server(cfg, state, args=["--worker", "--lease", "5"])
wlog = open(os.path.join(TMP, "worker.log"), "w")
worker = subprocess.Popen([JOEY, "worker", "--config", cfg, "--state", state, "--lease", "5"], stdout=wlog,
                          stderr=subprocess.STDOUT)
PROCS.append(worker)


def last_id():
    return max([i["id"] or 0 for i in srv.get("/api/v1/runs?destination=d&limit=5").json["items"]] + [0])


def follow(body, token=True, prev=None, path="/api/v1/runs"):
    """Ask for a run (POST path with body) and follow it until it ends: (the answer, the
    finished run, its live snapshots)."""
    prev = last_id() if prev is None else prev
    r = srv.post(path, body, token=token)
    seen = []

    def done():
        items = srv.get("/api/v1/runs?destination=d&limit=5").json["items"]
        for it in items:
            if it["status"] in ("queued", "running"):
                seen.append(it)
        if items and not any(i["status"] in ("queued", "running") for i in items) and items[0]["id"] > prev:
            return items[0]
        return None
    got = wait_for(done, 240, 0.1)
    if got is None:
        print(srv.read_log()[-2500:]); print(sql("SELECT * FROM work_jobs"))
        print("  not finished; last lists:", seen[-2:], srv.get("/api/v1/runs?destination=d&limit=5").raw[:1500])
    return r, got, seen


# ---- a first sync by the workers: the live counts move, the summary stays ----
jobs0 = int(sql("SELECT count(*) FROM work_jobs"))
r, run, live = follow({"destination": "d"})
check("run requested", r.status == 202 and r.json["started"] == ["d"], r)
check("the run finished as a success", run and run["status"] == "success" and run["counts"]["created"] == N, run)
check("it ran as a job of the workers: one job, %d work items, one run row" % PARTS,
      int(sql("SELECT count(*) FROM work_jobs")) == jobs0 + 1
      and sql("SELECT count(*) || ' ' || count(DISTINCT run_id) FROM work_items WHERE job_id = (SELECT max(id) FROM work_jobs)")
      == "%d 1" % PARTS, sql("SELECT job_id, part, run_id, status FROM work_items"))
ids = {x["id"] for x in live if x["id"]}
check("while it ran the list showed it with its run row's id", ids == {run["id"]}, [x["id"] for x in live][:20])
final = run["counts"]
check("the live counts moved during the job: requests, created and records read grew before the end",
      any(0 < x["counts"]["requests"] < final["requests"] for x in live)
      and any(0 < x["counts"]["created"] < N for x in live)
      and any(0 < (x["records_read"] or 0) < N for x in live),
      [(x["counts"]["requests"], x["counts"]["created"], x["records_read"]) for x in live][::10])
check("and they moved while the items ran, not only when one finished (the workers write their items' counts)",
      any(x["counts"]["created"] % (N // PARTS) for x in live), sorted({x["counts"]["created"] for x in live}))
check("the live counts never went down", all(
    a["counts"]["requests"] <= b["counts"]["requests"] and a["counts"]["created"] <= b["counts"]["created"]
    for a, b in zip([x for x in live if x["id"]], [x for x in live if x["id"]][1:])))
check("Braze's 429s are counted (throttled) and none failed a row",
      final["throttled"] > 0 and final["failed"] == 0 and run["failed_rows"] == 0, final)
check("the finished run keeps its summary: counts, trigger, records read (the percent and ETA of the next run)",
      run["trigger"] == "api" and run["records_read"] == N and final["requests"] >= N // 75, run)
again = srv.get("/api/v1/runs/%d" % run["id"]).json
check("and GET /runs/{id} says the same", again["counts"] == final and again["records_read"] == N, again)

# ---- accounts: a viewer and an editor with API tokens ----
def session_token(name, role):
    r = srv.post("/api/v1/users", {"name": name, "role": role, "password": name + " password 1"})
    check("admin adds %s (%s)" % (name, role), r.status == 201, r)
    req = urllib.request.Request(srv.url + "/api/v1/session", method="POST",
                                 data=json.dumps({"user": name, "password": name + " password 1"}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        cookie = resp.headers["Set-Cookie"].split(";")[0]
        csrf = json.load(resp)["csrf"]
    r = srv.post("/api/v1/tokens", {"label": "e2e"}, token=False, headers={"Cookie": cookie, "X-CSRF-Token": csrf})
    check("%s makes an API token" % name, r.status == 201 and r.json["role"] == role, r)
    return r.json["token"]


viewer, editor = session_token("vic", "viewer"), session_token("erin", "editor")

# ---- nobody is sent any more: the ranges' guards hold the job ----
d = srv.get("/api/v1/config/destinations/d").json
d.pop("file")
none = dict(d, collection="none")
r = srv.call("PUT", "/api/v1/config/destinations/d", none)
r = srv.call("PUT", "/api/v1/config/destinations/d?confirm=" + r.json["impact"]["token"], none)
check("the destination sends nobody now (confirmed)", r.status == 200, r)
# the other worker reads the changed files on SIGHUP (its items of the serve's jobs would run
# with the job's config anyway, docs/scaling.md "One config"; this keeps its own config current)
worker.send_signal(signal.SIGHUP)
check("the other worker reloaded the config", wait_for(lambda: "config reloaded" in open(os.path.join(TMP, "worker.log")).read(), 20),
      open(os.path.join(TMP, "worker.log")).read()[-1500:])
jobs1 = int(sql("SELECT count(*) FROM work_jobs"))
r, held, _ = follow({"destination": "d"}, token=editor)
check("the job was queued for the workers", int(sql("SELECT count(*) FROM work_jobs")) == jobs1 + 1)
h = (held or {}).get("held") or {}
check("the guard held the job; held counts the whole job, not one key range",
      held and held["status"] == "failed" and h.get("action") == "delete" and h.get("count") == N
      and h.get("of") == N and h.get("percent") == 100.0 and h.get("approvers") == ["admin", "editor"], held)
check("every range held its deletes back, and says so",
      sql("SELECT count(*) FROM work_items WHERE job_id = (SELECT max(id) FROM work_jobs) AND deletes_held > 0")
      == str(PARTS) and "%d of %d key ranges" % (PARTS, PARTS) in held["error"], held["error"])
check("nothing was deleted", held["counts"]["deleted"] == 0 and len(sim.users()) == N)

r = srv.post("/api/v1/runs/%d/approve" % held["id"], token=viewer)
check("a viewer cannot approve (403)", r.status == 403, r)
check("nothing was queued by the viewer", int(sql("SELECT count(*) FROM work_jobs")) == jobs1 + 1)
x, done, _ = follow(None, token=editor, path="/api/v1/runs/%d/approve" % held["id"])
check("an editor approves: 202, the destination starts (or is queued while the follower sees the held job end)",
      x.status == 202 and x.json["started"] + x.json["queued"] == ["d"], x)
check("the approval ran as a forced job of the workers",
      sql("SELECT count(*) || ' ' || bool_and(force) FROM work_jobs WHERE id > %d" % (jobs1 + 1)) == "1 true",
      sql("SELECT id, force, status FROM work_jobs"))
check("the approved job deleted the users", done and done["status"] == "success" and done["counts"]["deleted"] == N
      and done["held"] is None, done)
check("Braze no longer has them", wait_for(lambda: len(sim.users()) == 0, 30), len(sim.users()))
a = srv.get("/api/v1/audit?limit=20").json["entries"]
ap = [e for e in a if e["action"] == "run.approve"]
check("the approval is audited as run.approve, by the editor, with what the guard held",
      len(ap) == 1 and ap[0]["object"] == "d" and ap[0]["actor"] == "erin" and ap[0]["after"]["approved_run"] == held["id"]
      and ap[0]["after"]["held"].startswith("refusing to delete %d of %d" % (N, N)), ap)
x = srv.post("/api/v1/runs/%d/approve" % held["id"], token=editor)
check("the held run cannot be approved twice (a newer run exists)", x.status == 409, x)

srv.stop()
worker.terminate()
worker.wait(60)
wlog.close()
logs = srv.read_log() + open(os.path.join(TMP, "worker.log")).read()
check("no sanitizer reports in the logs", "Sanitizer" not in logs and "runtime error" not in logs,
      [line for line in logs.splitlines() if "Sanitizer" in line or "runtime error" in line][:5])
finish()
