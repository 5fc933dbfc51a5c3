#!/usr/bin/env python3
"""serve_audiences.py: the API behind the UI's Audiences and Records pages (docs/api.md
"Audiences", "Records") against the real binary and the Braze simulator.

POST /api/v1/models/{model}/groups/preview: who may call it (editor and admin; not a
viewer, not without CSRF), counts equal to sqlite3's, nothing written, a hostile rule
(SQL in a value, in a property id) is a value or a validation error and never SQL, a
huge limit is capped, a group of another model is refused. GET /api/v1/records/{model}:
search by key and by a unique property (email), by audience, paged, hostile input.
GET /api/v1/records/{model}/{key}: per destination what happens next and why; a record
whose first attempt failed is pending and in its destination's scope (the contradictory
"pending retry" + "outside its group" of issue #16), one outside the group is not; its
failed attempts as history."""
import json
import os
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import (TMP, JOEY, Server, SessionClient, Sim, check, dir_digest, finish, small_config)  # noqa: E402

sim = Sim()
os.environ["BRAZE_KEY"] = "test-key"
N = 50
extra = [
    # the same table as a second model: nothing of it may show through the users model
    {"class": "Model", "id": "accounts", "name": "Accounts", "type": "account"},
    {"class": "Source", "id": "acc_src", "name": "Accounts table", "type": "sqlite-import-table", "appId": "db",
     "modelId": "accounts", "options": {"table": "users"}, "mapping": {"id": "account_id"}},
    {"class": "Property", "id": "account_id", "type": "integer", "unique": True, "sourceId": "acc_src",
     "options": {"column": "id"}},
    {"class": "Property", "id": "secret_n", "type": "integer", "sourceId": "acc_src", "options": {"column": "n"}},
    {"class": "Group", "id": "acc_big", "name": "Big accounts", "modelId": "accounts",
     "rules": [{"propertyId": "secret_n", "op": "gt", "match": 1}]},
    # a destination that sends the group "big" only
    {"class": "Destination", "id": "d_big", "name": "Braze: big n", "type": "braze-export-users", "appId": "braze",
     "modelId": "users", "syncMode": "additive", "collection": "group", "groupId": "big",
     "mapping": {"external_id": "user_id", "email": "email"}},
]
# a model over a view whose first row takes far longer than 10 s (the sort of 10^9
# generated rows): previews and lists of it stop at their time limit
extra += [
    {"class": "Model", "id": "slow", "name": "Slow", "type": "custom"},
    {"class": "Source", "id": "slow_src", "name": "Slow view", "type": "sqlite-import-table", "appId": "db",
     "modelId": "slow", "options": {"table": "slow"}, "mapping": {"id": "slow_id"}},
    {"class": "Property", "id": "slow_id", "type": "integer", "unique": True, "sourceId": "slow_src",
     "options": {"column": "id"}},
    {"class": "Property", "id": "slow_n", "type": "integer", "sourceId": "slow_src", "options": {"column": "n"}},
]
    # a database inside joey serve's data directory (--data-dir), whose tables may be shown
extra.append({"class": "App", "id": "db_in", "name": "In the data directory", "type": "sqlite",
              "options": {"file": "data/in.db"}})
cfg, db = small_config(TMP, sim.url, n=N, extra_objects=extra)
subprocess.run(["sqlite3", db, "CREATE VIEW slow AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
                "WHERE i < 1000000000) SELECT -i AS id, i AS n FROM c"], check=True)
os.makedirs(os.path.join(TMP, "data"))
subprocess.run(["sqlite3", os.path.join(TMP, "data", "in.db"),
                "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, bio TEXT); "
                "INSERT INTO people VALUES (1, 'p1@example.com', 'short'), (2, NULL, printf('%.500c', 'x')); "
                "CREATE TABLE \"odd \"\"name\" (v TEXT); INSERT INTO \"odd \"\"name\" VALUES ('ok');"
                "WITH RECURSIVE s(i) AS (SELECT 3 UNION ALL SELECT i+1 FROM s WHERE i < 120) "
                "INSERT INTO people SELECT i, 'p' || i || '@example.com', 'b' FROM s;"], check=True)
# email is unique here (records are searched by unique properties)
with open(os.path.join(cfg, "properties", "email.json")) as f:
    email = json.load(f)
email["unique"] = True
with open(os.path.join(cfg, "properties", "email.json"), "w") as f:
    json.dump(email, f)
state = os.path.join(TMP, "st", "state.db")
os.makedirs(os.path.dirname(state))


def joey_user(*args, password=None):
    return subprocess.run([JOEY, "user"] + list(args) + ["--config", cfg, "--state", state],
                          input=(password + "\n") if password is not None else None, capture_output=True,
                          text=True, timeout=60)


for name, role in (("ed", "editor"), ("vi", "viewer")):
    r = joey_user("add", name, "--role", role, "--password-stdin", password=name + " long password 1")
    check("joey user add %s" % name, r.returncode == 0, r.stderr)

srv = Server(cfg, state, args=["--data-dir", os.path.join(TMP, "data")])


class Client(SessionClient):
    """A browser-like client of this test's server (serve_lib.SessionClient)."""

    def __init__(self):
        super().__init__(srv)

    def login(self, user):
        return self.call("POST", "/api/v1/session", {"user": user, "password": user + " long password 1"})


def show(r):
    return "HTTP %d %s" % (r.status, r.raw[:1500])


def sql(q):
    return subprocess.run(["sqlite3", db, q], capture_output=True, text=True, check=True).stdout.strip()


PREVIEW = "/api/v1/models/users/groups/preview"
big = {"name": "Big", "rules": [{"propertyId": "n", "op": "gt", "match": 40}]}

# ---- who may preview ----
ed, vi, anon = Client(), Client(), Client()
check("the editor signs in", ed.login("ed").status == 200)
check("the viewer signs in", vi.login("vi").status == 200)
r = anon.call("POST", PREVIEW, {"group": big})
check("preview without signing in: 401", r.status == 401, show(r))
r = vi.call("POST", PREVIEW, {"group": big})
check("preview as a viewer: 403 (it reads record data of an unsaved definition)", r.status == 403, show(r))
r = ed.call("POST", PREVIEW, {"group": big}, csrf=False)
check("preview as the editor without the CSRF token: 403", r.status == 403 and "CSRF" in r.raw, show(r))
r = ed.call("POST", PREVIEW, {"group": big})
check("preview as the editor: 200", r.status == 200, show(r))
r = srv.post(PREVIEW, {"group": big})
check("preview with an admin token: 200", r.status == 200, r)

# ---- counts as sqlite3 counts, samples, nothing written ----
before = dir_digest(cfg)
want = int(sql("SELECT COUNT(*) FROM users WHERE n > 40"))
r = srv.post(PREVIEW, {"group": big, "limit": 3})
check("count equals sqlite3's (n > 40: %d)" % want, r.status == 200 and r.json["count"] == want
      and r.json["records_read"] == N and r.json["complete"] is True, r)
check("three sample members, in key order, with the rule's property",
      [s["key"] for s in r.json["sample"]] == ["41", "42", "43"] and r.json["sample"][0]["properties"]["n"] == 41, r)
check("the object as it would be saved (Grouparoo JSON, no placeholder id)",
      r.json["object"]["class"] == "Group" and r.json["object"]["modelId"] == "users" and "id" not in r.json["object"], r)
anyg = {"name": "Either", "matchType": "any", "rules": [{"propertyId": "n", "op": "lt", "match": 3},
                                                          {"propertyId": "email", "op": "endsWith", "match": "9@example.com"}]}
want = int(sql("SELECT COUNT(*) FROM users WHERE n < 3 OR email LIKE '%9@example.com'"))
r = srv.post(PREVIEW, {"group": anyg})
check("match any: count equals sqlite3's (%d)" % want, r.status == 200 and r.json["count"] == want, r)
r = srv.post(PREVIEW, {"group": {"name": "Changed", "id": "big", "rules": [{"propertyId": "n", "op": "lte", "match": 5}]}})
check("an existing group's unsaved change is counted as changed", r.status == 200 and r.json["count"] == 5
      and r.json["group"] == "big", r)
r = srv.post(PREVIEW, {"group": {"name": "None", "rules": []}})
check("no rules: no members (Grouparoo)", r.status == 200 and r.json["count"] == 0, r)
check("previews write nothing to the config directory", dir_digest(cfg) == before)
r = srv.get("/api/v1/groups?model=users")
check("the saved group is unchanged", r.status == 200 and [g["rules"][0]["operator"] for g in r.json if g["id"] == "big"] == ["gt"], r)

# ---- a huge limit is capped ----
r = srv.post(PREVIEW, {"group": {"name": "All", "rules": [{"propertyId": "n", "op": "exists"}]}, "limit": 10 ** 9})
check("limit 10^9: capped at 50 samples", r.status == 200 and r.json["limit"] == 50 and len(r.json["sample"]) == 50
      and r.json["count"] == N, r)
r = srv.post(PREVIEW, {"group": big, "limit": -1})
check("a negative limit: 400", r.status == 400, r)
r = srv.post(PREVIEW, {"group": big, "limit": "9"})
check("a limit that is not a number: 400", r.status == 400, r)

# ---- hostile rules: values stay values, names must be properties ----
r = srv.post(PREVIEW, {"group": {"name": "x", "rules": [{"propertyId": "name", "op": "eq",
                                                          "match": "x'; DROP TABLE users; --"}]}})
check("SQL in a rule's value is a value: no member, nothing executed", r.status == 200 and r.json["count"] == 0, r)
r = srv.post(PREVIEW, {"group": {"name": "x", "rules": [{"propertyId": "name", "op": "like", "match": "%' OR '1'='1"}]}})
check("SQL in a like pattern is a pattern", r.status == 200 and r.json["count"] == 0, r)
r = srv.post(PREVIEW, {"group": {"name": "x", "rules": [{"propertyId": "n\" OR 1=1 --", "op": "exists"}]}})
check("SQL as a property id: 422 naming the field, not run", r.status == 422
      and any(d.get("field", "").startswith("rules[0].propertyId") for d in r.json["diagnostics"]), r)
check("the table is still there", sql("SELECT COUNT(*) FROM users") == str(N))
r = srv.post(PREVIEW, {"group": {"name": "x", "rules": [{"propertyId": "n", "op": "gt", "match": "many"}]}})
check("a value of the wrong type: 422 with diagnostics", r.status == 422 and r.json["diagnostics"], r)
r = srv.post(PREVIEW, {"group": {"name": "x", "rules": [{"propertyId": "n", "op": "gt", "match": 1}] * 11}})
check("more than 10 rules: 422", r.status == 422, r)
r = srv.post(PREVIEW, {"group": big, "extra": 1})
check("an unknown field: 400", r.status == 400, r)
r = srv.post(PREVIEW, {"group": "n > 40"})
check("group not an object: 400", r.status == 400, r)
r = srv.post(PREVIEW, {"group": {"name": "x", "id": "../../etc/passwd", "rules": []}})
check("an id that is not a safe name: 400, nothing written", r.status == 400 and dir_digest(cfg) == before, r)

# ---- another model's data stays out ----
r = srv.post(PREVIEW, {"group": {"name": "x", "modelId": "accounts", "rules": [{"propertyId": "secret_n", "op": "exists"}]}})
check("a group of another model: 400", r.status == 400 and "another model" in r.json["error"], r)
r = srv.post(PREVIEW, {"group": {"name": "x", "id": "acc_big", "rules": [{"propertyId": "n", "op": "exists"}]}})
check("another model's group id: 400", r.status == 400 and "another model" in r.json["error"], r)
r = srv.post(PREVIEW, {"group": {"name": "x", "rules": [{"propertyId": "secret_n", "op": "exists"}]}})
check("a rule on another model's property: 422 (validation)", r.status == 422, r)
r = srv.post("/api/v1/models/nope/groups/preview", {"group": big})
check("an unknown model: 404", r.status == 404, r)

# ---- records: search, filter, pages ----
r = srv.get("/api/v1/records/users?q=u7@example.com")
check("search by email: that one record", r.status == 200 and [i["key"] for i in r.json["items"]] == ["7"]
      and r.json["items"][0]["properties"]["email"] == "u7@example.com" and "email" in r.json["searched"], r)
r = srv.get("/api/v1/records/users?q=7")
check("search by key", r.status == 200 and [i["key"] for i in r.json["items"]] == ["7"], r)
r = srv.get("/api/v1/records/users?q=u7@example.com&property=user_id")
check("search by the named property only", r.status == 200 and r.json["items"] == [], r)
r = srv.get("/api/v1/records/users?q=User%207&property=name")
check("search by a property that is not unique: 400", r.status == 400, r)
r = srv.get("/api/v1/records/users?q=" + urllib.parse.quote("' OR '1'='1"))
check("SQL in a search is a value: nothing found", r.status == 200 and r.json["items"] == [], r)
r = srv.get("/api/v1/records/users?q=u45@example.com&group=big")
check("search within an audience: found", r.status == 200 and [i["key"] for i in r.json["items"]] == ["45"], r)
r = srv.get("/api/v1/records/users?q=u5@example.com&group=big")
check("search within an audience: not a member", r.status == 200 and r.json["items"] == [], r)
r = srv.get("/api/v1/records/users?limit=4&group=big")
check("an audience's members, page 1", r.status == 200 and [i["key"] for i in r.json["items"]] == ["41", "42", "43", "44"]
      and r.json["next"] == "44", r)
r = srv.get("/api/v1/records/users?limit=4&group=big&after=44")
check("page 2", r.status == 200 and [i["key"] for i in r.json["items"]] == ["45", "46", "47", "48"], r)
r = srv.get("/api/v1/records/users?limit=4&group=big&after=48")
check("the last page", r.status == 200 and [i["key"] for i in r.json["items"]] == ["49", "50"] and r.json["next"] is None, r)
r = srv.get("/api/v1/records/users?limit=100000")
check("a page over 100: 400", r.status == 400, r)
r = srv.get("/api/v1/records/users?after=abc")
check("after that is not a key: 400", r.status == 400, r)
r = srv.get("/api/v1/records/users?group=acc_big")
check("another model's group: 404", r.status == 404, r)
r = srv.get("/api/v1/records/accounts?q=7")
check("the other model's records through its own route only", r.status == 200 and "secret_n" in r.json["items"][0]["properties"]
      and "email" not in r.json["items"][0]["properties"], r)
r = srv.get("/api/v1/records/users?q=7")
check("no other model's property in a users record", "secret_n" not in r.json["items"][0]["properties"], r)

# ---- one record: what each destination holds, what is pending and why ----
sim.post("/_sim/faults", {"action": "row_error", "external_id": "45", "type": "EMAIL_BAD_FORMAT"})
r = srv.post("/api/v1/runs", {"destination": "d_big"})
check("a run of the group destination", r.status == 202, r)
srv.wait_runs_done()
r = srv.get("/api/v1/records/users/45")
d = {x["id"]: x for x in (r.json or {}).get("destinations", [])}
check("a refused first attempt: pending, never confirmed, and in the destination's scope (not \"outside its group\")",
      r.status == 200 and "big" in r.json["groups"] and d["d_big"]["pending"] is True and d["d_big"]["confirmed"] is False
      and d["d_big"]["in_scope"] is True and d["d_big"]["next"] == "retry", r)
check("its failed attempt in the history", r.json["history"] and r.json["history"][0]["destination"] == "d_big", r)
r = srv.get("/api/v1/records/users/46")
d = {x["id"]: x for x in r.json["destinations"]}
check("a sent member: confirmed, up to date", d["d_big"]["confirmed"] is True and d["d_big"]["next"] == "none"
      and d["d_big"]["in_scope"] is True and d["d_big"]["payload"]["attributes"]["email"] == "u46@example.com", r)
check("the destination that never ran: would create it", d["d"]["next"] == "create" and d["d"]["would_send"], r)
r = srv.get("/api/v1/records/users/5")
d = {x["id"]: x for x in r.json["destinations"]}
check("outside the group: not in scope, nothing to do", d["d_big"]["in_scope"] is False and d["d_big"]["next"] == "none"
      and "outside" in d["d_big"]["why"] and d["d_big"]["pending"] is False, r)
sql("UPDATE users SET email = 'changed46@example.com' WHERE id = 46")
r = srv.get("/api/v1/records/users/46")
d = {x["id"]: x for x in r.json["destinations"]}
check("a changed source row: update waits for the next run, with what it will send",
      d["d_big"]["next"] == "update" and d["d_big"]["would_send"]["attributes"]["email"] == "changed46@example.com", r)
r = srv.get("/api/v1/records/users/999")
check("an unknown key: found false", r.status == 200 and r.json["found"] is False, r)
r = srv.get("/api/v1/records/users/u7@example.com")
check("an email where a key goes: 400 pointing at the search", r.status == 400 and "?q=" in r.json["hint"], r)

# ---- time limits: a database that does not answer ----
t0 = time.time()
r = srv.post("/api/v1/models/slow/groups/preview", {"group": {"name": "x", "rules": [{"propertyId": "slow_n", "op": "lt", "match": 0}]}})
took = time.time() - t0
check("a preview whose source gives no row in 10 s: 504 after about 10 s (the statement cancelled)",
      r.status == 504 and 9 <= took < 20, "%r after %.1f s" % (r, took))
t0 = time.time()
r = srv.get("/api/v1/records/slow")
took = time.time() - t0
check("a record list likewise: 504", r.status == 504 and 9 <= took < 20, "%r after %.1f s" % (r, took))
r = srv.get("/api/v1/records/users?limit=1")
check("the server answers as before", r.status == 200 and len(r.json["items"]) == 1, r)

# ---- an app's tables, for the source and property editors ----
r = ed.call("GET", "/api/v1/apps/db_in/tables")
check("the editor lists a database's tables", r.status == 200 and r.json["tables"] == ["odd \"name", "people"], show(r))
r = vi.call("GET", "/api/v1/apps/db_in/tables")
check("a viewer may not read a table's rows: 403", r.status == 403, show(r))
r = srv.get("/api/v1/apps/db_in/tables?table=people&limit=2")
check("a table's columns, first rows and key column", r.status == 200 and r.json["columns"] == ["id", "email", "bio"]
      and r.json["rows"][0] == ["1", "p1@example.com", "short"] and r.json["rows"][1][1] is None
      and r.json["key_guess"] == "id", r)
check("a long value is cut (200 bytes and an ellipsis)", r.json and r.json["rows"][1][2] == "x" * 200 + "\u2026", r)
r = srv.get("/api/v1/apps/db_in/tables?table=people&limit=1000000")
check("a huge limit is capped at 50 rows", r.status == 200 and r.json["limit"] == 50 and len(r.json["rows"]) == 50, r)
r = srv.get("/api/v1/apps/db_in/tables?table=" + urllib.parse.quote('odd "name'))
check("a table name is an identifier, quoted", r.status == 200 and r.json["rows"] == [["ok"]], r)
r = srv.get("/api/v1/apps/db_in/tables?table=" + urllib.parse.quote("people; DROP TABLE people; --"))
check("SQL as a table name: 404 naming it, nothing run", r.status == 404 and "has no table" in r.json["error"], r)
r = srv.get("/api/v1/apps/db_in/tables?table=people&limit=1")
check("the table is still there", r.status == 200 and len(r.json["rows"]) == 1, r)
r = srv.get("/api/v1/apps/db/tables?table=users")
check("a database outside the data directory is never shown: 403", r.status == 403
      and "data directory" in r.json["detail"] and "u1@" not in r.raw, r)
r = srv.get("/api/v1/apps/braze/tables")
check("a Braze app holds no tables: 400", r.status == 400, r)
r = srv.get("/api/v1/apps/nope/tables")
check("an unknown app: 404", r.status == 404, r)

finish()
