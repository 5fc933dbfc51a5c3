#!/usr/bin/env python3
"""serve_preview_warehouses.py: the source editor's previews (docs/api.md "Query previews")
for warehouse apps against the real binary: a ClickHouse app (JOEY_CLICKHOUSE_URL) and a
redshift app pointed at the test PostgreSQL (JOEY_PG_URL) with JOEY_REDSHIFT_STRICT=1, so
every statement the preview sends must be one Redshift runs (the server aborts otherwise).

For each: the app's tables, a table's columns and first rows, a query's columns and first
rows (equal to what the database itself answers), and write attempts (DML, DDL, a second
statement smuggled after a closing parenthesis, settings) refused with a plain message
and the data unchanged. Each part is skipped when its server URL is not set."""
import os
import subprocess
import sys
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import (TMP, Server, Sim, check, finish, small_config)  # noqa: E402

sim = Sim()
os.environ["BRAZE_KEY"] = "test-key"
os.environ["JOEY_REDSHIFT_STRICT"] = "1"
PG_URL = os.environ.get("JOEY_PG_URL")
CH_URL = os.environ.get("JOEY_CLICKHOUSE_URL")
if os.environ.get("CI") == "true" and not (PG_URL and CH_URL):
    print("FAIL: JOEY_PG_URL and JOEY_CLICKHOUSE_URL must be set when CI=true")
    sys.exit(1)
NAME = "e2e_pw_%d" % os.getpid()
extra = []
import atexit  # noqa: E402

if PG_URL:
    u = urllib.parse.urlsplit(PG_URL)
    os.environ["E2E_RS_PASSWORD"] = urllib.parse.unquote(u.password or "")
    extra.append({"class": "App", "id": "rs", "name": "Redshift", "type": "redshift",
                  "options": {"host": u.hostname, "port": u.port or 5432, "database": u.path.lstrip("/"),
                              "user": urllib.parse.unquote(u.username or ""), "password": "${E2E_RS_PASSWORD}",
                              "schema": NAME}})


def psql(q):
    return subprocess.run(["psql", PG_URL, "-qAtX", "-v", "ON_ERROR_STOP=1", "-c", q], capture_output=True,
                          text=True, check=True).stdout.strip()


if CH_URL:
    c = urllib.parse.urlsplit(CH_URL)
    CH_USER, CH_PW = urllib.parse.unquote(c.username or ""), urllib.parse.unquote(c.password or "")
    os.environ["E2E_CH_PASSWORD"] = CH_PW
    extra.append({"class": "App", "id": "ch", "name": "ClickHouse", "type": "clickhouse",
                  "options": {"host": "http://" + c.hostname, "port": c.port, "database": NAME,
                              "user": CH_USER, "password": "${E2E_CH_PASSWORD}"}})


def chq(q, db="default"):
    req = urllib.request.Request("http://%s:%d/?database=%s" % (c.hostname, c.port, db), data=q.encode(),
                                 headers={"X-ClickHouse-User": CH_USER, "X-ClickHouse-Key": CH_PW})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode().strip()


if PG_URL:
    atexit.register(lambda: subprocess.run(["psql", PG_URL, "-qAt", "-c", "DROP SCHEMA IF EXISTS %s CASCADE" % NAME],
                                           capture_output=True))
    psql("CREATE SCHEMA %s; CREATE TABLE %s.people (id int PRIMARY KEY, email varchar(100), spend numeric(10,2));"
         "INSERT INTO %s.people SELECT i, 'p' || i || '@example.com', i * 1.5 FROM generate_series(1, 40) i;"
         "CREATE TABLE %s.orders (uid int, amount int);" % (NAME, NAME, NAME, NAME))
if CH_URL:
    def ch_drop():
        try:
            chq("DROP DATABASE IF EXISTS %s" % NAME)
        except Exception:  # noqa: BLE001
            pass
    atexit.register(ch_drop)
    chq("CREATE DATABASE %s" % NAME)
    chq("CREATE TABLE people (id Int64, email Nullable(String), note String) ENGINE = MergeTree ORDER BY id", NAME)
    chq("INSERT INTO people VALUES (1, 'a@example.com', 'tab\\there'), (2, NULL, ''), (3, 'c@example.com', 'x')", NAME)
    chq("CREATE TABLE orders (uid Int64, amount Float64) ENGINE = MergeTree ORDER BY uid", NAME)

cfg, db = small_config(TMP, sim.url, n=5, extra_objects=extra)
state = os.path.join(TMP, "st", "state.db")
os.makedirs(os.path.dirname(state))
srv = Server(cfg, state)

# ---- ClickHouse ----
if CH_URL:
    r = srv.get("/api/v1/apps/ch/tables")
    check("ClickHouse: the database's tables", r.status == 200 and r.json["tables"] == ["orders", "people"]
          and r.json["type"] == "clickhouse", r)
    r = srv.get("/api/v1/apps/ch/tables?table=people&limit=2")
    check("ClickHouse: a table's columns and first rows", r.status == 200
          and r.json["columns"] == ["id", "email", "note"] and len(r.json["rows"]) == 2, r)
    r = srv.get("/api/v1/apps/ch/tables?table=people&limit=50")
    check("ClickHouse: values unescaped, NULL as null", r.status == 200 and
          sorted(r.json["rows"]) == [["1", "a@example.com", "tab\there"], ["2", None, ""], ["3", "c@example.com", "x"]], r)
    r = srv.get("/api/v1/apps/ch/tables?table=" + urllib.parse.quote("people; DROP TABLE people"))
    check("ClickHouse: SQL as a table name: 404 naming it", r.status == 404 and "has no table" in r.json["error"], r)
    r = srv.post("/api/v1/apps/ch/preview", {"query": "SELECT id, email AS mail FROM people ORDER BY id", "limit": 2})
    check("ClickHouse: a query's columns and first rows", r.status == 200 and r.json["columns"] == ["id", "mail"]
          and r.json["rows"] == [["1", "a@example.com"], ["2", None]] and r.json["columns_cut"] is False, r)
    r = srv.post("/api/v1/apps/ch/preview", {"query": "SELECT nope FROM people"})
    check("ClickHouse: a wrong column: 422, the server's words in the detail", r.status == 422
          and r.json["error"] == 'app "ch": the query cannot be read' and "nope" in (r.json["detail"] or ""), r)
    before = chq("SELECT count(), sum(id) FROM people", NAME)
    for q in ("INSERT INTO people (id, note) VALUES (9, 'z')", "DROP TABLE people", "CREATE TABLE evil (a Int8) ENGINE = Memory",
              "SELECT 1) AS a; INSERT INTO people (id, note) VALUES (9, 'z'); SELECT * FROM (SELECT 1",
              "SELECT 1 AS one) AS a; DROP TABLE orders; --",
              "SELECT * FROM people SETTINGS readonly = 0",
              "SELECT * FROM people) AS a SETTINGS readonly = 0; DROP TABLE orders; --"):
        r = srv.post("/api/v1/apps/ch/preview", {"query": q})
        check("ClickHouse %r: refused (422), explained" % q[:50], r.status == 422 and r.json["detail"]
              and r.json["error"] == 'app "ch": the query cannot be read' and r.json["hint"], r)
    check("ClickHouse: the rows are unchanged", chq("SELECT count(), sum(id) FROM people", NAME) == before)
    check("ClickHouse: no table was created or dropped",
          chq("SELECT name FROM system.tables WHERE database = '%s' ORDER BY name" % NAME) == "orders\npeople")
else:
    print("skipped: ClickHouse checks (JOEY_CLICKHOUSE_URL is not set)")

# ---- Redshift (PostgreSQL in strict mode) ----
if PG_URL:
    r = srv.get("/api/v1/apps/rs/tables")
    check("Redshift: the schema's tables", r.status == 200 and r.json["tables"] == ["orders", "people"]
          and r.json["type"] == "redshift", r)
    r = srv.get("/api/v1/apps/rs/tables?table=people&limit=3")
    every = [line.split("|") for line in psql("SELECT id, email, spend FROM %s.people" % NAME).splitlines()]
    check("Redshift: a table's columns and first rows (rows of the table, as psql prints them)", r.status == 200
          and r.json["columns"] == ["id", "email", "spend"] and len(r.json["rows"]) == 3
          and all(row in every for row in r.json["rows"]), r)
    r = srv.post("/api/v1/apps/rs/preview", {"query": "SELECT id, email, spend FROM people ORDER BY id", "limit": 5})
    want = [line.split("|") for line in psql("SELECT id, email, spend FROM %s.people ORDER BY id LIMIT 5" % NAME).splitlines()]
    check("Redshift: a query's columns and rows equal psql's", r.status == 200
          and r.json["columns"] == ["id", "email", "spend"] and r.json["rows"] == want, r)
    before = psql("SELECT md5(string_agg(id || email || spend, ',' ORDER BY id)) FROM %s.people" % NAME)
    for q in ("DELETE FROM people", "UPDATE people SET spend = 0", "DROP TABLE people", "CREATE TABLE evil (a int)",
              "SELECT 1) AS a; COMMIT; DELETE FROM people; SELECT * FROM (SELECT 1",
              "SELECT 1) AS a; DELETE FROM people; --"):
        r = srv.post("/api/v1/apps/rs/preview", {"query": q})
        check("Redshift %r: refused (422), explained" % q[:50], r.status == 422 and r.json["detail"]
              and r.json["error"] == 'app "rs": the query cannot be read', r)
    check("Redshift: the rows are unchanged",
          psql("SELECT md5(string_agg(id || email || spend, ',' ORDER BY id)) FROM %s.people" % NAME) == before)
    check("Redshift: no table was created or dropped",
          psql("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '%s'" % NAME) == "2")
else:
    print("skipped: Redshift checks (JOEY_PG_URL is not set)")

check("the server is still running (strict mode never aborted)", srv.proc.poll() is None, srv.read_log()[-2000:])
srv.stop()
finish()
