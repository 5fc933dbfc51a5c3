"""serve_lib.py: helpers for end-to-end tests of `joey serve` (Python 3 stdlib only).

Starts the Braze simulator and joey serve on free loopback ports, talks to the API,
and counts checks like lib.bash (prints "N passed, N failed" and exits non-zero on any
failure). Every process started here is killed at exit.
"""
import atexit
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

JOEY = os.environ.get("JOEY_BIN") or os.path.join(os.path.dirname(__file__), "../../build/joey")
SIM = os.path.join(os.path.dirname(JOEY), "braze-sim")
SRC = os.environ.get("JOEY_SRC") or os.path.join(os.path.dirname(__file__), "../..")

PASS = 0
FAIL = 0
PROCS = []
TMP = tempfile.mkdtemp(prefix="joey-serve-")


def _cleanup():
    for p in PROCS:
        if p.poll() is None:
            p.kill()
            p.wait()
    shutil.rmtree(TMP, ignore_errors=True)


atexit.register(_cleanup)


def ok(name):
    global PASS
    PASS += 1
    print("ok   " + name, flush=True)


def bad(name, detail=""):
    global FAIL
    FAIL += 1
    print("FAIL " + name, flush=True)
    if detail:
        print("  " + str(detail)[:3000].replace("\n", "\n  "), flush=True)


def check(name, cond, detail=""):
    if cond:
        ok(name)
    else:
        bad(name, detail)
    return cond


def finish():
    print("%d passed, %d failed" % (PASS, FAIL))
    sys.exit(1 if FAIL else 0)


def wait_for(fn, timeout=20.0, step=0.05):
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    return None


class Sim:
    def __init__(self, *args):
        port_file = os.path.join(TMP, "sim.port.%d" % len(PROCS))
        self.proc = subprocess.Popen([SIM, "--port", "0", "--port-file", port_file, "--api-key", "test-key",
                                      "--max-lifetime", "600", "--quiet", "--seed", "7"] + list(args))
        PROCS.append(self.proc)
        wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip())
        self.url = "http://127.0.0.1:" + open(port_file).read().strip()

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.load(r)

    def post(self, path, body):
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.read()

    def users(self):
        return {u["external_id"]: u for u in self.get("/_sim/users")["users"] if "external_id" in u}


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.raw = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    def __repr__(self):
        return "HTTP %d %s" % (self.status, self.raw[:1500])


class SessionClient:
    """A browser-like client of srv: the session cookie, and the CSRF token on changes (csrf=False: none)."""

    def __init__(self, srv):
        self.srv, self.cookie, self.csrf = srv, None, None

    def call(self, method, path, body=None, csrf=True):
        h = {}
        if self.cookie:
            h["Cookie"] = "joey_session=" + self.cookie
        if csrf and self.csrf and method != "GET":
            h["X-CSRF-Token"] = self.csrf
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            h["Content-Type"] = "application/json"
        u = urllib.parse.urlsplit(self.srv.url)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        status, hdrs, raw = resp.status, resp.headers, resp.read().decode()
        conn.close()
        m = re.match(r"joey_session=([^;]*)", hdrs.get("Set-Cookie") or "")
        if m:
            self.cookie = m.group(1) or None
        r = Reply(status, hdrs, raw)
        if isinstance(r.json, dict) and r.json.get("csrf"):
            self.csrf = r.json["csrf"]
        return r


class Server:
    """joey serve on a free port; args are extra command-line arguments."""

    def __init__(self, config, state, args=(), env=None, listen="127.0.0.1:0"):
        self.config, self.state = config, state
        self.log = os.path.join(TMP, "serve.%d.log" % len(PROCS))
        e = dict(os.environ)
        e.update(env or {})
        # Scripted access as an admin: JOEY_API_TOKEN (docs/security.md). A test that wants
        # none passes env={"JOEY_API_TOKEN": ""}.
        if "JOEY_API_TOKEN" not in e:
            e["JOEY_API_TOKEN"] = "e2e-" + os.urandom(20).hex()
        # The simulator is not a Braze host: the operator lets the API point apps at it
        # (docs/config.md "Changes through the API"). A test that wants Braze's hosts
        # only passes env={"JOEY_ALLOW_ENDPOINTS": ""}.
        e.setdefault("JOEY_ALLOW_ENDPOINTS", "http://127.0.0.1:*")
        self.logf = open(self.log, "w")
        self.proc = subprocess.Popen([JOEY, "serve", "--config", config, "--state", state, "--listen", listen]
                                     + list(args), stdout=self.logf, stderr=subprocess.STDOUT, env=e)
        PROCS.append(self.proc)
        m = wait_for(lambda: re.search(r"listening on https?://([^/]+)/", self.read_log()) or self.proc.poll() is not None)
        if not m or m is True:
            raise RuntimeError("joey serve did not start:\n" + self.read_log())
        addr = m.group(1)
        if addr.startswith("0.0.0.0:"):
            addr = "127.0.0.1:" + addr.split(":")[1]
        self.url = ("https://" if "listening on https://" in self.read_log() else "http://") + addr
        self.token = e.get("JOEY_API_TOKEN") or None

    def read_log(self):
        self.logf.flush()
        with open(self.log) as f:
            return f.read()

    def call(self, method, path, body=None, token=True, headers=None, raw=None):
        h = dict(headers or {})
        if token is True and self.token:
            h["Authorization"] = "Bearer " + self.token
        elif isinstance(token, str):
            h["Authorization"] = "Bearer " + token
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return Reply(r.status, dict(r.headers), r.read().decode())
        except urllib.error.HTTPError as e:
            return Reply(e.code, dict(e.headers), e.read().decode())

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=90):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return None

    def wait_runs_done(self, timeout=60):
        """Until no run is queued or running; returns the runs."""
        def done():
            r = self.get("/api/v1/runs?limit=100")
            if r.status == 200 and not any(x["status"] in ("queued", "running") for x in r.json["items"]):
                return r.json["items"] or None
            return None
        return wait_for(done, timeout, 0.1)


def user_token(state, name, role):
    """An account (password "<name> password 1") and an API token of it, made with the CLI."""
    subprocess.run([JOEY, "user", "add", name, "--role", role, "--password-stdin", "--state", state],
                   input=name + " password 1\n", text=True, check=True, capture_output=True)
    out = subprocess.run([JOEY, "user", "token", name, "--label", "t", "--state", state], text=True,
                         check=True, capture_output=True).stdout
    return [w for w in out.split() if w.startswith("joey_")][0] if "joey_" in out else out.strip().split()[-1]


def pg_state_url():
    """A fresh schema in $JOEY_PG_URL's database for the state store, dropped at exit."""
    url = os.environ["JOEY_PG_URL"]
    schema = "e2e_serve_%d" % os.getpid()
    atexit.register(lambda: subprocess.run(["psql", url, "-qAt", "-c", "DROP SCHEMA IF EXISTS %s CASCADE" % schema],
                                           capture_output=True))
    return url + ("&" if "?" in url else "?") + "schema=" + schema


def dir_digest(d):
    h = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(d)):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            h.update(os.path.relpath(p, d).encode())
            with open(p, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


def small_config(root, sim_url, n=50, extra_objects=()):
    """A config dir with an SQLite source of n users and one sync destination."""
    cfg = os.path.join(root, "cfg")
    os.makedirs(cfg, exist_ok=True)
    db = os.path.join(root, "data.db")
    subprocess.run(["sqlite3", db, "CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT, n INTEGER);"
                    "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < %d) "
                    "INSERT INTO users SELECT i, 'u' || i || '@example.com', 'User ' || i, i FROM s;" % n], check=True)
    objs = [
        {"class": "App", "id": "db", "name": "Warehouse", "type": "sqlite", "options": {"file": "data.db"}},
        {"class": "App", "id": "braze", "name": "Braze", "type": "braze",
         "options": {"apiKey": "${BRAZE_KEY}", "restEndpoint": sim_url}},
        {"class": "Model", "id": "users", "name": "Users", "type": "profile"},
        {"class": "Source", "id": "src", "name": "Users table", "type": "sqlite-import-table", "appId": "db",
         "modelId": "users", "options": {"table": "users"}, "mapping": {"id": "user_id"}},
        {"class": "Property", "id": "user_id", "type": "integer", "unique": True, "sourceId": "src",
         "options": {"column": "id"}},
        {"class": "Property", "id": "email", "type": "email", "sourceId": "src", "options": {"column": "email"}},
        {"class": "Property", "id": "name", "type": "string", "sourceId": "src", "options": {"column": "name"}},
        {"class": "Property", "id": "n", "type": "integer", "sourceId": "src", "options": {"column": "n"}},
        {"class": "Group", "id": "big", "name": "Big n", "modelId": "users",
         "rules": [{"propertyId": "n", "op": "gt", "match": 40}]},
        {"class": "Destination", "id": "d", "name": "Braze users", "type": "braze-export-users", "appId": "braze",
         "modelId": "users", "syncMode": "sync", "collection": "model",
         "mapping": {"external_id": "user_id", "email": "email", "n": "n"}},
    ] + list(extra_objects)
    for o in objs:
        sub = os.path.join(cfg, {"App": "apps", "Model": "models", "Source": "sources", "Property": "properties",
                                 "Group": "groups", "Destination": "destinations", "Schedule": "schedules"}[o["class"]])
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, o["id"] + ".json"), "w") as f:
            json.dump(o, f, indent=2)
    return cfg, db
