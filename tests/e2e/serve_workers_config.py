#!/usr/bin/env python3
"""serve_workers_config.py: every work item runs with the config its job was queued with
(docs/scaling.md, "One config"), with `joey serve --worker` (host A) and a `joey worker`
(host B) that share a PostgreSQL state store but not their config files:
- a mapping changed through A's API reaches B without SIGHUP: B runs the new job's
  items with the job's config from the store, and Braze never gets the old mapping
  from the new job (the simulator's recorded requests);
- the store holds the config files as written ("${NAME}" references), never the key;
- a job whose config B cannot load (a secret only A has) is refused on B with a
  message saying why, and nothing of it is sent by B;
- a config with a secret written literally in a file is recorded without its text,
  and B refuses it, saying so.
Skipped without JOEY_PG_URL."""
import json
import os
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import (JOEY, PROCS, TMP, Server, Sim, check, finish, pg_state_url, small_config,  # noqa: E402
                       wait_for)

if not os.environ.get("JOEY_PG_URL"):
    print("skipped: no JOEY_PG_URL")
    sys.exit(0)

N = 2400
PARTS = 8
# slow answers: each item takes a while, so both workers get items of every job
sim = Sim("--latency-ms", "60")
os.environ["BRAZE_KEY"] = "test-key"
root_a = os.path.join(TMP, "a")
root_b = os.path.join(TMP, "b")
os.makedirs(root_a)
cfg_a, db = small_config(root_a, sim.url, n=N)
dpath = os.path.join(cfg_a, "destinations", "d.json")
d = json.load(open(dpath))
d["options"] = {"partitions": PARTS}
json.dump(d, open(dpath, "w"), indent=2)
# host B: its own copy of the files (same data through a link)
os.makedirs(root_b)
cfg_b = os.path.join(root_b, "cfg")
shutil.copytree(cfg_a, cfg_b)
os.symlink(db, os.path.join(root_b, "data.db"))
state = pg_state_url()
schema = state.split("schema=")[1]
subprocess.run([JOEY, "state", "migrate", "--config", cfg_a, "--state", state], check=True, capture_output=True)


def sql(q):
    return subprocess.run(["psql", os.environ["JOEY_PG_URL"], "-qAt", "-c", "SET search_path TO %s; %s" % (schema, q)],
                          capture_output=True, text=True, check=True).stdout.strip()


srv = Server(cfg_a, state, args=["--worker", "--lease", "5"], env={"BRAZE_KEY_A": "test-key"})
blog_path = os.path.join(TMP, "worker_b.log")
blog = open(blog_path, "w")
benv = dict(os.environ)
worker = subprocess.Popen([JOEY, "worker", "--config", cfg_b, "--state", state, "--lease", "5"], stdout=blog,
                          stderr=subprocess.STDOUT, env=benv)
PROCS.append(worker)
bpid = str(worker.pid)


def blog_text():
    blog.flush()
    return open(blog_path).read()


def run_job():
    """Ask A for a run of d and wait for its job to end: (job id, status)."""
    before = int(sql("SELECT coalesce(max(id), 0) FROM work_jobs"))
    r = srv.post("/api/v1/runs", {"destination": "d"})
    check("run requested", r.status == 202, r)
    job = wait_for(lambda: int(sql("SELECT coalesce(max(id), 0) FROM work_jobs")) > before and
                   int(sql("SELECT max(id) FROM work_jobs")), 30)
    st = wait_for(lambda: (s := sql("SELECT status FROM work_jobs WHERE id = %d" % job)) != "running" and s, 240, 0.2)
    return job, st


def b_items(job):
    return int(sql("SELECT count(*) FROM work_items WHERE job_id = %d AND worker LIKE '%%:%s:%%'" % (job, bpid)))


def last_seq():
    return sim.get("/_sim/requests?since=0&endpoint=none")["last_seq"]


def track_attrs(since):
    """The attributes of every /users/track request Braze accepted after request number since."""
    reqs = sim.get("/_sim/requests?since=%d&endpoint=track" % since)["requests"]
    return [a for q in reqs if 200 <= q["status"] < 300 for a in q["body"].get("attributes", [])]


# ---- a first sync, both with the same files ----
job1, st1 = run_job()
check("job 1 (same config everywhere) succeeded", st1 == "success", sql("SELECT * FROM work_items"))
gen1 = sql("SELECT config_gen FROM work_jobs WHERE id = %d" % job1)
check("job 1 records its config generation (a SHA-256)", len(gen1) == 64, gen1)
check("and the store has that generation's files", sql(
    "SELECT count(*) FROM config_generations WHERE generation = '%s' AND snapshot IS NOT NULL" % gen1) == "1")
check("worker B ran items of job 1 with its own config", b_items(job1) >= 1 and "job's config" not in blog_text(),
      sql("SELECT part, worker FROM work_items WHERE job_id = %d" % job1))
users = sim.users()
check("Braze has every user with n", len(users) == N and all("n" in u.get("custom_attributes", {}) for u in users.values()))

# ---- the mapping changes through A's API; B is not told ----
cur = srv.get("/api/v1/config/destinations/d").json
cur.pop("file")
new = dict(cur, mapping={"external_id": "user_id", "email": "email", "first_name": "name"})
r = srv.call("PUT", "/api/v1/config/destinations/d", new)
if r.status == 409 and "impact" in (r.json or {}):
    r = srv.call("PUT", "/api/v1/config/destinations/d?confirm=" + r.json["impact"]["token"], new)
check("the mapping changed through A's API (n out, first_name in)", r.status == 200, r)
check("B's files still have the old mapping", '"n": "n"' in open(os.path.join(cfg_b, "destinations", "d.json")).read())
seq = last_seq()
job2, st2 = run_job()
gen2 = sql("SELECT config_gen FROM work_jobs WHERE id = %d" % job2)
check("job 2 succeeded", st2 == "success", sql("SELECT part, worker, status, error FROM work_items WHERE job_id = %d" % job2))
check("job 2 has the new generation", len(gen2) == 64 and gen2 != gen1, (gen1, gen2))
check("worker B ran items of job 2", b_items(job2) >= 1, sql("SELECT part, worker FROM work_items WHERE job_id = %d" % job2))
check("with the job's config from the state store (its log says so)", "with the job's config from the state store" in blog_text(),
      blog_text()[-2000:])
after = track_attrs(seq)
check("Braze got every user of job 2 with first_name, none with the old mapping's n",
      len({a["external_id"] for a in after}) == N and all("first_name" in a and "n" not in a for a in after),
      [a for a in after if "n" in a or "first_name" not in a][:3])
users = sim.users()
check("Braze's users have first_name", all(u.get("first_name") == "User " + k for k, u in users.items()),
      list(users.items())[:2])
snaps = sql("SELECT string_agg(coalesce(snapshot, '') || coalesce(withheld, ''), '') FROM config_generations")
import base64  # noqa: E402
decoded = b"".join(base64.b64decode(s) for s in sql("SELECT snapshot FROM config_generations WHERE snapshot IS NOT NULL").split())
check("the store holds the files with the ${BRAZE_KEY} reference, never the key",
      b"${BRAZE_KEY}" in decoded and b"test-key" not in decoded and "test-key" not in snaps)

# ---- a config B cannot load: a secret only A's environment has ----
apath = os.path.join(cfg_a, "apps", "braze.json")
app = json.load(open(apath))
app["options"]["apiKey"] = "${BRAZE_KEY_A}"
json.dump(app, open(apath, "w"), indent=2)
srv.proc.send_signal(signal.SIGHUP)
check("A reloaded its files", wait_for(lambda: srv.read_log().count("config reloaded") >= 1, 20), srv.read_log()[-1500:])
seq = last_seq()
subprocess.run(["sqlite3", db, "UPDATE users SET name = name || ' x'"], check=True)
job3, st3 = run_job()
items3 = sql("SELECT part, worker, run_status, coalesce(error, '') FROM work_items WHERE job_id = %d" % job3)
b_errs = sql("SELECT string_agg(error, ' | ') FROM work_items WHERE job_id = %d AND worker LIKE '%%:%s:%%'" % (job3, bpid))
check("job 3 failed", st3 == "failed", items3)
check("B refused its items of job 3, naming the generation and what is missing here",
      b_items(job3) >= 1 and "cannot load the job's" in b_errs and "BRAZE_KEY_A" in b_errs, b_errs)
check("no item of job 3 that B had was run with B's config (B's log says so)",
      "cannot load the job's" in blog_text())
after = track_attrs(seq)
rows3 = [r.split("|", 3) for r in items3.splitlines()]
check("every item of job 3 was either refused by B or run by A with success",
      all(("cannot load the job's" in e and r == "failed") if (":%s:" % bpid) in w else r == "success"
          for _, w, r, e in rows3), items3)
check("what Braze got of job 3 came from A's items only, with the job's mapping (first_name with ' x')",
      all(a.get("first_name", "").endswith(" x") and "n" not in a for a in after), after[:3])

# ---- a secret written in a file: recorded without the files ----
app["options"]["apiKey"] = "test-key"
json.dump(app, open(apath, "w"), indent=2)
srv.proc.send_signal(signal.SIGHUP)
check("A reloaded again", wait_for(lambda: srv.read_log().count("config reloaded") >= 2, 20))
job4, st4 = run_job()
gen4 = sql("SELECT config_gen FROM work_jobs WHERE id = %d" % job4)
row = sql("SELECT (snapshot IS NULL)::text || ' ' || withheld FROM config_generations WHERE generation = '%s'" % gen4)
check("the generation with a literal key is recorded without its files, saying why",
      row.startswith("true ") and "apiKey" in row and "never holds secrets" in row, row)
check("the key is nowhere in the store's config generations",
      "test-key" not in sql("SELECT string_agg(coalesce(snapshot, '') || coalesce(withheld, '') || origin, '') FROM config_generations"))
b_errs = sql("SELECT string_agg(error, ' | ') FROM work_items WHERE job_id = %d AND worker LIKE '%%:%s:%%'" % (job4, bpid))
check("B refused its items of job 4: no snapshot of it in the store", b_items(job4) == 0 or "holds no snapshot" in b_errs, b_errs)

# ---- B queues a job with its own (old) files: said, and run with them everywhere ----
seq = last_seq()
jobs = int(sql("SELECT coalesce(max(id), 0) FROM work_jobs"))
q = subprocess.run([JOEY, "run", "--config", cfg_b, "--state", state, "--partitions", "4", "--detach"],
                   capture_output=True, text=True, env=benv)
check("B queues a job with its old files, and is told the store's latest config is another",
      q.returncode == 0 and "most recent config generation is" in q.stderr and "reload this process" in q.stderr,
      q.stderr[-1500:])
job5 = jobs + 1
st5 = wait_for(lambda: (s := sql("SELECT status FROM work_jobs WHERE id = %d" % job5)) not in ("", "running") and s,
               240, 0.2)
check("that job succeeded with B's generation", st5 == "success" and sql(
    "SELECT config_gen FROM work_jobs WHERE id = %d" % job5) == gen1, sql("SELECT part, worker, error FROM work_items "
                                                                        "WHERE job_id = %d" % job5))
after = track_attrs(seq)
check("every item ran with the job's config, also A's: Braze got the old mapping (n, no first_name) for everyone",
      len({a["external_id"] for a in after}) == N and all("n" in a and "first_name" not in a for a in after),
      [a for a in after if "first_name" in a][:3])

srv.stop()
worker.terminate()
worker.wait(60)
blog.close()
logs = srv.read_log() + open(blog_path).read()
check("no sanitizer reports in the logs", "Sanitizer" not in logs and "runtime error" not in logs,
      [line for line in logs.splitlines() if "Sanitizer" in line or "runtime error" in line][:5])
finish()
