#!/usr/bin/env python3
"""serve_auth.py: accounts, roles, sessions, CSRF, API tokens, the audit log, login rate
limits, the one-time setup link, `joey user` and TLS of `joey serve` (docs/security.md,
docs/api.md "Accounts"), against the real binary and the Braze simulator.

Each role logs in and tries what it may and may not do; nothing is readable without an
account, also on loopback; secrets never reach the audit log."""
import json
import os
import re
import shutil
import ssl
import stat
import subprocess
import sys
import time
import http.client
import threading
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import (TMP, JOEY, Server, Sim, check, finish, small_config)  # noqa: E402

sim = Sim()
os.environ["BRAZE_KEY"] = "test-key"
os.environ["JOEY_ALLOW_ENDPOINTS"] = sim.url  # the simulator is not a Braze host (operator setting)
cfg, db = small_config(TMP, sim.url, n=20)
state = os.path.join(TMP, "st", "state.db")
accounts = os.path.join(TMP, "st", "accounts.db")


class Client:
    """A browser-like client: keeps the session cookie and sends the CSRF token on changes."""

    def __init__(self, srv, origin=None):
        self.srv, self.cookie, self.csrf, self.origin = srv, None, None, origin
        self.last_set_cookie = None
        self.ctx = None
        if srv.url.startswith("https"):
            self.ctx = ssl.create_default_context()
            self.ctx.check_hostname = False
            self.ctx.verify_mode = ssl.CERT_NONE

    def call(self, method, path, body=None, csrf=True, headers=None, bearer=None, source=None):
        """source: the local address to connect from (127.0.0.x), as another machine would."""
        h = dict(headers or {})
        if self.cookie:
            h["Cookie"] = "joey_session=" + self.cookie
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            h["X-CSRF-Token"] = self.csrf
        if self.origin and method not in ("GET", "HEAD"):
            h.setdefault("Origin", self.origin)
        if bearer:
            h["Authorization"] = "Bearer " + bearer
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            h["Content-Type"] = "application/json"
        u = urllib.parse.urlsplit(self.srv.url)
        src = (source, 0) if source else None
        if u.scheme == "https":
            conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=60, context=self.ctx, source_address=src)
        else:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60, source_address=src)
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        status, hdrs, raw = resp.status, resp.headers, resp.read().decode()
        conn.close()
        sc = hdrs.get("Set-Cookie")
        if sc:
            self.last_set_cookie = sc
            m = re.match(r"joey_session=([^;]*)", sc)
            self.cookie = m.group(1) if m and m.group(1) else None
        try:
            j = json.loads(raw) if raw else None
        except ValueError:
            j = None
        if isinstance(j, dict) and j.get("csrf"):
            self.csrf = j["csrf"]

        class R:
            pass
        r = R()
        r.status, r.headers, r.raw, r.json = status, hdrs, raw, j
        r.__repr__ = lambda: "HTTP %d %s" % (status, raw[:800])
        return r

    def login(self, user, password, source=None):
        return self.call("POST", "/api/v1/session", {"user": user, "password": password}, source=source)


def show(r):
    return "HTTP %d %s" % (r.status, r.raw[:800])


def joey_user(*args, password=None, env=None):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([JOEY, "user"] + list(args) + ["--config", cfg, "--state", state],
                          input=(password + "\n") if password is not None else None, capture_output=True,
                          text=True, env=e, timeout=60)


# ---- a fresh server: nothing readable, a one-time setup link ----
srv = Server(cfg, state, env={"JOEY_API_TOKEN": ""})
log = srv.read_log()
m = re.search(r"(https?://[^\s/]+)/#setup=([0-9a-f]{48})", log)
check("first start without accounts prints a setup link", m, log)
setup_token = m.group(2) if m else "x"
anon = Client(srv)
r = anon.call("GET", "/")
check("the page carries no credential", r.status == 200 and setup_token not in r.raw and "Bearer" not in r.raw, show(r))
for path in ("/api/v1/models", "/api/v1/status", "/api/v1/apps", "/api/v1/runs", "/metrics", "/api/v1/users"):
    r = anon.call("GET", path)
    check("loopback, anonymous: GET %s is 401" % path, r.status == 401, show(r))
r = anon.call("GET", "/healthz")
check("healthz stays open", r.status == 200, show(r))
r = anon.call("GET", "/api/v1/session")
check("session: nobody, setup pending", r.status == 200 and r.json["user"] is None and r.json["setup_pending"], show(r))
check("accounts file 0600 in a 0700 directory", stat.S_IMODE(os.stat(accounts).st_mode) == 0o600
      and stat.S_IMODE(os.stat(os.path.dirname(accounts)).st_mode) == 0o700)

r = anon.call("POST", "/api/v1/setup", {"token": "0" * 48, "user": "alice", "password": "correct horse battery"})
check("setup with a wrong token 403", r.status == 403 and anon.cookie is None, show(r))
r = anon.call("POST", "/api/v1/setup", {"token": setup_token, "user": "alice", "password": "short"})
check("setup with a weak password 400, the link stays", r.status == 400 and "10 characters" in r.raw, show(r))
admin = Client(srv)
r = admin.call("POST", "/api/v1/setup", {"token": setup_token, "user": "alice", "password": "correct horse battery"})
check("setup creates the first admin and signs in", r.status == 201 and r.json["user"]["role"] == "admin"
      and admin.cookie and admin.csrf, show(r))
sc = admin.last_set_cookie or ""
check("session cookie: HttpOnly, SameSite=Strict, Path=/, not Secure over HTTP",
      "HttpOnly" in sc and "SameSite=Strict" in sc and "Path=/" in sc and "Secure" not in sc, sc)
r = Client(srv).call("POST", "/api/v1/setup", {"token": setup_token, "user": "mallory", "password": "correct horse battery"})
check("the setup link works once", r.status == 403, show(r))
r = admin.call("GET", "/api/v1/session")
check("session: alice, admin, setup done", r.json["user"]["name"] == "alice" and not r.json["setup_pending"], show(r))
check("the accounts file holds no cookie value", admin.cookie.encode() not in open(accounts, "rb").read()
      and (not os.path.exists(accounts + "-wal") or admin.cookie.encode() not in open(accounts + "-wal", "rb").read()))

# ---- CSRF and Origin ----
r = admin.call("POST", "/api/v1/reload", csrf=False)
check("a session change without X-CSRF-Token 403", r.status == 403 and "CSRF" in r.raw, show(r))
r = admin.call("POST", "/api/v1/reload", headers={"X-CSRF-Token": "f" * 64}, csrf=False)
check("a wrong CSRF token 403", r.status == 403, show(r))
r = admin.call("POST", "/api/v1/reload", headers={"Origin": "http://evil.example"})
check("a foreign Origin 403", r.status == 403 and "cross-site" in r.raw, show(r))
r = admin.call("POST", "/api/v1/reload", headers={"Origin": srv.url})
check("our own Origin and the CSRF token: 200", r.status == 200, show(r))
r = anon.call("POST", "/api/v1/session", {"user": "alice", "password": "correct horse battery"},
              headers={"Origin": "http://evil.example"})
check("a login from another site's page 403", r.status == 403 and anon.cookie is None, show(r))

# ---- users ----
for name, role in (("erin", "editor"), ("vic", "viewer"), ("adam", "admin")):
    r = admin.call("POST", "/api/v1/users", {"name": name, "role": role, "password": name + " password 1"})
    check("admin adds %s (%s)" % (name, role), r.status == 201, show(r))
r = admin.call("POST", "/api/v1/users", {"name": "erin", "role": "viewer", "password": "another password"})
check("a taken name 400", r.status == 400 and "already exists" in r.raw, show(r))
r = admin.call("POST", "/api/v1/users", {"name": "../x", "role": "viewer", "password": "another password"})
check("an invalid name 400", r.status == 400, show(r))
r = admin.call("POST", "/api/v1/users", {"name": "zed", "role": "root", "password": "another password"})
check("an unknown role 400", r.status == 400, show(r))
# body fields: checked in order, the first wrong one named; an optional one may be absent
r = admin.call("POST", "/api/v1/users", {"name": "zed", "role": 5, "password": 6})
check("a role that is not a string 400, named", r.status == 400 and '\\"role\\" must be a string' in r.raw, show(r))
r = admin.call("POST", "/api/v1/users", {"name": "zed", "password": "another password"})
check("a missing role 400, named", r.status == 400 and '\\"role\\" must be a string' in r.raw, show(r))
r = admin.call("PUT", "/api/v1/users/erin", {})
check("a user update without role or password 400", r.status == 400 and "nothing to change" in r.raw, show(r))
r = admin.call("PUT", "/api/v1/users/erin", {"role": "editor", "password": 7})
check("a password that is not a string 400, named", r.status == 400 and '\\"password\\" must be a string' in r.raw,
      show(r))
r = admin.call("GET", "/api/v1/users")
check("users listed without hashes", r.status == 200 and [u["name"] for u in r.json["users"]] == ["adam", "alice", "erin", "vic"]
      and "argon2" not in r.raw and "pw_hash" not in r.raw, show(r))

# ---- each role: what it may and may not do ----
sessions = {}
for name, role in (("vic", "viewer"), ("erin", "editor"), ("adam", "admin")):
    c = Client(srv)
    r = c.login(name, name + " password 1")
    check("%s signs in" % name, r.status == 200 and r.json["user"]["role"] == role, show(r))
    sessions[role] = c

group_big = admin.call("GET", "/api/v1/config/groups/big").json
group_big.pop("file", None)
app_braze = admin.call("GET", "/api/v1/config/apps/braze").json
app_braze.pop("file", None)
ROLE = {"viewer": 1, "editor": 2, "admin": 3}
matrix = [
    ("GET", "/api/v1/models", None, "viewer"),
    ("GET", "/api/v1/runs", None, "viewer"),
    ("GET", "/api/v1/apps", None, "viewer"),
    ("GET", "/api/v1/config/groups/big", None, "viewer"),
    ("GET", "/metrics", None, "viewer"),
    ("GET", "/api/v1/tokens", None, "viewer"),
    ("POST", "/api/v1/plan", {}, "editor"),
    ("POST", "/api/v1/reload", None, "editor"),
    ("PUT", "/api/v1/config/groups/big", group_big, "editor"),
    ("POST", "/api/v1/runs", {"destination": "d"}, "editor"),
    ("PUT", "/api/v1/config/apps/braze", app_braze, "admin"),
    ("POST", "/api/v1/apps/braze/test", None, "admin"),
    ("GET", "/api/v1/users", None, "admin"),
    ("GET", "/api/v1/audit", None, "admin"),
]
for role, c in sessions.items():
    for method, path, body, need in matrix:
        r = c.call(method, path, body)
        allowed = ROLE[role] >= ROLE[need]
        good = (r.status < 400 or (r.status not in (401, 403) and r.status != 500)) if allowed else r.status == 403
        check("%s: %s %s -> %s" % (role, method, path, "allowed" if allowed else "403"), good, show(r))
r = sessions["viewer"].call("POST", "/api/v1/users", {"name": "x1", "role": "admin", "password": "0123456789ab"})
check("viewer cannot make themselves an account", r.status == 403 and "your role" in r.raw, show(r))
r = sessions["editor"].call("PUT", "/api/v1/users/erin", {"role": "admin"})
check("editor cannot raise their own role", r.status == 403, show(r))

# ---- personal API tokens ----
v = sessions["viewer"]
r = v.call("POST", "/api/v1/tokens", {"role": "viewer"})
check("a token without a label 400, named", r.status == 400 and '\\"label\\" must be a string' in r.raw, show(r))
r = v.call("POST", "/api/v1/tokens", {"label": "dashboards", "role": 1})
check("a token role that is not a string 400, named", r.status == 400 and '\\"role\\" must be a string' in r.raw,
      show(r))
r = v.call("POST", "/api/v1/tokens", {"label": "dashboards", "role": "admin"})
check("a viewer cannot make an admin token", r.status == 403, show(r))
r = v.call("POST", "/api/v1/tokens", {"label": "dashboards"})
check("a viewer makes a viewer token, shown once", r.status == 201 and r.json["role"] == "viewer"
      and r.json["token"].startswith("joey_"), show(r))
vtok, vtok_id = r.json["token"], r.json["id"]
r = v.call("GET", "/api/v1/tokens")
check("the token list never shows the token", r.status == 200 and vtok not in r.raw
      and r.json["tokens"][0]["prefix"] == vtok[:13], show(r))
check("the accounts file holds only the token's hash", vtok.encode() not in open(accounts, "rb").read()
      and (not os.path.exists(accounts + "-wal") or vtok.encode() not in open(accounts + "-wal", "rb").read()))
bare = Client(srv)
r = bare.call("GET", "/api/v1/models", bearer=vtok)
check("the viewer token reads", r.status == 200, show(r))
r = bare.call("POST", "/api/v1/plan", {}, bearer=vtok)
check("the viewer token cannot plan (403)", r.status == 403, show(r))
r = sessions["editor"].call("DELETE", "/api/v1/tokens/%d" % vtok_id)
check("someone else's token cannot be revoked by an editor", r.status == 404, show(r))
r = v.call("DELETE", "/api/v1/tokens/%d" % vtok_id)
check("the owner revokes it", r.status == 200, show(r))
r = bare.call("GET", "/api/v1/models", bearer=vtok)
check("a revoked token 401", r.status == 401 and "invalid API token" in r.raw, show(r))
r = sessions["editor"].call("POST", "/api/v1/tokens", {"label": "ci"})
etok = r.json["token"]
r = admin.call("PUT", "/api/v1/users/erin", {"role": "viewer"})
check("admin demotes erin to viewer", r.status == 200, show(r))
r = bare.call("POST", "/api/v1/plan", {}, bearer=etok)
check("a demoted user's editor token no longer changes anything", r.status in (401, 403), show(r))
r = sessions["editor"].call("GET", "/api/v1/models")
check("a demoted user's sessions end", r.status == 401, show(r))

# ---- the audit log: who, what, before/after, secrets masked ----
grp = dict(group_big)
grp["name"] = "Big n (renamed)"
r = admin.call("PUT", "/api/v1/config/groups/big", grp)
check("admin renames a group", r.status == 200, show(r))
app = dict(app_braze)
app["options"] = dict(app["options"], apiKey="test-key")  # a literal secret, stored in the secrets file
r = admin.call("PUT", "/api/v1/config/apps/braze", app)
check("admin sets the Braze key as a literal", r.status == 200 and "test-key" not in r.raw, show(r))
r = admin.call("GET", "/api/v1/audit?limit=200")
entries = r.json["entries"] if r.status == 200 else []
acts = [(e["action"], e["actor"], e["object"]) for e in entries]
check("audit: the first admin's setup, users added, logins", ("user.add", "alice", "alice") in acts
      and ("user.add", "alice", "erin") in acts and ("session.login", "vic", "vic") in acts, acts)
ren = [e for e in entries if e["action"] == "config.update" and e["object"] == "big" and e["actor"] == "alice"]
check("audit: the group change with before and after", ren and ren[0]["before"]["name"] == "Big n"
      and ren[0]["after"]["name"] == "Big n (renamed)" and ren[0]["via"] == "session"
      and ren[0]["addr"] == "127.0.0.1", ren[:1])
keyed = [e for e in entries if e["action"] == "config.update" and e["object"] == "braze"]
check("audit: the app change, with the key masked", keyed and "test-key" not in r.raw, keyed[:1])
check("audit: token and role changes", any(e["action"] == "token.create" for e in entries)
      and any(e["action"] == "token.revoke" for e in entries)
      and any(e["action"] == "user.update" and e["object"] == "erin" and e["after"]["role"] == "viewer" for e in entries))
check("audit: run requests name who asked", any(e["action"] == "run.request" and e["actor"] == "erin" for e in entries))
r = admin.call("GET", "/api/v1/audit?limit=2")
r2 = admin.call("GET", "/api/v1/audit?limit=2&before=%d" % r.json["next_before"])
check("audit pages by next_before", r2.status == 200 and len(r2.json["entries"]) == 2
      and r2.json["entries"][0]["id"] < r.json["entries"][-1]["id"], show(r2))

# ---- the last admin, passwords, logout ----
r = admin.call("DELETE", "/api/v1/users/adam")
check("admin removes adam", r.status == 200, show(r))
r = admin.call("DELETE", "/api/v1/users/alice")
check("the last admin cannot be removed", r.status == 400 and "last admin" in r.raw, show(r))
r = admin.call("PUT", "/api/v1/users/alice", {"role": "viewer"})
check("the last admin cannot be demoted", r.status == 400 and "last admin" in r.raw, show(r))
other = Client(srv)
other.login("alice", "correct horse battery")
r = admin.call("POST", "/api/v1/session/password", {"current_password": "wrong password!", "new_password": "a new long password"})
check("a password change needs the current password", r.status == 400, show(r))
r = admin.call("POST", "/api/v1/session/password", {"current_password": "correct horse battery",
                                                    "new_password": "a new long password"})
check("password changed; this session goes on", r.status == 200 and admin.call("GET", "/api/v1/models").status == 200, show(r))
check("the user's other sessions ended", other.call("GET", "/api/v1/models").status == 401)
check("the old password no longer works", Client(srv).login("alice", "correct horse battery").status == 401)
r = admin.call("DELETE", "/api/v1/session")
check("logout clears the cookie", r.status == 200 and admin.cookie is None and "Max-Age=0" in (admin.last_set_cookie or ""), show(r))
admin.cookie = other.cookie = None
c = Client(srv)
c.login("alice", "a new long password")
old = c.cookie
c.call("DELETE", "/api/v1/session")
c.cookie = old
check("a logged-out session cookie is refused", c.call("GET", "/api/v1/models").status == 401)

# ---- review findings: the audit log cannot be cut short, limits hold under load ----
r = Client(srv).login("a" * 63 + "\u00e9", "whatever", source="127.0.0.9")
check("a sign-in with a name that is not a user name is 401", r.status == 401, show(r))
audit_c = Client(srv)
audit_c.login("alice", "a new long password", source="127.0.0.9")
r = audit_c.call("GET", "/api/v1/audit?limit=3")
check("that failure does not cut the audit log short", r.status == 200 and len(r.json["entries"]) == 3
      and r.json["next_before"] is not None, show(r))
r = audit_c.call("POST", "/api/v1/users", {"name": "pat", "role": "viewer", "password": "pat password 1"})
check("admin adds pat", r.status == 201, show(r))
audit_c.call("DELETE", "/api/v1/session")
codes = []


def try_login(i):
    codes.append(Client(srv).login("vic", "wrong password %d" % i, source="127.0.0.3").status)


threads = [threading.Thread(target=try_login, args=(i,)) for i in range(24)]
[t.start() for t in threads]
[t.join() for t in threads]
seq = []
for i in range(12):
    seq.append(Client(srv).login("vic", "wrong again %d" % i, source="127.0.0.3").status)
    if seq[-1] == 429:
        break
check("24 wrong passwords at once, then one by one: exactly 10 are checked in the window (the rest 429, "
      "or 503 while 4 checks run)", codes.count(401) + seq.count(401) == 10 and set(codes) <= {401, 429, 503}
      and seq[-1] == 429, (sorted(codes), seq))
r = Client(srv).login("vic", "vic password 1", source="127.0.0.4")
check("... and the user is locked for a while, from any address", r.status == 429, show(r))
e = Client(srv)
e.login("erin", "erin password 1", source="127.0.0.5")
pw_codes = [e.call("POST", "/api/v1/session/password", {"current_password": "guess %d" % i,
                                                        "new_password": "whatever long"}, source="127.0.0.5").status
            for i in range(11)]
check("guessing the current password in a password change is limited too", pw_codes[:10] == [400] * 10
      and pw_codes[10] == 429, pw_codes)

# ---- login rate limits ----
attacker = Client(srv)
codes = [attacker.login("pat", "wrong password %d" % i).status for i in range(10)]
check("ten wrong passwords: 401 each", codes == [401] * 10, codes)
r = attacker.login("pat", "pat password 1")
check("then even the right password is 429 with Retry-After", r.status == 429 and int(r.headers.get("Retry-After", "0")) > 0, show(r))
r = Client(srv).login("alice", "a new long password")
check("another user from the same address still signs in", r.status == 200, show(r))
codes = [attacker.login("nobody%d" % i, "guess").status for i in range(30)]
check("one address: at most 30 failures in the window, then 429 for every name",
      401 in codes and codes[-1] == 429 and codes.count(401) <= 30 - 10, codes)
r = Client(srv).login("alice", "a new long password")
check("... also for a right password from that address", r.status == 429, show(r))
srv.stop()

# ---- the CLI ----
r = joey_user("add", "carol", "--role", "editor", "--password-stdin", password="carol password 1")
check("joey user add", r.returncode == 0 and "added carol (editor)" in r.stdout, r.stderr)
r = joey_user("add", "dave", "--role", "editor", "--password-stdin", password="short")
check("joey user add: a short password refused", r.returncode == 1 and "10 characters" in r.stderr, r.stderr)
r = joey_user("add", "dave", "--role", "boss", "--password-stdin", password="long enough pw")
check("joey user add: an unknown role is a usage error", r.returncode == 2, r.stderr)
r = joey_user("role", "carol", "viewer")
check("joey user role", r.returncode == 0 and "carol is now viewer" in r.stdout, r.stderr)
r = joey_user("passwd", "carol", "--password-stdin", password="carol password 2")
check("joey user passwd", r.returncode == 0, r.stderr)
r = joey_user("token", "carol", "--label", "nightly export")
cli_tok = r.stdout.strip()
check("joey user token prints the token once", r.returncode == 0 and cli_tok.startswith("joey_") and cli_tok not in r.stderr, r.stderr)
r = joey_user("list", "--json")
users = {u["name"]: u["role"] for u in json.loads(r.stdout)} if r.returncode == 0 else {}
check("joey user list --json", users.get("carol") == "viewer" and users.get("alice") == "admin", r.stdout + r.stderr)
r = joey_user("remove", "alice")
check("joey user remove: never the last admin", r.returncode == 1 and "last admin" in r.stderr, r.stderr)
r = joey_user("remove", "nobody")
check("joey user remove: an unknown user", r.returncode == 1 and "no user" in r.stderr, r.stderr)
# an option the verb does not take: before, ignored (passwd --role admin changed no role, exit 0)
for args, opt in ((("passwd", "carol", "--role", "admin", "--password-stdin"), "--role"),
                  (("remove", "carol", "--role", "viewer"), "--role"),
                  (("role", "carol", "admin", "--role", "viewer"), "--role"),
                  (("add", "quinn", "--role", "viewer", "--label", "x", "--password-stdin"), "--label"),
                  (("token", "carol", "--label", "x", "--password-stdin"), "--password-stdin")):
    r = joey_user(*args, password="carol password 3")
    check("joey user %s %s: a usage error" % (args[0], opt), r.returncode == 2
          and "does not take %s" % opt in r.stderr, (r.returncode, r.stderr))
r = joey_user("list", "--json")
users = {u["name"]: u["role"] for u in json.loads(r.stdout)} if r.returncode == 0 else {}
check("joey user: nothing changed by the refused commands", users.get("carol") == "viewer" and "quinn" not in users,
      r.stdout + r.stderr)

# ---- session expiry (idle and absolute), the CLI's token, a readable accounts file ----
srv = Server(cfg, state, args=["--public-url", "https://joey.example.com"],
             env={"JOEY_API_TOKEN": "", "JOEY_SESSION_IDLE": "2", "JOEY_SESSION_MAX": "4"})
check("with accounts, no setup link", "#setup=" not in srv.read_log(), srv.read_log())
c = Client(srv)
r = c.call("POST", "/api/v1/session", {"user": "carol", "password": "carol password 2"},
           headers={"Origin": "https://joey.example.com"})
check("behind a TLS proxy (--public-url https://...): its Origin signs in, the cookie is Secure",
      r.status == 200 and "Secure" in (c.last_set_cookie or ""), show(r))
r = Client(srv).call("POST", "/api/v1/session", {"user": "carol", "password": "carol password 2"},
                     headers={"Origin": "https://evil.example.com"})
check("... and another site's Origin is still refused", r.status == 403, show(r))
check("behind a TLS proxy: answers carry Strict-Transport-Security",
      "max-age=" in (r.headers.get("Strict-Transport-Security") or ""), dict(r.headers))
r = Client(srv).call("GET", "/api/v1/models", bearer=cli_tok)
check("the token made by the CLI works", r.status == 200, show(r))
c = Client(srv)
c.login("carol", "carol password 2")
time.sleep(3)
r = c.call("GET", "/api/v1/models")
check("an idle session ends", r.status == 401 and "session has ended" in r.raw, show(r))
c = Client(srv)
c.login("carol", "carol password 2")
for _ in range(4):
    time.sleep(1.2)
    r = c.call("GET", "/api/v1/models")
check("a busy session still ends at its absolute limit", r.status == 401, show(r))
srv.stop()
audit = json.loads(subprocess.run(["sqlite3", "-json", accounts, "SELECT actor, via, action, object_id AS object FROM audit"],
                                  capture_output=True, text=True).stdout or "[]")
check("the CLI's changes are audited as cli:<login>", any(a["via"] == "cli" and a["actor"].startswith("cli:")
                                                          and a["action"] == "user.update" for a in audit), audit[-5:])
check("failed sign-ins are in the audit log", any(a["action"] == "session.login_failed" and a["object"] == "vic"
                                                 for a in audit))
os.chmod(accounts, 0o644)
r = subprocess.run([JOEY, "serve", "--config", cfg, "--state", state, "--listen", "127.0.0.1:0"],
                   capture_output=True, text=True, timeout=60)
check("an accounts file others can read is refused", r.returncode != 0 and "chmod 600" in r.stderr, r.stderr)
os.chmod(accounts, 0o600)

# ---- TLS ----
if shutil.which("openssl"):
    key, crt = os.path.join(TMP, "key.pem"), os.path.join(TMP, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    r = subprocess.run([JOEY, "serve", "--config", cfg, "--state", state, "--tls-cert", crt], capture_output=True,
                       text=True, timeout=60)
    check("--tls-cert without --tls-key is refused", r.returncode != 0 and "go together" in r.stderr, r.stderr)
    srv = Server(cfg, state, args=["--tls-cert", crt, "--tls-key", key], env={"JOEY_API_TOKEN": ""})
    check("TLS: listening on https", srv.url.startswith("https://"), srv.read_log())
    c = Client(srv)
    r = c.login("carol", "carol password 2")
    check("TLS: sign in; the cookie is Secure", r.status == 200 and "Secure" in (c.last_set_cookie or ""), show(r))
    check("TLS: the session reads", c.call("GET", "/api/v1/models").status == 200)
    r = c.call("GET", "/")
    check("TLS: answers carry Strict-Transport-Security (the page and the API)",
          "max-age=" in (r.headers.get("Strict-Transport-Security") or "")
          and "max-age=" in (c.call("GET", "/api/v1/session").headers.get("Strict-Transport-Security") or ""),
          dict(r.headers))
    try:
        urllib.request.urlopen(srv.url.replace("https", "http") + "/healthz", timeout=5)
        plain = "answered"
    except Exception as e:  # noqa: BLE001
        plain = type(e).__name__
    check("TLS: plain HTTP is not answered", plain != "answered", plain)
    srv.stop()
else:
    check("openssl is installed (TLS test)", False, "apt-get install -y openssl")

finish()
