#!/usr/bin/env python3
"""serve_config_batch.py: POST /api/v1/config, several objects in one write (issue #16):
a new model (Model + Source + key and email properties) that no single write could make
valid, written all or nothing; validation across the objects with each diagnostic naming
its object; bad bodies answered 400 naming the object index and field; roles; one audit
entry per object; then `joey validate` and `joey plan` on the written directory."""
import json
import os
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import JOEY, TMP, Server, Sim, check, dir_digest, finish, small_config, user_token  # noqa: E402

sim = Sim()
os.environ["BRAZE_KEY"] = "test-key"
cfg, db = small_config(TMP, sim.url, n=5)
subprocess.run(["sqlite3", db, "CREATE TABLE customers (code TEXT, mail TEXT, city TEXT);"
                "INSERT INTO customers VALUES ('c1','a@example.com','Oslo'),('c2','b@example.com','Rome'),"
                "('c3','c@example.com','Lima');"
                "CREATE TABLE users_few AS SELECT * FROM users WHERE id <= 2;"], check=True)
state = os.path.join(TMP, "st", "state.db")
os.makedirs(os.path.dirname(state))
srv = Server(cfg, state)


def token(name, role):
    return user_token(state, name, role)


def new_model(mid="customers", key_type="string", extra=()):
    return [
        {"class": "Model", "id": mid, "name": "Customers", "type": "profile"},
        {"class": "Source", "id": mid + "_table", "name": "customers", "type": "sqlite-import-table", "appId": "db",
         "modelId": mid, "options": {"table": "customers"}, "mapping": {"code": mid + "_code"}},
        {"class": "Property", "id": mid + "_code", "key": "code", "type": key_type, "unique": True,
         "sourceId": mid + "_table", "options": {"column": "code"}},
        {"class": "Property", "id": mid + "_mail", "key": "email", "type": "email", "unique": True,
         "sourceId": mid + "_table", "options": {"column": "mail"}},
    ] + list(extra)


def show(r):
    return "%s %s" % (r.status, r.raw[:1500])


editor, viewer = token("erin", "editor"), token("vic", "viewer")

# ---- one object alone cannot make a model: the reason for the batch ----
r = srv.post("/api/v1/config/models", new_model()[0], token=editor)
check("a Model alone does not validate (422)", r.status == 422, show(r))

# ---- bad bodies: 400 naming the object index and field; nothing written ----
before = dir_digest(cfg)
bad = [
    ({"objects": {"class": "Model"}}, None, "objects"),
    ({"objects": []}, None, "objects"),
    ({}, None, "objects"),
    ({"objects": new_model(), "extra": 1}, None, None),
    ({"objects": new_model(), "mode": "replace"}, None, "mode"),
    ({"objects": [new_model()[0], 7]}, 1, "objects[1]"),
    ({"objects": [new_model()[0], dict(new_model()[1], **{"class": "Sauce"})]}, 1, "objects[1].class"),
    ({"objects": [new_model()[0], dict(new_model()[1], **{"class": None})]}, 1, "objects[1].class"),
    ({"objects": [{k: v for k, v in new_model()[0].items() if k != "id"}]}, 0, "objects[0].id"),
    ({"objects": new_model() + [new_model()[2]]}, 4, "objects[4].id"),
    ({"objects": [{"class": "App", "id": "x", "type": "sqlite", "options": {"file": "data.db"}}]}, 0,
     "objects[0].class"),
    ({"objects": [dict(new_model()[0], id="../evil")] + new_model()[1:]}, 0, "objects[0].id"),
    ({"objects": [new_model()[0]] * 101}, None, "objects"),
]
for body, index, field in bad:
    r = srv.post("/api/v1/config", body, token=editor)
    j = r.json if r.status == 400 else {}
    check("400 for %s" % json.dumps(body)[:90],
          r.status == 400 and j.get("object") == index and (field is None or j.get("field") == field), show(r))
r = srv.call("POST", "/api/v1/config", raw=b"[1,2]", token=editor)
check("a body that is not an object: 400", r.status == 400, show(r))
hp = srv.url[len("http://"):].split(":")
with socket.create_connection((hp[0], int(hp[1]))) as c:  # announced too big: 413 before the body is sent
    c.sendall(("POST /api/v1/config HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (editor, 2 << 20)).encode())
    c.settimeout(10)
    head = c.recv(200)
check("a body over the limit: 413", head.startswith(b"HTTP/1.1 413"), head)
r = srv.post("/api/v1/config?bogus=1", {"objects": new_model()}, token=editor)
check("an unknown query parameter: 400", r.status == 400, show(r))
check("no bad request changed a file", dir_digest(cfg) == before)

# ---- roles ----
r = srv.post("/api/v1/config", {"objects": new_model()}, token=viewer)
check("a viewer may not write (403)", r.status == 403, show(r))
r = srv.post("/api/v1/config", {"objects": new_model()}, token=False)
check("nobody signed in: 401", r.status == 401, show(r))
check("refused writes changed nothing", dir_digest(cfg) == before)

# ---- validation across the objects: every diagnostic names its object ----
broken = new_model(key_type="bogus")
broken[1]["appId"] = "no_such_app"
r = srv.post("/api/v1/config", {"objects": broken}, token=editor)
diags = r.json.get("diagnostics", []) if r.status == 422 else []
check("an invalid batch: 422 with diagnostics", r.status == 422 and diags, show(r))
check("the diagnostics name the objects (source 1, property 2)",
      any(d.get("object") == 1 and "no_such_app" in d["message"] + (d.get("hint") or "") for d in diags)
      and any(d.get("object") == 2 and d.get("field") == "type" for d in diags), json.dumps(diags)[:2000])
check("an invalid batch changed nothing", dir_digest(cfg) == before)
r = srv.post("/api/v1/config", {"objects": new_model()[:2]}, token=editor)
check("a model with a source but no key property: 422", r.status == 422, show(r))
check("still nothing written", dir_digest(cfg) == before)
r = srv.post("/api/v1/config", {"objects": new_model(), "mode": "update"}, token=editor)
check("mode update of objects that do not exist: 404 naming object 0",
      r.status == 404 and r.json.get("object") == 0, show(r))

# ---- the new model in one write ----
r = srv.post("/api/v1/config", {"objects": new_model(), "mode": "create"}, token=editor)
check("Model + Source + 2 properties: 201", r.status == 201, show(r))
objs = r.json.get("objects", []) if r.status == 201 else []
check("each object answered as created, with its file",
      [(o["class"], o["id"], o["op"], o["file"]) for o in objs] ==
      [("Model", "customers", "created", "models/customers.json"),
       ("Source", "customers_table", "created", "sources/customers_table.json"),
       ("Property", "customers_code", "created", "properties/customers_code.json"),
       ("Property", "customers_mail", "created", "properties/customers_mail.json")], show(r))
r = srv.get("/api/v1/models/customers")
check("the server has the new model at once", r.status == 200, show(r))
r = srv.post("/api/v1/config", {"objects": new_model(), "mode": "create"}, token=editor)
check("creating it again: 409 naming object 0", r.status == 409 and r.json.get("object") == 0, show(r))

# ---- updates in the same write; upsert creates what is missing ----
upd = new_model()
upd[0]["name"] = "Customers (all)"
upd[3]["type"] = "string"
extra = {"class": "Property", "id": "customers_city", "key": "city", "type": "string",
         "sourceId": "customers_table", "options": {"column": "city"}}
r = srv.post("/api/v1/config", {"objects": upd + [extra]}, token=editor)
check("an upsert of 4 updates and 1 create: 201",
      r.status == 201 and [o["op"] for o in r.json["objects"]] == ["updated"] * 4 + ["created"], show(r))
with open(os.path.join(cfg, "models", "customers.json")) as f:
    check("the update is on disk", json.load(f)["name"] == "Customers (all)")
r = srv.post("/api/v1/config", {"objects": [dict(upd[0], name="Customers again")], "mode": "update"}, token=editor)
check("mode update of one object: 200", r.status == 200 and r.json["objects"][0]["op"] == "updated", show(r))

# ---- the audit log: one entry per object ----
r = srv.get("/api/v1/audit?limit=50")
acts = [(e["action"], e["class"], e["object"]) for e in r.json.get("entries", [])] if r.status == 200 else []
check("one audit entry per object created",
      all(("config.create", c, o) in acts for c, o in (("models", "customers"), ("sources", "customers_table"),
                                                         ("properties", "customers_code"),
                                                         ("properties", "customers_mail"),
                                                         ("properties", "customers_city"))), acts)
check("and per object updated", acts.count(("config.update", "models", "customers")) == 2, acts)

# ---- a destructive change in a batch needs its confirm token (409 as the single write) ----
r = srv.post("/api/v1/runs", {"destination": "d"})
srv.wait_runs_done()
before = dir_digest(cfg)
shrink = {"class": "Source", "id": "src", "name": "Users table", "type": "sqlite-import-table", "appId": "db",
          "modelId": "users", "options": {"table": "users_few"}, "mapping": {"id": "user_id"}}
name_prop = {"class": "Property", "id": "name", "type": "string", "sourceId": "src", "options": {"column": "name"}}
batch = {"objects": [dict(upd[0], name="Customers b"), shrink, name_prop]}
r = srv.post("/api/v1/config", batch, token=editor)
imp = r.json.get("impact") if r.status == 409 else None
check("a batch whose source change would delete users: 409 naming object 1 with the impact",
      imp is not None and r.json.get("object") == 1 and imp.get("token"), show(r))
check("the refused batch changed nothing (not even its harmless object)", dir_digest(cfg) == before)
if imp:
    r = srv.post("/api/v1/config?confirm=" + imp["token"], batch, token=editor)
    check("with ?confirm=<token>: written (one token for the model's impact, not one per object of it)",
          r.status == 200, show(r))
    r = srv.get("/api/v1/audit?limit=20")
    check("the confirmation is audited",
          any(e["action"] == "config.confirm_destructive" and e["object"] == "src" for e in r.json["entries"]), r.raw[:500])

# ---- a destination for the new model, so a plan has something to say ----
dest = {"class": "Destination", "id": "customers_braze", "name": "Customers in Braze", "type": "braze-export-users",
        "appId": "braze", "modelId": "customers", "syncMode": "sync", "collection": "model",
        "mapping": {"external_id": "customers_code", "email": "customers_mail"}}
r = srv.post("/api/v1/config", {"objects": [dest]}, token=editor)
check("a destination for the new model: 201", r.status == 201, show(r))
rc = srv.stop()
log = srv.read_log()
check("joey serve stops cleanly, no sanitizer report", rc == 0 and "Sanitizer" not in log and "runtime error" not in log,
      log[-3000:])
# ---- the written directory is valid for the CLI, and plans ----
p = subprocess.run([JOEY, "validate", "--config", cfg], capture_output=True, text=True)
check("joey validate passes on the written directory", p.returncode == 0, p.stdout + p.stderr)
p = subprocess.run([JOEY, "plan", "--config", cfg, "--state", state, "--destination", "customers_braze", "--json"],
                   capture_output=True, text=True, env=dict(os.environ))
check("joey plan works on the new model", p.returncode == 0 and json.loads(p.stdout)["destinations"][0]["counts"]["create"] == 3,
      p.stdout[:1500] + p.stderr[:1500])
finish()
