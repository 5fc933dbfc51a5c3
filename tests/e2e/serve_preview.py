#!/usr/bin/env python3
"""serve_preview.py: POST /api/v1/apps/{app}/preview (docs/api.md "Query previews") against
the real binary: the columns and first rows of an SQL query, run the way a query source's
read runs it (a derived table, one statement, read-only and rolled back, the app's
statementTimeout).

Who may call it (editor and admin; a viewer 403, nobody 401, no CSRF 403); the answer
equals sqlite3's / psql's; limits (rows capped at 50, columns at 100, query text at
64 KiB); bad bodies; and every input is untrusted: DML, DDL, ATTACH, a second statement
smuggled after a closing parenthesis, nextval, set_config, lo_create: each is refused or
rolled back, and the database (its file's bytes on SQLite, the rows, sequences and large
objects on PostgreSQL) is unchanged. A query slower than statementTimeout is cancelled
with a message in plain words."""
import hashlib
import os
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import (TMP, JOEY, Server, SessionClient, Sim, check, finish, small_config)  # noqa: E402

sim = Sim()
os.environ["BRAZE_KEY"] = "test-key"
PG_URL = os.environ.get("JOEY_PG_URL")
MY_URL = os.environ.get("JOEY_MYSQL_URL")
SCHEMA = "e2e_preview_%d" % os.getpid()
extra = []
if PG_URL:
    u = urllib.parse.urlsplit(PG_URL)
    os.environ["E2E_PG_PASSWORD"] = urllib.parse.unquote(u.password or "")
    pg_opts = {"host": u.hostname, "port": u.port or 5432, "database": u.path.lstrip("/"),
               "user": urllib.parse.unquote(u.username or ""), "password": "${E2E_PG_PASSWORD}", "schema": SCHEMA}
    extra.append({"class": "App", "id": "pg", "name": "Postgres", "type": "postgres", "options": pg_opts})
    extra.append({"class": "App", "id": "pg_slow", "name": "Postgres (1 s)", "type": "postgres",
                  "options": dict(pg_opts, statementTimeout=1)})
if MY_URL:
    m = urllib.parse.urlsplit(MY_URL)
    os.environ["E2E_MY_PASSWORD"] = urllib.parse.unquote(m.password or "")
    MY_ARGS = ["mariadb", "-h", m.hostname, "-P", str(m.port or 3306), "-u", urllib.parse.unquote(m.username or ""),
               "-p" + urllib.parse.unquote(m.password or ""), "-N", "-B", m.path.lstrip("/")]
    extra.append({"class": "App", "id": "my", "name": "MariaDB", "type": "mysql",
                  "options": {"host": m.hostname, "port": m.port or 3306, "database": m.path.lstrip("/"),
                              "user": urllib.parse.unquote(m.username or ""), "password": "${E2E_MY_PASSWORD}"}})
cfg, db = small_config(TMP, sim.url, n=30, extra_objects=extra)
state = os.path.join(TMP, "st", "state.db")
os.makedirs(os.path.dirname(state))


def psql(q):
    return subprocess.run(["psql", PG_URL, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", q], capture_output=True,
                          text=True, check=True).stdout.strip()


if PG_URL:
    import atexit
    atexit.register(lambda: subprocess.run(["psql", PG_URL, "-qAt", "-c", "DROP SCHEMA IF EXISTS %s CASCADE" % SCHEMA],
                                           capture_output=True))
    psql("CREATE SCHEMA %s; CREATE TABLE %s.people (id int PRIMARY KEY, email text, spend numeric);"
         "INSERT INTO %s.people SELECT i, 'p' || i || '@example.com', i * 1.5 FROM generate_series(1, 40) i;"
         "CREATE SEQUENCE %s.seq;" % (SCHEMA, SCHEMA, SCHEMA, SCHEMA))



def mysql(q):
    return subprocess.run(MY_ARGS + ["-e", q], capture_output=True, text=True, check=True).stdout.strip()


MY_T = "e2e_preview_%d" % os.getpid()
if MY_URL:
    import atexit
    atexit.register(lambda: subprocess.run(MY_ARGS + ["-e", "DROP TABLE IF EXISTS %s" % MY_T], capture_output=True))
    mysql("CREATE TABLE %s (id INT PRIMARY KEY, email TEXT); INSERT INTO %s VALUES (1, 'a@example.com'), "
          "(2, 'b@example.com'), (3, NULL)" % (MY_T, MY_T))

for name, role in (("ed", "editor"), ("vi", "viewer")):
    r = subprocess.run([JOEY, "user", "add", name, "--role", role, "--password-stdin", "--config", cfg, "--state",
                        state], input=name + " long password 1\n", capture_output=True, text=True, timeout=60)
    check("joey user add %s" % name, r.returncode == 0, r.stderr)
# the database lies inside joey serve's data directory: its rows may be shown
srv = Server(cfg, state, args=["--data-dir", TMP])


class Client(SessionClient):
    """A browser-like client of this test's server (serve_lib.SessionClient)."""

    def __init__(self):
        super().__init__(srv)


def show(r):
    return "HTTP %d %s" % (r.status, r.raw[:1500])


def sqlite(q):
    return subprocess.run(["sqlite3", db, q], capture_output=True, text=True, check=True).stdout.strip()


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


P = "/api/v1/apps/db/preview"
Q = {"query": "SELECT id, email, n * 2 AS twice FROM users WHERE n <= 25 ORDER BY id"}

# ---- who may preview ----
ed, vi, anon = Client(), Client(), Client()
check("the editor signs in", ed.call("POST", "/api/v1/session", {"user": "ed", "password": "ed long password 1"}).status == 200)
check("the viewer signs in", vi.call("POST", "/api/v1/session", {"user": "vi", "password": "vi long password 1"}).status == 200)
r = anon.call("POST", P, Q)
check("preview without signing in: 401", r.status == 401, show(r))
r = vi.call("POST", P, Q)
check("preview as a viewer: 403", r.status == 403, show(r))
r = ed.call("POST", P, Q, csrf=False)
check("preview as the editor without the CSRF token: 403", r.status == 403 and "CSRF" in r.raw, show(r))
r = ed.call("POST", P, Q)
check("preview as the editor: 200", r.status == 200, show(r))

# ---- the answer ----
want = [line.split("|") for line in sqlite("SELECT id, email, n * 2 FROM users WHERE n <= 20 ORDER BY id").splitlines()]
r = srv.post(P, Q)
check("SQLite: the query's columns, in its order", r.status == 200 and r.json["columns"] == ["id", "email", "twice"], r)
check("SQLite: its first 20 rows (the default limit) equal sqlite3's", r.status == 200 and r.json["rows"] == want
      and r.json["limit"] == 20 and r.json["key_guess"] == "id" and r.json["columns_cut"] is False, r)
r = srv.post(P, {"query": "  SELECT email AS e, NULL AS blank FROM users ORDER BY id;;  \n", "limit": 3})
check("trailing semicolons dropped, NULL is null, limit 3", r.status == 200 and r.json["rows"] ==
      [["u1@example.com", None], ["u2@example.com", None], ["u3@example.com", None]]
      and r.json["key_guess"] == "e", r)
r = srv.post(P, {"query": "SELECT * FROM users -- a comment at the end"})
check("a query ending in a comment is read", r.status == 200 and len(r.json["rows"]) == 20, r)
r = srv.post(P, {"query": "SELECT * FROM users", "limit": 10 ** 9})
check("limit 10^9: capped at 50 rows", r.status == 200 and r.json["limit"] == 50 and len(r.json["rows"]) == 30, r)
wide = "SELECT " + ", ".join("%d AS c%d" % (i, i) for i in range(150))
r = srv.post(P, {"query": wide})
check("150 columns: the first 100, and columns_cut", r.status == 200 and len(r.json["columns"]) == 100
      and r.json["columns"][99] == "c99" and len(r.json["rows"][0]) == 100 and r.json["columns_cut"] is True, r)
r = srv.post(P, {"query": "SELECT printf('%.5000c', 'x') AS long"})
check("a long value is cut at 200 bytes with an ellipsis", r.status == 200
      and r.json["rows"][0][0] == "x" * 200 + "\u2026", r)

# ---- bad bodies ----
for body, what in (({}, "no query"), ({"query": ""}, "an empty query"), ({"query": " ;\n"}, "only a semicolon"),
                   ({"query": 7}, "a number"), ({"query": "SELECT 1", "limit": 0}, "limit 0"),
                   ({"query": "SELECT 1", "limit": "5"}, "limit as text"),
                   ({"query": "SELECT '" + "x" * 70000 + "'"}, "70000 bytes of query")):
    r = srv.post(P, body)
    check("%s: 422 in plain words" % what, r.status == 422 and r.json["error"], r)
r = srv.post(P, {"query": "SELECT 1", "table": "users"})
check("an unknown field: 400 naming it", r.status == 400 and "table" in r.raw, r)
r = srv.post("/api/v1/apps/nope/preview", Q)
check("an unknown app: 404", r.status == 404, r)
r = srv.post("/api/v1/apps/braze/preview", Q)
check("a Braze app: 400, it holds no queries", r.status == 400, r)
r = srv.post(P, {"query": "SELECT nope FROM users"})
check("a wrong column: 422, plain message, the database's words in the detail", r.status == 422
      and r.json["error"] == 'app "db": the query cannot be read' and "nope" in (r.json["detail"] or "")
      and r.json["hint"], r)

# ---- writes change nothing (SQLite) ----
before = digest(db)
attach = os.path.join(TMP, "attached.db")
hostile = [
    "DELETE FROM users",
    "UPDATE users SET n = 0",
    "INSERT INTO users (id) VALUES (999) RETURNING id",
    "DROP TABLE users",
    "CREATE TABLE x (a)",
    "ATTACH DATABASE '%s' AS x" % attach,
    "SELECT 1) AS a; ATTACH DATABASE '%s' AS x; --" % attach,
    "SELECT 1) AS a; DELETE FROM users; SELECT * FROM (SELECT 1",
    "SELECT 1) AS a; DELETE FROM users; --",
    "WITH d AS (DELETE FROM users RETURNING id) SELECT * FROM d",
    "PRAGMA writable_schema = 1",
    "VACUUM INTO '%s'" % attach,
]
for q in hostile:
    r = srv.post(P, {"query": q})
    check("SQLite %r: refused (422), explained" % q[:50], r.status == 422 and r.json["error"].startswith('app "db"')
          and r.json["hint"], r)
check("SQLite: the database file is byte for byte unchanged", digest(db) == before)
check("SQLite: no file was attached or written", not os.path.exists(attach))
check("SQLite: all 30 rows are still there", sqlite("SELECT COUNT(*), SUM(n) FROM users") == "30|465")

# ---- PostgreSQL ----
if PG_URL:
    PP = "/api/v1/apps/pg/preview"
    r = srv.post(PP, {"query": "SELECT id, email, spend FROM people ORDER BY id", "limit": 5})
    want = [line.split("|") for line in psql("SELECT id, email, spend FROM %s.people ORDER BY id LIMIT 5" % SCHEMA).splitlines()]
    check("PostgreSQL: columns and rows equal psql's", r.status == 200 and r.json["columns"] == ["id", "email", "spend"]
          and r.json["rows"] == want, r)
    r = vi.call("POST", PP, {"query": "SELECT 1"})
    check("PostgreSQL: a viewer gets 403", r.status == 403, show(r))
    lo_before = psql("SELECT COUNT(*) FROM pg_largeobject_metadata")
    pg_before = psql("SELECT md5(string_agg(id || email || spend, ',' ORDER BY id)) FROM %s.people" % SCHEMA)
    hostile = [
        "DELETE FROM people",
        "UPDATE people SET spend = 0",
        "WITH d AS (DELETE FROM people RETURNING *) SELECT * FROM d",
        "INSERT INTO people VALUES (999, 'x', 0) RETURNING id",
        "DROP TABLE people",
        "CREATE TABLE evil (a int)",
        "SELECT 1) AS a; COMMIT; DELETE FROM people; SELECT * FROM (SELECT 1",
        "SELECT 1) AS a; SET default_transaction_read_only = off; DELETE FROM people; --",
        "SELECT nextval('seq')",
    ]
    for q in hostile:
        r = srv.post(PP, {"query": q})
        check("PostgreSQL %r: refused (422), explained" % q[:50], r.status == 422 and r.json["detail"]
              and r.json["error"] == 'app "pg": the query cannot be read', r)
    # let through by a read-only transaction, undone by its rollback
    r = srv.post(PP, {"query": "SELECT lo_create(0) AS lo, set_config('default_transaction_read_only', 'off', false) AS ro"})
    check("PostgreSQL: lo_create and set_config run (read-only lets them)", r.status == 200, r)
    r = srv.post(PP, {"query": "SELECT 1) AS a; DELETE FROM people; --"})
    check("PostgreSQL: after set_config, a smuggled DELETE is still refused", r.status == 422, r)
    r = srv.post(PP, {"query": "SELECT id FROM people WHERE id = 1 FOR UPDATE"})
    check("PostgreSQL: SELECT ... FOR UPDATE is refused in the read-only transaction", r.status == 422, r)
    check("PostgreSQL: the rows are unchanged",
          psql("SELECT md5(string_agg(id || email || spend, ',' ORDER BY id)) FROM %s.people" % SCHEMA) == pg_before)
    check("PostgreSQL: the large object was rolled back", psql("SELECT COUNT(*) FROM pg_largeobject_metadata") == lo_before)
    check("PostgreSQL: the sequence never advanced", psql("SELECT last_value, is_called FROM %s.seq" % SCHEMA) == "1|f")
    check("PostgreSQL: no table was created",
          psql("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '%s'" % SCHEMA) == "1")
    r = srv.post("/api/v1/apps/pg_slow/preview", {"query": "SELECT pg_sleep(5) AS slept"})
    check("PostgreSQL: slower than statementTimeout (1 s): cancelled, said in words", r.status == 422
          and "sent nothing for 1 s" in r.json["error"], r)
    check("PostgreSQL: no statement of joey's is left running", psql(
        "SELECT COUNT(*) FROM pg_stat_activity WHERE query LIKE '%%joey_preview%%' AND pid <> pg_backend_pid()") == "0")
else:
    print("skipped: PostgreSQL checks (JOEY_PG_URL is not set)")

# ---- MySQL / MariaDB ----
if MY_URL:
    MP = "/api/v1/apps/my/preview"
    r = srv.post(MP, {"query": "SELECT id, email FROM %s ORDER BY id" % MY_T})
    check("MariaDB: columns and rows", r.status == 200 and r.json["columns"] == ["id", "email"]
          and r.json["rows"] == [["1", "a@example.com"], ["2", "b@example.com"], ["3", None]], r)
    before = mysql("SELECT COUNT(*), GROUP_CONCAT(email ORDER BY id) FROM %s" % MY_T)
    for q in ("DELETE FROM %s" % MY_T, "SELECT 1) AS a; DELETE FROM %s; SELECT * FROM (SELECT 1" % MY_T,
              "SELECT 1) AS a; SET SESSION TRANSACTION READ WRITE; DELETE FROM %s; --" % MY_T,
              "CREATE TABLE evil (a INT)", "INSERT INTO %s VALUES (9, 'x')" % MY_T):
        r = srv.post(MP, {"query": q})
        check("MariaDB %r: refused (422), explained" % q[:50], r.status == 422
              and r.json["error"] == 'app "my": the query cannot be read' and r.json["detail"], r)
    check("MariaDB: the rows are unchanged", mysql("SELECT COUNT(*), GROUP_CONCAT(email ORDER BY id) FROM %s" % MY_T) == before)
    check("MariaDB: no table was created", mysql("SHOW TABLES LIKE 'evil'") == "")
else:
    print("skipped: MariaDB checks (JOEY_MYSQL_URL is not set)")

srv.stop()
finish()
