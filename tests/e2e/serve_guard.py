#!/usr/bin/env python3
"""serve_guard.py: what a change through `joey serve`'s API may not do (issue #14,
src/config/guard.h), against the real binary and two Braze simulators, one playing
an attacker's host:

- a secret reference in a non-secret option ("table": "${BRAZE_KEY}") is refused, and
  no answer (the write's, the plan's) ever holds the key;
- the Braze key cannot be redirected: a new restEndpoint needs the key again, and must
  be Braze's or one the operator allowed (JOEY_ALLOW_ENDPOINTS);
- a CSV app set through the API reads only files in the data directory (default
  data/ in the project root), and the columns of a file outside it are never listed;
- the config file editor (PUT /api/v1/files/...) is held to the same rules, decided on
  the file as the loader parses it: an editor can neither add an App or an Alert to a
  file however its "class" is spelled, nor read a file holding one; an admin's App
  changes go through the same guards; the secrets file is never a config file, also
  when the state store lies inside the config directory."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import TMP, Server, SessionClient, Sim, check, dir_digest, finish, small_config  # noqa: E402

KEY = "test-key"
sim = Sim()
evil = Sim()  # the attacker's host: must never see a request
os.environ["BRAZE_KEY"] = KEY
# the project root is TMP: config TMP/cfg, data directory TMP/data, a file elsewhere
data = os.path.join(TMP, "data")
outside = os.path.join(TMP, "outside")
os.makedirs(data)
os.makedirs(outside)
with open(os.path.join(data, "people.csv"), "w") as f:
    f.write("id,email\n1,a@example.com\n2,b@example.com\n")
with open(os.path.join(data, "people2.csv"), "w") as f:
    f.write("id,email\n3,c@example.com\n")
with open(os.path.join(outside, "private.csv"), "w") as f:
    f.write("SECRET-HEADER-4711,other\n1,2\n")
os.symlink(os.path.join(outside, "private.csv"), os.path.join(data, "link.csv"))
with open(os.path.join(data, ".hidden.csv"), "w") as f:
    f.write("id,email\n1,x@example.com\n")


def model(mid, app, path, column):
    """A CSV app (written by the operator), a model reading it and a destination."""
    return [
        {"class": "App", "id": app, "name": app, "type": "csv", "options": {"file": path}},
        {"class": "Model", "id": mid, "name": mid, "type": "profile"},
        {"class": "Source", "id": mid + "_src", "type": "csv-import-table", "appId": app, "modelId": mid,
         "mapping": {column: mid + "_id"}},
        {"class": "Property", "id": mid + "_id", "type": "string", "unique": True, "sourceId": mid + "_src",
         "options": {"column": column}},
        {"class": "Destination", "id": mid + "_d", "type": "braze-export-users", "appId": "braze",
         "modelId": mid, "syncMode": "sync", "collection": "model", "mapping": {"external_id": mid + "_id"}},
    ]


extra = (model("people", "files", "data/people.csv", "id")
         + model("inside", "files_in", "data/people.csv", "no_such_col")
         + model("ext", "files_ext", os.path.join(outside, "private.csv"), "no_such_col"))
cfg, _ = small_config(TMP, sim.url, n=5, extra_objects=extra)
state = os.path.join(TMP, "st", "state.db")
os.makedirs(os.path.dirname(state))
# the operator allows the simulator's endpoint only, not the attacker's
srv = Server(cfg, state, env={"JOEY_ALLOW_ENDPOINTS": sim.url})
answers = []  # every answer body, to grep for the key


def call(method, path, body=None):
    r = srv.call(method, path, body)
    answers.append(r.raw)
    return r


def get_obj(cls, oid):
    o = call("GET", "/api/v1/config/%s/%s" % (cls, oid)).json
    o.pop("file", None)
    return o


r = call("GET", "/api/v1/status")
check("the config loads", r.status == 200 and r.json["config_error"] is None, r)

# ---- 1. "${NAME}" only in secret options ----
before = dir_digest(cfg)
src = get_obj("sources", "src")
src["options"]["table"] = "${BRAZE_KEY}"
r = call("PUT", "/api/v1/config/sources/src", src)
check("a reference in a table is refused (422), nothing written",
      r.status == 422 and dir_digest(cfg) == before
      and any('option \\"table\\" is not a secret' in json.dumps(d) for d in r.json["diagnostics"]), r)
r = call("POST", "/api/v1/plan", {"destination": "d"})
check("the plan still reads the real table", r.status == 200, r)
src["options"]["table"] = "${PATH}"
r = call("PUT", "/api/v1/config/sources/src", src)
check("${PATH} in a table is refused too", r.status == 422 and os.environ["PATH"] not in r.raw, r)

# ---- 2. the Braze key stays with its host ----
app = get_obj("apps", "braze")
check("the stored key is a reference", app["options"]["apiKey"] == "${BRAZE_KEY}", app)
moved = json.loads(json.dumps(app))
moved["options"]["restEndpoint"] = evil.url
r = call("PUT", "/api/v1/config/apps/braze", moved)
check("new endpoint with the stored key: 400, the key must be sent again",
      r.status == 400 and "must be sent again" in r.json["error"] and r.json["hint"], r)
moved["options"]["apiKey"] = "****"
r = call("PUT", "/api/v1/config/apps/braze", moved)
check("new endpoint with \"****\": 400", r.status == 400 and "must be sent again" in r.json["error"], r)
r = call("POST", "/api/v1/apps/braze/test")
check("the connection test still goes to the simulator", r.status == 200 and r.json["ok"] is True, r)
moved["options"]["apiKey"] = "a-new-key-for-evil"
r = call("PUT", "/api/v1/config/apps/braze", moved)
check("new key, endpoint neither Braze's nor allowed: 400",
      r.status == 400 and "is not a Braze REST endpoint" in r.json["error"]
      and "--allow-endpoint" in r.json["hint"], r)
for url in ("https://rest.iad-01.braze.com@127.0.0.1:%s" % evil.url.rsplit(":", 1)[1],
            "https://rest.iad-01.braze.com.evil.example", "http://rest.iad-01.braze.com"):
    moved["options"]["restEndpoint"] = url
    r = call("PUT", "/api/v1/config/apps/braze", moved)
    check("look-alike endpoint %s: 400" % url, r.status == 400, r)
same = json.loads(json.dumps(app))
same["options"]["apiKey"] = "${PATH}"
r = call("PUT", "/api/v1/config/apps/braze", same)
check("a new reference as the key: 400 (references are the operator's)",
      r.status == 400 and "reference" in r.json["error"], r)
r = call("POST", "/api/v1/config/apps", {"id": "braze3", "class": "App", "type": "braze",
                                         "options": {"apiKey": "${BRAZE_KEY}", "restEndpoint": sim.url}})
check("a new app taking the stored key by reference: 400", r.status == 400, r)
r = call("POST", "/api/v1/config/apps", {"id": "braze4", "class": "App", "type": "braze",
                                         "options": {"apiKey": "k-123", "restEndpoint": evil.url}})
check("a new app at the attacker's host: 400", r.status == 400, r)
r = call("POST", "/api/v1/config/apps?unverified=true", {"id": "braze5", "class": "App", "type": "braze",
                                         "options": {"apiKey": "k-456", "restEndpoint": "rest.fra-01.braze.eu"}})
check("a new app at a Braze host: 201", r.status == 201, r)
r = call("DELETE", "/api/v1/config/apps/braze5")
renamed = json.loads(json.dumps(app))
renamed["name"] = "Braze (renamed)"
r = call("PUT", "/api/v1/config/apps/braze", renamed)
check("other changes keep the key (200)", r.status == 200, r)
back = json.loads(json.dumps(app))
back["options"]["apiKey"] = KEY
r = call("PUT", "/api/v1/config/apps/braze", back)
check("the key itself with the allowed endpoint: 200", r.status == 200, r)
r = call("POST", "/api/v1/apps/braze/test")
check("and the test passes", r.status == 200 and r.json["ok"] is True, r)
check("the attacker's host never got a request", evil.get("/_sim/stats")["requests_total"] == 0,
      evil.get("/_sim/stats"))

# ---- 3. CSV files through the API: the data directory only, no header echoed ----
files = get_obj("apps", "files")
for path, why in ((os.path.join(outside, "private.csv"), "outside the data directory"),
                  ("outside/private.csv", "outside the data directory"),
                  ("data/link.csv", "outside the data directory"),
                  ("data/.hidden.csv", "starts with"),
                  ("data/../outside/private.csv", "outside the data directory"),
                  ("/etc/passwd", "outside the data directory")):
    bad = json.loads(json.dumps(files))
    bad["options"] = {"file": path, "delimiter": ":"}
    r = call("PUT", "/api/v1/config/apps/files", bad)
    check("file %s: 400 (%s)" % (path, why), r.status == 400 and why in r.raw, r)
r = call("POST", "/api/v1/plan", {"destination": "people_d"})
check("the app still reads its own file", r.status == 200, r)
r = call("POST", "/api/v1/config/apps", {"id": "newfiles", "class": "App", "type": "csv",
                                         "options": {"file": "/etc/passwd", "delimiter": ":"}})
check("a new CSV app on /etc/passwd: 400", r.status == 400, r)
good = json.loads(json.dumps(files))
good["options"]["file"] = "data/people2.csv"
r = call("PUT", "/api/v1/config/apps/files", good)
check("a file in the data directory: 200", r.status == 200, r)
r = call("POST", "/api/v1/plan", {"destination": "inside_d"})
check("unknown column, file in the data directory: its columns are listed",
      r.status >= 400 and "no_such_col" in r.raw and '\\"email\\"' in r.raw, r)
r = call("POST", "/api/v1/plan", {"destination": "ext_d"})
check("unknown column, file outside it (the operator's): no column listed",
      r.status >= 400 and "no_such_col" in r.raw and "SECRET-HEADER" not in r.raw
      and "not listed" in r.raw, r)

# ---- 4. the config file editor: decided on the parsed file, the same guards ----
r = call("POST", "/api/v1/users", {"name": "erin", "role": "editor", "password": "erin password 1"})
check("an editor is added", r.status == 201, r)
ed = SessionClient(srv)
r = ed.call("POST", "/api/v1/session", {"user": "erin", "password": "erin password 1"})
check("the editor signs in", r.status == 200, r)
with open(os.path.join(cfg, "groups", "big.json")) as f:
    group_text = f.read()
group = json.loads(group_text)
d_obj = get_obj("destinations", "d")
evil_d = dict(d_obj, id="evil_d", appId="evil")
evil_app = {"id": "evil", "class": " App", "type": "braze",
            "options": {"apiKey": "${BRAZE_KEY}", "restEndpoint": evil.url}}
sneaked = {
    'the class " App"': json.dumps([group, evil_app, evil_d]),
    "a JSON5 escaped class after a comment": "[%s, {id: 'evil', class /*c*/ : \"\\u0041pp\", type: 'braze', "
    "options: {apiKey: '${BRAZE_KEY}', restEndpoint: '%s'}}, %s]" % (json.dumps(group), evil.url, json.dumps(evil_d)),
    "an Alert": json.dumps([group, {"id": "leak", "class": "Alert", "type": "email", "triggers": {"runFailed": True},
                                    "options": {"host": "127.0.0.1", "port": int(evil.url.rsplit(":", 1)[1]),
                                                "to": "x@example.com", "password": "${BRAZE_KEY}"}}]),
}
for what, text in sneaked.items():
    before = dir_digest(cfg)
    r = ed.call("PUT", "/api/v1/files/groups%2Fbig.json", {"text": text})
    check("editor, file editor, %s: 403, nothing written" % what,
          r.status == 403 and "only an admin" in r.raw and dir_digest(cfg) == before, r.raw[:400])
renamed = group_text.replace('"Big n"', '"Big n (renamed)"')
r = ed.call("PUT", "/api/v1/files/groups%2Fbig.json", {"text": renamed})
check("editor, file editor, a group without keys: saved", r.status == 200 and r.json["valid"] is True, r.raw[:400])
ops = os.path.join(cfg, "groups", "ops.json")  # not under alerts/: the parsed class decides
with open(ops, "w") as f:
    f.write('{"id": "ops", "class": "alert ", "type": "email", "options": {"host": "smtp.example.com", '
            '"password": "SMTP-SECRET-4711"}}')
r = ed.call("GET", "/api/v1/files/groups%2Fops.json")
check("editor: a file holding an Alert is not readable (403)", r.status == 403 and "SMTP-SECRET" not in r.raw, r.raw[:400])
r = ed.call("GET", "/api/v1/files")
listed = {x["path"]: x for x in r.json["files"]} if r.status == 200 else {}
check("and the list says it needs an admin", listed.get("groups/ops.json", {}).get("admin_only") is True, r.raw[:400])
r = call("GET", "/api/v1/files/groups%2Fops.json")
check("an admin reads it", r.status == 200 and "SMTP-SECRET" in r.raw, r.raw[:400])
os.remove(ops)
# the same file with a stray comma: the loader reads nothing from it, but its text is still the key
broken = os.path.join(cfg, "shared", "pg.json")
os.makedirs(os.path.dirname(broken))
with open(broken, "w") as f:
    f.write('{"class": "App", "id": "pg", "type": "postgres", "options": {"host": "localhost", "database": "x", '
            '"password": "PG-SECRET-4711"}},\n')
r = ed.call("GET", "/api/v1/files/shared%2Fpg.json")
check("editor: a file that does not parse but names a password is not readable (403)",
      r.status == 403 and "PG-SECRET" not in r.raw, r.raw[:400])
r = ed.call("GET", "/api/v1/files")
listed = {x["path"]: x for x in r.json["files"]} if r.status == 200 else {}
check("and the list says it needs an admin", listed.get("shared/pg.json", {}).get("admin_only") is True, r.raw[:400])
before = dir_digest(cfg)
r = ed.call("PUT", "/api/v1/files/shared%2Fpg.json", {"text": json.dumps(dict(group, id="big2"))})
check("editor: nor replaceable (403), nothing written", r.status == 403 and dir_digest(cfg) == before, r.raw[:400])
os.remove(broken)
os.rmdir(os.path.dirname(broken))

# an App of a Grouparoo plugin joey skips (its options are not in the catalog): a viewer
# reading it sees no key, whatever the option is called (private_key, Datadog's appKey)
for name, obj in (("gs", {"class": "App", "id": "gs", "name": "Sheets", "type": "google-sheets",
                          "options": {"client_email": "x@example.com", "private_key": "PEM-SECRET-4711"}}),
                  ("dd", {"class": "App", "id": "dd", "name": "Datadog", "type": "datadog",
                          "options": {"apiKey": "DD-API-SECRET-4711", "appKey": "DD-APP-SECRET-4711"}})):
    with open(os.path.join(cfg, "apps", name + ".json"), "w") as f:
        json.dump(obj, f)
r = call("POST", "/api/v1/reload")
check("apps of skipped plugins: the config still loads", r.status == 200, r.raw[:400])
r = call("POST", "/api/v1/users", {"name": "vic", "role": "viewer", "password": "vic password 12"})
vi = SessionClient(srv)
r = vi.call("POST", "/api/v1/session", {"user": "vic", "password": "vic password 12"})
check("a viewer signs in", r.status == 200, r)
for name in ("gs", "dd"):
    r = vi.call("GET", "/api/v1/config/apps/" + name)
    check("viewer: app %s of a skipped plugin is read with its keys masked" % name,
          r.status == 200 and "SECRET-4711" not in r.raw and r.json["options"].get("private_key", "****") == "****",
          r.raw[:400])
    os.remove(os.path.join(cfg, "apps", name + ".json"))
r = call("POST", "/api/v1/reload")

braze_text = call("GET", "/api/v1/files/apps%2Fbraze.json").json["text"]
moved = json.loads(braze_text)
moved["options"].update(restEndpoint=evil.url, apiKey="a-new-key-for-evil")
before = dir_digest(cfg)
r = call("PUT", "/api/v1/files/apps%2Fbraze.json", {"text": json.dumps(moved)})
check("admin, file editor, a restEndpoint not allowed: 400, nothing written",
      r.status == 400 and "is not a Braze REST endpoint" in r.raw and dir_digest(cfg) == before, r)
files_text = call("GET", "/api/v1/files/apps%2Ffiles.json").json["text"]
bad = json.loads(files_text)
bad["options"]["file"] = os.path.join(outside, "private.csv")
r = call("PUT", "/api/v1/files/apps%2Ffiles.json", {"text": json.dumps(bad)})
check("admin, file editor, an app file outside the data directory: 400, nothing written",
      r.status == 400 and "outside the data directory" in r.raw and dir_digest(cfg) == before, r)
renamed = json.loads(braze_text)
renamed["name"] = "Braze (edited as a file)"
r = call("PUT", "/api/v1/files/apps%2Fbraze.json", {"text": json.dumps(renamed, indent=2)})
check("admin, file editor, other changes to the app: saved", r.status == 200 and r.json["valid"] is True, r)
r = call("POST", "/api/v1/apps/braze/test")
check("and the key still goes to the simulator", r.status == 200 and r.json["ok"] is True, r)
check("the attacker's host never got a request", evil.get("/_sim/stats")["requests_total"] == 0,
      evil.get("/_sim/stats"))

check("no answer held the key", not any(KEY in a for a in answers),
      [a for a in answers if KEY in a][:2])
check("no answer held the private file's header", not any("SECRET-HEADER" in a for a in answers),
      [a for a in answers if "SECRET-HEADER" in a][:2])
srv.stop()

# ---- 5. the state store inside the config directory: its secrets.json is no config file ----
root2 = os.path.join(TMP, "inside")
cfg2, _ = small_config(root2, sim.url, n=5)
srv2 = Server(cfg2, os.path.join(cfg2, "state", "state.db"))
app = srv2.call("GET", "/api/v1/config/apps/braze").json
app.pop("file", None)
app["options"]["apiKey"] = "INSIDE-SECRET-4711"
r = srv2.call("PUT", "/api/v1/config/apps/braze?unverified=true", app)
check("state inside the config directory: a literal key goes to its secrets file", r.status == 200
      and "INSIDE-SECRET" in open(os.path.join(cfg2, "state", "secrets.json")).read(), r.raw[:400])
r = srv2.call("POST", "/api/v1/users", {"name": "erin", "role": "editor", "password": "erin password 1"})
ed2 = SessionClient(srv2)
r = ed2.call("POST", "/api/v1/session", {"user": "erin", "password": "erin password 1"})
r = ed2.call("GET", "/api/v1/files")
check("the secrets file is not listed as a config file", r.status == 200 and "secrets.json" not in r.raw, r.raw[:600])
for who, c in (("editor", ed2.call), ("admin", srv2.call)):
    r = c("GET", "/api/v1/files/state%2Fsecrets.json")
    check("%s: the secrets file is not readable as a config file (404)" % who,
          r.status == 404 and "INSIDE-SECRET" not in r.raw, r.raw[:400])
secrets2 = os.path.join(cfg2, "state", "secrets.json")
before = open(secrets2).read()
r = ed2.call("PUT", "/api/v1/files/state%2Fsecrets.json", {"text": '{"JOEY_SECRET_BRAZE_APIKEY": "x"}'})
check("editor: nor writable (404), nothing written", r.status == 404 and open(secrets2).read() == before, r.raw[:400])
srv2.stop()
finish()
