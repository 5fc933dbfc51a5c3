#!/usr/bin/env python3
"""serve_preview_warehouse.py: the source editor's table list, table preview
(GET /api/v1/apps/{app}/tables) and query preview (POST /api/v1/apps/{app}/preview) on a
Snowflake app (SQL API v2, a programmatic access token) and a BigQuery app (jobs.query, a
service account) served by warehouse-fake over SQLite (tests/fakes/warehouse.c).

The tables are listed sorted; a table's first rows equal sqlite3's; NULL is null; a
BigQuery TIMESTAMP is ISO text; limits hold (rows capped at 50, columns at 100); an
unknown table is 404 naming it; a query runs as `SELECT * FROM (query) AS joey_preview
LIMIT n` (the fake's log shows it); a write or a second statement is 422 in plain words
with the database's words in the detail, and the data is unchanged; a table list the
warehouse refuses is 502 saying so (an injected fault)."""
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import (PROCS, TMP, JOEY, Server, Sim, check, finish, small_config, wait_for)  # noqa: E402

FAKE = os.path.join(os.path.dirname(JOEY), "warehouse-fake")
if not os.access(FAKE, os.X_OK):
    print("skipped: %s is not built" % FAKE)
    print("0 passed, 0 failed")
    sys.exit(0)

sim = Sim()
os.environ["BRAZE_KEY"] = "test-key"
dbdir = os.path.join(TMP, "wh")
os.makedirs(dbdir)
key, pub = os.path.join(TMP, "key.pem"), os.path.join(TMP, "pub.pem")
subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True, capture_output=True)
subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-out", pub], check=True, capture_output=True)
with open(key) as f:
    os.environ["E2E_BQ_KEY"] = f.read()

SF_DB, BQ_DB = os.path.join(dbdir, "SHOP.db"), os.path.join(dbdir, "crm.db")


def sqlite(db, q):
    return subprocess.run(["sqlite3", db, q], capture_output=True, text=True, check=True).stdout.strip()


sqlite(SF_DB, 'CREATE TABLE "USERS" ("ID" NUMBER(38,0), "EMAIL" VARCHAR, "NAME" VARCHAR);'
       'WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 60) '
       'INSERT INTO "USERS" SELECT i, \'u\' || i || \'@example.com\', CASE WHEN i % 7 = 0 THEN NULL ELSE \'User \' || i END FROM s;'
       'CREATE TABLE "ORDERS" ("USER_ID" NUMBER(38,0), "AMOUNT" NUMBER(10,2));'
       'INSERT INTO "ORDERS" VALUES (1, 10.5), (2, 3);'
       'CREATE TABLE "Mixed Case" ("x" VARCHAR); INSERT INTO "Mixed Case" VALUES (\'quoted\');')
sqlite(BQ_DB, "CREATE TABLE users (id INT64, email STRING, signup TIMESTAMP);"
       "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i < 60) "
       "INSERT INTO users SELECT i, 'b' || i || '@example.com', CASE WHEN i = 1 THEN '2024-01-02 03:04:05.678' END FROM s;"
       "CREATE TABLE orders (user_id INT64, amount NUMERIC); INSERT INTO orders VALUES (1, 10.5);")


def start_fake(name, args):
    port_file, log = os.path.join(TMP, name + ".port"), os.path.join(TMP, name + ".log")
    p = subprocess.Popen([FAKE, "--db-dir", dbdir, "--public-key", pub, "--port-file", port_file, "--max-lifetime",
                          "600", "--log-file", log, "--quiet"] + args)
    PROCS.append(p)
    wait_for(lambda: os.path.exists(port_file) and os.path.getsize(port_file) > 0)
    with open(port_file) as f:
        return "http://127.0.0.1:%s" % f.read().strip(), log


SF_URL, SF_LOG = start_fake("sf", ["--account", "xy12345.us-east-1", "--user", "joey", "--token", "good-pat",
                                   "--rows-per-partition", "7"])
BQ_URL, BQ_LOG = start_fake("bq", ["--mode", "bigquery", "--client-email", "joey@proj-1.iam.gserviceaccount.com",
                                   "--project", "proj-1", "--rows-per-partition", "7"])
extra = [
    {"class": "App", "id": "sf", "name": "Snowflake", "type": "snowflake",
     "options": {"account": "xy12345.us-east-1", "username": "joey", "password": "good-pat", "warehouse": "compute_wh",
                 "database": "shop", "endpoint": SF_URL}},
    {"class": "App", "id": "bq", "name": "BigQuery", "type": "bigquery",
     "options": {"project_id": "proj-1", "dataset": "crm", "client_email": "joey@proj-1.iam.gserviceaccount.com",
                 "private_key": "${E2E_BQ_KEY}", "endpoint": BQ_URL}},
]
cfg, _ = small_config(TMP, sim.url, n=5, extra_objects=extra)
state = os.path.join(TMP, "st", "state.db")
os.makedirs(os.path.dirname(state))
srv = Server(cfg, state)


def fault(url, spec):
    """One injected fault of warehouse-fake (tests/fakes/warehouse.c, --fault's SPEC)."""
    req = urllib.request.Request(url + "/_fake/faults", data=spec.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as f:
        return f.status


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def rows(db, q):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return [[None if c is None else str(c) for c in row] for row in con.execute(q)]
    finally:
        con.close()


# ---- Snowflake ----
r = srv.get("/api/v1/apps/sf/tables")
check("Snowflake: the schema's tables, sorted", r.status == 200 and r.json["tables"] == ["Mixed Case", "ORDERS", "USERS"]
      and r.json["type"] == "snowflake", r)
want = rows(SF_DB, 'SELECT "ID", "EMAIL", "NAME" FROM "USERS" LIMIT 10')
r = srv.get("/api/v1/apps/sf/tables?table=USERS")
check("Snowflake: a table's columns and first 10 rows (the default) equal sqlite3's", r.status == 200
      and r.json["columns"] == ["ID", "EMAIL", "NAME"] and r.json["rows"] == want and r.json["key_guess"] == "ID", r)
check("Snowflake: NULL is null", r.status == 200 and r.json["rows"][6][2] is None, r)
r = srv.get("/api/v1/apps/sf/tables?table=USERS&limit=1000")
check("Snowflake: limit capped at 50 across result partitions of 7", r.status == 200 and len(r.json["rows"]) == 50
      and r.json["rows"][49][0] == "50", r)
r = srv.get("/api/v1/apps/sf/tables?table=Mixed%20Case")
check("Snowflake: a mixed-case name is quoted", r.status == 200 and r.json["rows"] == [["quoted"]], r)
r = srv.get("/api/v1/apps/sf/tables?table=users")
check("Snowflake: an unknown table (names are case-sensitive): 404 naming it", r.status == 404 and "users" in r.raw, r)
with open(SF_LOG) as f:
    log = f.read()
check("Snowflake: the table is read as SELECT * FROM \"USERS\" LIMIT n", 'SELECT * FROM \\"USERS\\" LIMIT 50' in log, log[-2000:])

r = srv.post("/api/v1/apps/sf/preview", {"query": 'SELECT "ID", "EMAIL" AS "Mail" FROM "USERS" WHERE "ID" <= 3 ORDER BY "ID";'})
check("Snowflake: a query's columns and rows", r.status == 200 and r.json["columns"] == ["ID", "Mail"]
      and r.json["rows"] == [["1", "u1@example.com"], ["2", "u2@example.com"], ["3", "u3@example.com"]]
      and r.json["columns_cut"] is False, r)
with open(SF_LOG) as f:
    log = f.read()
check("Snowflake: the query runs as a derived table", "AS joey_preview LIMIT 20" in log, log[-2000:])
wide = "SELECT " + ", ".join("%d AS c%d" % (i, i) for i in range(120))
r = srv.post("/api/v1/apps/sf/preview", {"query": wide})
check("Snowflake: 120 columns: the first 100, and columns_cut", r.status == 200 and len(r.json["columns"]) == 100
      and len(r.json["rows"][0]) == 100 and r.json["columns_cut"] is True, r)
before = digest(SF_DB)
for q in ('DELETE FROM "USERS"', 'UPDATE "USERS" SET "NAME" = NULL', 'SELECT 1) AS x; DELETE FROM "USERS"; SELECT (1',
          'DROP TABLE "USERS"', 'SELECT nope FROM "USERS"'):
    r = srv.post("/api/v1/apps/sf/preview", {"query": q})
    check("Snowflake: %r is 422 in plain words" % q[:40], r.status == 422
          and r.json["error"] == 'app "sf": the query cannot be read' and r.json["detail"] and r.json["hint"], r)
check("Snowflake: the database is unchanged", digest(SF_DB) == before
      and sqlite(SF_DB, 'SELECT count(*) FROM "USERS"') == "60")

fault(SF_URL, "status=403,on=submit,match=INFORMATION_SCHEMA")
r = srv.get("/api/v1/apps/sf/tables")
check("Snowflake: a table list the warehouse refuses: 502 saying so, its words in the detail", r.status == 502
      and r.json["error"] == 'cannot list its tables: app "sf": query failed'
      and r.json["detail"] == "HTTP 403: injected fault (code 000000)" and r.json["hint"], r)

# ---- BigQuery ----
r = srv.get("/api/v1/apps/bq/tables")
check("BigQuery: the dataset's tables, sorted", r.status == 200 and r.json["tables"] == ["orders", "users"]
      and r.json["type"] == "bigquery", r)
r = srv.get("/api/v1/apps/bq/tables?table=users&limit=3")
check("BigQuery: a table's first rows; a TIMESTAMP as ISO text; NULL is null", r.status == 200
      and r.json["columns"] == ["id", "email", "signup"]
      and r.json["rows"] == [["1", "b1@example.com", "2024-01-02T03:04:05.678Z"], ["2", "b2@example.com", None],
                             ["3", "b3@example.com", None]], r)
r = srv.get("/api/v1/apps/bq/tables?table=users&limit=1000")
check("BigQuery: limit capped at 50 across pages of 7", r.status == 200 and len(r.json["rows"]) == 50, r)
r = srv.get("/api/v1/apps/bq/tables?table=user")
check("BigQuery: an unknown table: 404 naming it", r.status == 404 and "user" in r.raw, r)
r = srv.post("/api/v1/apps/bq/preview", {"query": "SELECT user_id, amount * 2 AS twice FROM orders", "limit": 5})
check("BigQuery: a query's columns and rows", r.status == 200 and r.json["columns"] == ["user_id", "twice"]
      and len(r.json["rows"]) == 1 and r.json["rows"][0][0] == "1" and float(r.json["rows"][0][1]) == 21.0, r)
with open(BQ_LOG) as f:
    log = f.read()
check("BigQuery: the query runs as a derived table", "AS joey_preview LIMIT 5" in log, log[-2000:])
check("BigQuery: the tables come from tables.list", "/datasets/crm/tables" in log, log[-2000:])
before = digest(BQ_DB)
for q in ("DELETE FROM users WHERE true", "UPDATE users SET email = NULL WHERE true",
          "SELECT 1) AS x; DELETE FROM users WHERE true; SELECT (1", "SELECT nope FROM users"):
    r = srv.post("/api/v1/apps/bq/preview", {"query": q})
    check("BigQuery: %r is 422 in plain words" % q[:40], r.status == 422
          and r.json["error"] == 'app "bq": the query cannot be read' and r.json["detail"], r)
check("BigQuery: the dataset is unchanged", digest(BQ_DB) == before and sqlite(BQ_DB, "SELECT count(*) FROM users") == "60")
print(json.dumps({"sf_log_lines": sum(1 for _ in open(SF_LOG)), "bq_log_lines": sum(1 for _ in open(BQ_LOG))}))
finish()
