#!/usr/bin/env python3
"""workers_marks.py: a job of work items reads a model as a single `joey run` does, every
incremental schedule counting (engine/marks.h; docs/config.md "Incremental schedules").

The oracle is the single process: the same random changes (users added and changed in
the primary source, purchases added and changed in a secondary source, some rounds
touching only purchases) go, round after round, through `joey run` (an SQLite state
store, its own simulator) and through `joey run --partitions 4` (a worker job of 4 key
ranges, a PostgreSQL store, another simulator). After every round both simulators hold
the same users with the same attributes, and both stores the same marks; the job read
incrementally (its marks were stored at queue time) and sent as few users as the single
run. A round with a failing item keeps every mark of the job. Skipped without JOEY_PG_URL."""
import json
import os
import random
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import JOEY, TMP, Sim, check, finish, pg_state_url  # noqa: E402

if not os.environ.get("JOEY_PG_URL"):
    print("skipped: no JOEY_PG_URL")
    sys.exit(0)

rnd = random.Random(int(os.environ.get("SEED", "20261207")))
sim_a, sim_b = Sim(), Sim()
db = os.path.join(TMP, "data.db")
cfg = os.path.join(TMP, "cfg")
os.makedirs(cfg)
con = sqlite3.connect(db)
con.executescript("""
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT, updated_at INTEGER);
CREATE TABLE purchases (id INTEGER PRIMARY KEY, user_id INTEGER, amount INTEGER, state TEXT, created_at INTEGER);
""")
con.commit()
objs = [
    {"class": "App", "id": "db", "type": "sqlite", "options": {"file": "data.db"}},
    {"class": "App", "id": "braze", "type": "braze", "options": {"apiKey": "${BRAZE_KEY}", "restEndpoint": "BRAZE_URL"}},
    {"class": "Model", "id": "users", "name": "Users", "type": "profile"},
    {"class": "Source", "id": "users_src", "type": "sqlite-import-table", "appId": "db", "modelId": "users",
     "options": {"table": "users"}, "mapping": {"id": "user_id"}},
    {"class": "Source", "id": "purchases_src", "type": "sqlite-import-table", "appId": "db", "modelId": "users",
     "options": {"table": "purchases"}, "mapping": {"user_id": "user_id"}},
    {"class": "Schedule", "id": "users_schedule", "sourceId": "users_src", "recurring": True,
     "recurringFrequency": 900000, "incremental": True, "options": {"column": "updated_at"}},
    {"class": "Schedule", "id": "purchases_schedule", "sourceId": "purchases_src", "recurring": True,
     "recurringFrequency": 900000, "incremental": True, "options": {"column": "created_at"}},
    {"class": "Property", "id": "user_id", "type": "integer", "unique": True, "sourceId": "users_src",
     "options": {"column": "id"}},
    {"class": "Property", "id": "email", "type": "email", "sourceId": "users_src", "options": {"column": "email"}},
    {"class": "Property", "id": "name", "type": "string", "sourceId": "users_src", "options": {"column": "name"}},
    {"class": "Property", "id": "ltv", "type": "integer", "sourceId": "purchases_src",
     "options": {"column": "amount", "aggregationMethod": "sum"},
     "filters": [{"key": "state", "op": "eq", "match": "ok"}]},
    {"class": "Property", "id": "purchase_count", "type": "integer", "sourceId": "purchases_src",
     "options": {"column": "id", "aggregationMethod": "count"}},
    {"class": "Destination", "id": "sync", "type": "braze-export-users", "appId": "braze", "modelId": "users",
     "syncMode": "sync", "collection": "model",
     "mapping": {"external_id": "user_id", "email": "email", "first_name": "name", "ltv": "ltv",
                 "purchase_count": "purchase_count"}},
]
json.dump(objs, open(os.path.join(cfg, "config.json"), "w"), indent=1)
state_a = os.path.join(TMP, "a", "state.db")
state_b = pg_state_url()
schema = state_b.split("schema=")[1]


def sql_b(q):
    return subprocess.run(["psql", os.environ["JOEY_PG_URL"], "-qAt", "-c", "SET search_path TO %s; %s" % (schema, q)],
                          capture_output=True, text=True, check=True).stdout.strip()


def joey(state, sim, *args):
    env = dict(os.environ, BRAZE_KEY="test-key", GROUPAROO_OPTION__APP__BRAZE_URL=sim.url)
    return subprocess.run([JOEY, "run", "--config", cfg, "--state", state] + list(args), capture_output=True,
                          text=True, env=env)


def marks_a():
    c = sqlite3.connect(state_a)
    return dict(c.execute("SELECT schedule_id, value FROM marks").fetchall())


def marks_b():
    out = sql_b("SELECT schedule_id || '|' || value FROM marks")
    return dict(line.split("|", 1) for line in out.splitlines() if line)


def sent(sim, since):
    r = sim.get("/_sim/requests?since=%d&endpoint=track" % since)["requests"]
    return sorted(a["external_id"] for q in r if 200 <= q["status"] < 300 for a in q["body"].get("attributes", []))


def last(sim):
    return sim.get("/_sim/requests?since=0&endpoint=none")["last_seq"]


clock = [1000]
next_user = [1]
next_purchase = [1]


def tick():
    clock[0] += rnd.randint(1, 3)
    return clock[0]


def change(round_no, secondary_only):
    users = [r[0] for r in con.execute("SELECT id FROM users")]
    if not secondary_only:
        for _ in range(rnd.randint(20, 60) if round_no == 0 else rnd.randint(1, 8)):  # new users, scattered keys
            uid = next_user[0] * 7 + rnd.randint(0, 6)
            next_user[0] += 1
            con.execute("INSERT OR IGNORE INTO users VALUES (?, ?, ?, ?)",
                        (uid, "u%d@example.com" % uid, "User %d" % uid, tick()))
        for uid in rnd.sample(users, min(len(users), rnd.randint(0, 6))):  # users changed
            con.execute("UPDATE users SET name = ?, updated_at = ? WHERE id = ?",
                        ("User %d r%d" % (uid, round_no), tick(), uid))
    users = [r[0] for r in con.execute("SELECT id FROM users")]
    for uid in rnd.sample(users, min(len(users), rnd.randint(1, 8))):  # purchases added (secondary only)
        con.execute("INSERT INTO purchases VALUES (?, ?, ?, ?, ?)",
                    (next_purchase[0], uid, rnd.randint(1, 90), rnd.choice(["ok", "ok", "failed"]), tick()))
        next_purchase[0] += 1
    ps = [r[0] for r in con.execute("SELECT id FROM purchases")]
    for pid in rnd.sample(ps, min(len(ps), rnd.randint(0, 3))):  # purchases changed
        con.execute("UPDATE purchases SET state = CASE state WHEN 'ok' THEN 'failed' ELSE 'ok' END, created_at = ? "
                    "WHERE id = ?", (tick(), pid))
    con.commit()


def truth():
    out = {}
    for uid, email, name in con.execute("SELECT id, email, name FROM users"):
        ltv = con.execute("SELECT coalesce(sum(amount), 0) FROM purchases WHERE user_id = ? AND state = 'ok'",
                          (uid,)).fetchone()[0]
        n = con.execute("SELECT count(*) FROM purchases WHERE user_id = ?", (uid,)).fetchone()[0]
        out[str(uid)] = (email, name, ltv, n)
    return out


def view(sim):
    return {k: (u.get("email"), u.get("first_name"), u.get("custom_attributes", {}).get("ltv"),
                u.get("custom_attributes", {}).get("purchase_count")) for k, u in sim.users().items()}


ROUNDS = 8
for rno in range(ROUNDS):
    change(rno, secondary_only=rno in (2, 5))
    sa, sb = last(sim_a), last(sim_b)
    a = joey(state_a, sim_a)
    b = joey(state_b, sim_b, "--partitions", "4")
    what = "round %d%s" % (rno, " (purchases only)" if rno in (2, 5) else "")
    check("%s: joey run and the worker job succeeded" % what, a.returncode == 0 and b.returncode == 0,
          a.stderr[-1500:] + "\n----\n" + b.stderr[-1500:])
    va, vb = view(sim_a), view(sim_b)
    check("%s: Braze has the same users and attributes from both (%d users)" % (what, len(va)), va == vb,
          [(k, va.get(k), vb.get(k)) for k in sorted(set(va) | set(vb)) if va.get(k) != vb.get(k)][:5])
    check("%s: and they are the source's" % what, va == truth(),
          [(k, va.get(k), v) for k, v in truth().items() if va.get(k) != v][:5])
    check("%s: the marks are equal (%s)" % (what, marks_a()), marks_a() == marks_b() and len(marks_a()) == 2,
          (marks_a(), marks_b()))
    if rno > 0:
        job = sql_b("SELECT marks FROM work_jobs ORDER BY id DESC LIMIT 1")
        check("%s: the job stored every schedule's mark and read incrementally" % what,
              json.loads(job)["full"] is False and set(json.loads(job)["marks"]) == {"users_schedule", "purchases_schedule"},
              job)
        ua, ub = sent(sim_a, sa), sent(sim_b, sb)
        check("%s: the job sent the same users as the single run (%d), not the whole model" % (what, len(set(ua))),
              set(ua) == set(ub) and len(set(ua)) < len(va), (ua[:10], ub[:10]))
    items = sql_b("SELECT count(*) FROM work_items WHERE job_id = (SELECT max(id) FROM work_jobs)")
    check("%s: the job had several work items (%s)" % (what, items), int(items) > 1)

# ---- a failed item keeps every mark of the job ----
before = marks_b()
change(ROUNDS, secondary_only=True)
con.execute("UPDATE users SET updated_at = ?, name = 'x' WHERE id = (SELECT max(id) FROM users)", (tick(),))
con.commit()
bad_env = dict(os.environ, BRAZE_KEY="wrong-key", GROUPAROO_OPTION__APP__BRAZE_URL=sim_b.url)
b = subprocess.run([JOEY, "run", "--config", cfg, "--state", state_b, "--partitions", "4"], capture_output=True,
                   text=True, env=bad_env)
check("a job whose items fail (Braze refuses the key) fails", b.returncode != 0, b.stderr[-800:])
check("and keeps every mark", marks_b() == before, (before, marks_b()))
b = joey(state_b, sim_b, "--partitions", "4")
a = joey(state_a, sim_a)
check("the next job catches up: the same users as the single run, marks equal",
      a.returncode == 0 and b.returncode == 0 and view(sim_a) == view(sim_b) == truth() and marks_a() == marks_b(),
      (b.stderr[-800:], marks_a(), marks_b()))
finish()
