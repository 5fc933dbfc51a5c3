#!/usr/bin/env python3
"""serve_concurrent_edits.py: optimistic concurrency of config edits (docs/api.md
"Concurrent edits"). GET /api/v1/config/{class}/{id} and GET /api/v1/files/{path} send
an ETag; a PUT or DELETE with If-Match made to an older version is refused with 412 and
writes nothing, so one editor's save cannot silently overwrite another's. Without
If-Match a write works as before; a write that matches gets the new ETag back."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import TMP, Server, Sim, check, dir_digest, finish, small_config, user_token  # noqa: E402

sim = Sim()
os.environ["BRAZE_KEY"] = "test-key"
cfg, db = small_config(TMP, sim.url, n=3)
state = os.path.join(TMP, "st", "state.db")
os.makedirs(os.path.dirname(state))
srv = Server(cfg, state)


def token(name, role):
    return user_token(state, name, role)


def show(r):
    return "%s %s %s" % (r.status, r.headers.get("ETag"), r.raw[:600])


ann, bob = token("ann", "editor"), token("bob", "editor")
PATH = "/api/v1/config/destinations/d"

# ---- a config object ----
a = srv.get(PATH, token=ann)
b = srv.get(PATH, token=bob)
check("GET sends the object's version (ETag)", a.status == 200 and a.headers.get("ETag", "").startswith('"'), show(a))
check("the same object, the same version", a.headers.get("ETag") == b.headers.get("ETag"), show(b))
va = a.headers["ETag"]

obj = dict(a.json)
obj.pop("file", None)
obj["name"] = "Ann's name"
r = srv.call("PUT", PATH, obj, token=ann, headers={"If-Match": va})
check("ann saves what she loaded (200)", r.status == 200, show(r))
check("her answer carries the new version", r.headers.get("ETag") not in (None, "", va), show(r))
v_ann = r.headers.get("ETag")

before = dir_digest(cfg)
obj_b = dict(b.json)
obj_b.pop("file", None)
obj_b["name"] = "Bob's name"
r = srv.call("PUT", PATH, obj_b, token=bob, headers={"If-Match": va})
check("bob's save made to the older version is refused (412)", r.status == 412, show(r))
check("412 says it changed after he loaded it", "changed after you loaded it" in (r.json or {}).get("error", ""), show(r))
check("412: nothing was written", dir_digest(cfg) == before)
check("ann's name stays", srv.get(PATH, token=ann).json.get("name") == "Ann's name")

r = srv.call("DELETE", PATH, token=bob, headers={"If-Match": va})
check("a delete made to the older version is refused (412)", r.status == 412, show(r))
check("412 delete: nothing was written", dir_digest(cfg) == before)

r = srv.get(PATH, token=bob)
check("reloaded, bob gets ann's version", r.headers.get("ETag") == v_ann, show(r))
obj_b = dict(r.json)
obj_b.pop("file", None)
obj_b["name"] = "Bob's name"
r = srv.call("PUT", PATH, obj_b, token=bob, headers={"If-Match": v_ann})
check("then his save goes through (200)", r.status == 200, show(r))

r = srv.call("PUT", PATH, obj_b, token=bob, headers={"If-Match": "*"})
check("If-Match * takes any version of an object that exists", r.status == 200, show(r))
r = srv.call("PUT", "/api/v1/config/destinations/nope", obj_b, token=bob, headers={"If-Match": v_ann})
check("If-Match on an object that is not there: 412 (deleted since)", r.status == 412 and "deleted" in r.raw, show(r))
obj_b["name"] = "Without a version"
r = srv.call("PUT", PATH, obj_b, token=bob)
check("without If-Match a save works as before (200)", r.status == 200, show(r))

# ---- a config file (the file editor, repair mode) ----
FPATH = "/api/v1/files/destinations%2Fd.json"
f1 = srv.get(FPATH, token=ann)
check("GET of a file sends its version", f1.status == 200 and f1.headers.get("ETag", "").startswith('"'), show(f1))
text = json.loads(f1.json["text"])
text["name"] = "From the file editor"
r = srv.call("PUT", FPATH, {"text": json.dumps(text, indent=2)}, token=ann, headers={"If-Match": f1.headers["ETag"]})
check("a file saved at the version loaded (200)", r.status == 200, show(r))
check("its answer carries the file's new version", r.headers.get("ETag") not in (None, "", f1.headers["ETag"]), show(r))
before = dir_digest(cfg)
text["name"] = "Stale"
r = srv.call("PUT", FPATH, {"text": json.dumps(text, indent=2)}, token=bob, headers={"If-Match": f1.headers["ETag"]})
check("a file saved at an older version is refused (412)", r.status == 412, show(r))
check("412 file: nothing was written", dir_digest(cfg) == before)
# an object write changes its file's version, and the other way round
f2 = srv.get(FPATH, token=ann)
o = srv.get(PATH, token=ann)
obj = dict(o.json)
obj.pop("file", None)
obj["name"] = "Object write"
r = srv.call("PUT", PATH, obj, token=ann, headers={"If-Match": o.headers["ETag"]})
check("an object write (200)", r.status == 200, show(r))
r = srv.call("PUT", FPATH, {"text": f2.json["text"]}, token=bob, headers={"If-Match": f2.headers["ETag"]})
check("then the file saved at its older version is refused (412)", r.status == 412, show(r))

# ---- an app's key: typed in the form it goes to the secrets file, and the object keeps
# its reference; the app's version changes all the same ----
admin, admin2 = token("ada", "admin"), token("al", "admin")
APP = "/api/v1/config/apps/braze"
a1 = srv.get(APP, token=admin)
a2 = srv.get(APP, token=admin2)
check("an app's version", a1.status == 200 and a1.headers.get("ETag") == a2.headers.get("ETag"), show(a1))
app = dict(a1.json)
app.pop("file", None)
app["options"] = dict(app["options"], apiKey="rotated-key-1")
r = srv.call("PUT", APP + "?unverified=true", app, token=admin, headers={"If-Match": a1.headers["ETag"]})
check("ada rotates the key (200)", r.status == 200, show(r))
check("the app's version changed with its key", r.headers.get("ETag") not in (None, "", a1.headers["ETag"]), show(r))
app2 = dict(a2.json)
app2.pop("file", None)
app2["options"] = dict(app2["options"], apiKey="rotated-key-2")
r = srv.call("PUT", APP + "?unverified=true", app2, token=admin2, headers={"If-Match": a2.headers["ETag"]})
check("al's key, saved at the version before ada's, is refused (412)", r.status == 412, show(r))

srv.stop()
finish()
