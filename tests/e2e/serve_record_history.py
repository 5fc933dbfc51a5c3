#!/usr/bin/env python3
"""serve_record_history.py: GET /api/v1/records/{model}/{key}'s history (docs/api.md
"Audiences and records") against the real binary and the Braze simulator.

One record (its key has quotes and non-ASCII letters: bound, never spliced into SQL) is
created, updated twice, refused once by Braze, sent again and then leaves its
destinations' group (a delete), through four destinations of one model:
  d_log     a sync log in an SQLite file: the history shows every step, in order
  d_plain   no sync log: what the state store knows (last confirmed send in its run,
            the failed attempt, the pending retry)
  d_bad     a sync log app whose file is not a database: a note, never a 500; the rows
            waiting in the state store's outbox are shown
  d_pgdown  a sync log on a PostgreSQL server that is not there: a note, quickly
"""
import json
import os
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import TMP, Server, Sim, check, finish  # noqa: E402

sim = Sim()
os.environ["BRAZE_KEY"] = "test-key"
K = "o'brien \"ü\" 名"          # the record followed
OTHER = "x' OR '1'='1"          # a key that must not match K's rows
cfg = os.path.join(TMP, "cfg")
db = os.path.join(TMP, "data.db")
subprocess.run(["sqlite3", db, "CREATE TABLE people (pid TEXT PRIMARY KEY, email TEXT, n INTEGER);"
                "INSERT INTO people VALUES ('%s', 'k@example.com', 50), ('%s', 'o@example.com', 60), "
                "('plain', 'p@example.com', 70);" % (K.replace("'", "''"), OTHER.replace("'", "''"))], check=True)
with open(os.path.join(TMP, "notadb.db"), "w") as f:
    f.write("this is not an SQLite database, it is text " * 200)


def dest(i, log=None):
    d = {"class": "Destination", "id": i, "name": "Braze " + i, "type": "braze-export-users", "appId": "braze",
         "modelId": "people", "syncMode": "sync", "collection": "group", "groupId": "big",
         "mapping": {"external_id": "pid", "email": "email", "n": "n"}}
    # one record of three leaves: past the mass-delete guard's default
    d["options"] = {"maxDeletePercent": 100}
    if log:
        d["options"]["syncLogAppId"] = log
    return d


objs = [
    {"class": "App", "id": "db", "name": "Warehouse", "type": "sqlite", "options": {"file": "data.db"}},
    {"class": "App", "id": "log", "name": "Log", "type": "sqlite", "options": {"file": "log.db"}},
    {"class": "App", "id": "badlog", "name": "Broken log", "type": "sqlite", "options": {"file": "notadb.db"}},
    {"class": "App", "id": "pglog", "name": "Gone log", "type": "postgres",
     "options": {"host": "127.0.0.1", "port": 1, "database": "nothing", "user": "nobody"}},
    {"class": "App", "id": "braze", "name": "Braze", "type": "braze",
     "options": {"apiKey": "${BRAZE_KEY}", "restEndpoint": sim.url}},
    {"class": "Model", "id": "people", "name": "People", "type": "profile"},
    {"class": "Source", "id": "src", "name": "People table", "type": "sqlite-import-table", "appId": "db",
     "modelId": "people", "options": {"table": "people"}, "mapping": {"pid": "pid"}},
    {"class": "Property", "id": "pid", "type": "string", "unique": True, "sourceId": "src",
     "options": {"column": "pid"}},
    {"class": "Property", "id": "email", "type": "email", "sourceId": "src", "options": {"column": "email"}},
    {"class": "Property", "id": "n", "type": "integer", "sourceId": "src", "options": {"column": "n"}},
    {"class": "Group", "id": "big", "name": "Big n", "modelId": "people",
     "rules": [{"propertyId": "n", "op": "gt", "match": 40}]},
    dest("d_log", "log"), dest("d_plain"), dest("d_bad", "badlog"), dest("d_pgdown", "pglog"),
]
for o in objs:
    sub = os.path.join(cfg, {"App": "apps", "Model": "models", "Source": "sources", "Property": "properties",
                             "Group": "groups", "Destination": "destinations"}[o["class"]])
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, o["id"] + ".json"), "w") as f:
        json.dump(o, f, indent=2)
state = os.path.join(TMP, "st", "state.db")
os.makedirs(os.path.dirname(state))
srv = Server(cfg, state)
DESTS = ("d_log", "d_plain", "d_bad", "d_pgdown")
PATH = "/api/v1/records/people/" + urllib.parse.quote(K, safe="")


def sql(q):
    subprocess.run(["sqlite3", db, q], check=True)


def run_all():
    """One run of every destination, one after the other; their ids."""
    ids = []
    for d in DESTS:
        r = srv.post("/api/v1/runs", {"destination": d})
        check("a run of %s starts" % d, r.status == 202, r)
        srv.wait_runs_done()
    runs = srv.get("/api/v1/runs?limit=100").json["items"]
    for d in DESTS:
        ids.append(max(x["id"] for x in runs if x["destination"] == d))
    return dict(zip(DESTS, ids))


def record():
    t0 = time.time()
    r = srv.get(PATH)
    took = time.time() - t0
    check("the record page answers 200", r.status == 200, r)
    return r.json, took


def hist(rec, d):
    return [x for x in rec["history"] if x["destination"] == d]


def view(rec, d):
    return next(x for x in rec["destinations"] if x["id"] == d)


Kq = K.replace("'", "''")
runs = [run_all()]                                   # 1: created
rec, _ = record()
h = hist(rec, "d_plain")
check("no sync log: the confirmed send in its run, from the state store",
      len(h) == 1 and h[0]["what"] == "sent" and h[0]["run_id"] == runs[0]["d_plain"] and h[0]["source"] == "state"
      and h[0]["trigger"] == "api", rec["history"])
check("no sync log: the view says so", view(rec, "d_plain")["sync_log"] is None, view(rec, "d_plain"))
sql("UPDATE people SET email = 'k2@example.com' WHERE pid = '%s'" % Kq)
runs.append(run_all())                               # 2: updated (email)
sql("UPDATE people SET n = 55 WHERE pid = '%s'" % Kq)
runs.append(run_all())                               # 3: updated (n)
rec, _ = record()
h = hist(rec, "d_plain")
check("no sync log: the last send is the one of run 3", h and h[0]["what"] == "sent"
      and h[0]["run_id"] == runs[2]["d_plain"], h)
sim.post("/_sim/faults", {"action": "row_error", "external_id": K, "type": "EMAIL_BAD_FORMAT"})
sql("UPDATE people SET email = 'k3@example.com' WHERE pid = '%s'" % Kq)
runs.append(run_all())                               # 4: failed
rec, _ = record()
h = hist(rec, "d_plain")
check("no sync log: the pending retry, the failed attempt and the last send, newest first",
      [x["what"] for x in h] == ["pending", "failed", "sent"] and h[1]["run_id"] == runs[3]["d_plain"]
      and h[1]["attempts"] == 1 and h[1]["id"] and h[1]["error"] and h[2]["run_id"] == runs[2]["d_plain"], h)
check("the failed attempt keeps the old fields", all(k in h[1] for k in ("id", "run_id", "destination", "error",
                                                                          "attempts", "at")), h)
sim.post("/_sim/faults", {"action": "clear_row_error", "external_id": K})
runs.append(run_all())                               # 5: sent again (updated)
sql("UPDATE people SET n = 1 WHERE pid = '%s'" % Kq)
runs.append(run_all())                               # 6: left the group: deleted
rec, took = record()

h = hist(rec, "d_log")
want = ["deleted", "updated", "failed", "updated", "updated", "created"]
check("with a sync log: every step, newest first", [x["what"] for x in h] == want, h)
check("with a sync log: each in its run", [x["run_id"] for x in h] == [runs[i]["d_log"] for i in (5, 4, 3, 2, 1, 0)], h)
check("with a sync log: from the log, with the run's trigger", all(x["source"] == "sync_log" and x["trigger"] == "api"
                                                                    for x in h), h)
check("with a sync log: the changed fields", h and h[3]["changed"] == ["n"] and "n" in h[3]["detail"]
      and h[4]["changed"] == ["email"], h)
check("with a sync log: the failure's message", h and "EMAIL_BAD_FORMAT" in (h[2]["detail"] or "")
      and h[2]["attempts"] == 1, h)
check("with a sync log: times in order", [x["at"] for x in h] == sorted([x["at"] for x in h], reverse=True), h)
check("with a sync log: the view says it was read", view(rec, "d_log")["sync_log"]["read"] is True
      and view(rec, "d_log")["sync_log"]["error"] is None, view(rec, "d_log"))

h = hist(rec, "d_plain")
check("no sync log after the delete: the failed attempt is what the store still knows",
      [x["what"] for x in h] == ["failed"] and h[0]["source"] == "state", h)

v = view(rec, "d_bad")["sync_log"]
check("a log file that is not a database: a note, not a 500", v["read"] is False and "notadb.db" in v["error"], v)
h = hist(rec, "d_bad")
check("its rows still in the outbox are shown, marked waiting",
      [x["what"] for x in h] == want and all(x.get("waiting") for x in h), h)
v = view(rec, "d_pgdown")["sync_log"]
check("a log server that is not there: a note", v["read"] is False and "PostgreSQL" in v["error"], v)
check("the page does not wait long for it", took < 8, "%.1f s" % took)
print("the record page (4 destinations: a log read, a broken log file, a log server that is not there) took %.2f s" % took)

r = srv.get("/api/v1/records/people/" + urllib.parse.quote(OTHER, safe=""))
h = [x for x in r.json["history"] if x["destination"] == "d_log"]
check("a key that is SQL is a value: its own history, none of K's rows", r.status == 200
      and [x["what"] for x in h] == ["created"], h)
r = srv.get("/api/v1/records/people/nobody")
check("a key with no history: empty", r.status == 200 and r.json["history"] == [], r)

srv.stop()
finish()
