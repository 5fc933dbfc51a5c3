"""The warehouse a scenario runs over: SQLite file, CSV files, PostgreSQL schema or
MariaDB database. Every step rewrites the tables from the in-memory model (small data),
and the reference reads them back with plain SQL (or, for CSV, the text written)."""
import csv
import io
import os
import sqlite3
import urllib.parse

TABLES = {
    "users": [("id", "int"), ("email", "text"), ("name", "text"), ("city", "text"), ("score", "real"),
              ("age", "int"), ("vip", "int"), ("signup", "text"), ("updated_at", "int")],
    "purchases": [("pid", "int"), ("user_id", "int"), ("amount", "real"), ("qty", "int"),
                  ("category", "text"), ("created_at", "int"), ("updated_at", "int")],
    "profiles": [("uid", "int"), ("tier", "text"), ("nickname", "text"), ("updated_at", "int")],
}
KEY = {"users": "id", "purchases": "pid", "profiles": "uid"}
_counter = [0]


class Skip(Exception):
    pass


def unavailable(source):
    if source == "postgres":
        if not os.environ.get("JOEY_PG_URL"):
            return "JOEY_PG_URL is not set (scripts/test.sh sets it when it starts its servers)"
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            return "python3-psycopg2 is not installed (run with /usr/bin/python3 or apt-get install python3-psycopg2)"
    if source == "mysql":
        if not os.environ.get("JOEY_MYSQL_URL"):
            return "JOEY_MYSQL_URL is not set (scripts/test.sh sets it when it starts its servers)"
        try:
            import pymysql  # noqa: F401
        except ImportError:
            return "python3-pymysql is not installed (run with /usr/bin/python3 or apt-get install python3-pymysql)"
    if source not in ("sqlite", "csv", "postgres", "mysql"):
        return "unknown source type %s" % source
    return None


def _url(env):
    u = urllib.parse.urlparse(os.environ[env])
    return {"host": u.hostname, "port": u.port, "user": urllib.parse.unquote(u.username or ""),
            "password": urllib.parse.unquote(u.password or ""), "database": u.path.lstrip("/")}


class Base:
    password = ""
    source_type = None

    def app_for(self, table):
        return "db"

    def close(self):
        pass

    def read(self, tables):
        out = {}
        for t, cols in TABLES.items():
            names = [c for c, _ in cols]
            out[t] = [dict(zip(names, r)) for r in self.select(t, names)]
        return out


class Placeholder(Base):
    """Renders a reproduction's config with the paths/URLs left as placeholders."""

    def __init__(self, source):
        self.source_type = source

    def apps(self):
        if self.source_type == "csv":
            return [{"class": "App", "id": "csv_" + t, "type": "csv", "options": {"file": "/ABSOLUTE/PATH/%s.csv" % t}}
                    for t in TABLES]
        if self.source_type == "sqlite":
            return [{"class": "App", "id": "db", "type": "sqlite", "options": {"file": "/ABSOLUTE/PATH/warehouse.db"}}]
        return [{"class": "App", "id": "db", "type": self.source_type,
                 "options": {"host": "127.0.0.1", "port": 5432, "database": "DB", "user": "USER",
                             "password": "${DIFF_DB_PASSWORD}"}}]

    def app_for(self, table):
        return "csv_" + table if self.source_type == "csv" else "db"


class SQLite(Base):
    source_type = "sqlite"

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "warehouse.db")

    def apps(self):
        return [{"class": "App", "id": "db", "type": "sqlite", "options": {"file": self.path}}]

    def create(self, tables):
        db = sqlite3.connect(self.path)
        for t, cols in TABLES.items():
            ty = {"int": "INTEGER", "real": "REAL", "text": "TEXT"}
            db.execute("CREATE TABLE %s (%s)" % (t, ", ".join(
                "%s %s%s" % (c, ty[k], " PRIMARY KEY" if c == KEY[t] else "") for c, k in cols)))
        db.commit()
        db.close()
        self.write(tables, set())

    def write(self, tables, corrupt):
        db = sqlite3.connect(self.path, timeout=30)
        for t, cols in TABLES.items():
            names = [c for c, _ in cols]
            db.execute("DELETE FROM %s" % t)
            db.executemany("INSERT INTO %s VALUES (%s)" % (t, ",".join("?" * len(names))),
                           [[r.get(c) for c in names] for r in tables[t]])
        db.commit()
        db.close()

    def select(self, t, names):
        db = sqlite3.connect(self.path, timeout=30)
        rows = db.execute("SELECT %s FROM %s ORDER BY %s" % (",".join(names), t, KEY[t])).fetchall()
        db.close()
        return rows


def csv_cell(v):
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return repr(v)
    return str(v)


class CSV(Base):
    source_type = "csv"

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "csv")
        os.makedirs(self.dir)
        self.tables = None

    def apps(self):
        return [{"class": "App", "id": "csv_" + t, "type": "csv",
                 "options": {"file": os.path.join(self.dir, t + ".csv")}} for t in TABLES]

    def app_for(self, table):
        return "csv_" + table

    def create(self, tables):
        self.write(tables, set())

    def write(self, tables, corrupt):
        self.tables = tables
        for t, cols in TABLES.items():
            names = [c for c, _ in cols]
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(names)
            lines = [buf.getvalue().encode()]
            for r in tables[t]:
                buf = io.StringIO()
                w = csv.writer(buf, lineterminator="\n")
                w.writerow([csv_cell(r.get(c)) for c in names])
                line = buf.getvalue().encode()
                if t == "users" and r["id"] in corrupt:
                    if r["id"] % 2:
                        line = ("%d,bad\xff" % r["id"]).encode("latin-1") + b"@x.com" + b"," * (len(names) - 2) + b"\n"
                    else:
                        line = ("%d,%s\n" % (r["id"], csv_cell(r.get("email")))).encode()  # cut short
                lines.append(line)
            with open(os.path.join(self.dir, t + ".csv"), "wb") as f:
                f.write(b"".join(lines))

    def read(self, tables):
        # CSV has no types and no NULL: the reference sees the text written, "" as NULL,
        # numbers as the numbers written.
        out = {}
        for t, cols in TABLES.items():
            rows = []
            for r in self.tables[t]:
                d = {}
                for c, _ in cols:
                    v = r.get(c)
                    if isinstance(v, str) and v == "":
                        v = None
                    d[c] = v
                rows.append(d)
            out[t] = sorted(rows, key=lambda r: r[KEY[t]])
        return out


class Postgres(Base):
    source_type = "postgres"

    def __init__(self, tmp):
        import psycopg2
        self.u = _url("JOEY_PG_URL")
        self.password = self.u["password"]
        _counter[0] += 1
        self.schema = "diff_%d_%d" % (os.getpid(), _counter[0])
        self.db = psycopg2.connect(host=self.u["host"], port=self.u["port"], user=self.u["user"],
                                   password=self.u["password"], dbname=self.u["database"])
        self.db.autocommit = False

    def apps(self):
        return [{"class": "App", "id": "db", "type": "postgres",
                 "options": {"host": self.u["host"], "port": self.u["port"], "database": self.u["database"],
                             "user": self.u["user"], "password": "${DIFF_DB_PASSWORD}", "schema": self.schema}}]

    def create(self, tables):
        ty = {"int": "BIGINT", "real": "DOUBLE PRECISION", "text": "TEXT"}
        with self.db.cursor() as c:
            c.execute("CREATE SCHEMA %s" % self.schema)
            for t, cols in TABLES.items():
                c.execute("CREATE TABLE %s.%s (%s)" % (self.schema, t, ", ".join(
                    "%s %s%s" % (n, ty[k], " PRIMARY KEY" if n == KEY[t] else "") for n, k in cols)))
        self.db.commit()
        self.write(tables, set())

    def write(self, tables, corrupt):
        with self.db.cursor() as c:
            for t, cols in TABLES.items():
                names = [n for n, _ in cols]
                c.execute("DELETE FROM %s.%s" % (self.schema, t))
                for r in tables[t]:
                    c.execute("INSERT INTO %s.%s VALUES (%s)" % (self.schema, t, ",".join(["%s"] * len(names))),
                              [r.get(n) for n in names])
        self.db.commit()

    def select(self, t, names):
        with self.db.cursor() as c:
            c.execute("SELECT %s FROM %s.%s ORDER BY %s" % (",".join(names), self.schema, t, KEY[t]))
            rows = c.fetchall()
        self.db.commit()
        return rows

    def close(self):
        try:
            with self.db.cursor() as c:
                c.execute("DROP SCHEMA IF EXISTS %s CASCADE" % self.schema)
            self.db.commit()
            self.db.close()
        except Exception:
            pass


class MySQL(Base):
    source_type = "mysql"

    def __init__(self, tmp):
        import pymysql
        self.u = _url("JOEY_MYSQL_URL")
        self.password = self.u["password"]
        _counter[0] += 1
        self.dbname = "joey_case_diff_%d_%d" % (os.getpid(), _counter[0])
        self.db = pymysql.connect(host=self.u["host"], port=self.u["port"], user=self.u["user"],
                                  password=self.u["password"], charset="utf8mb4", autocommit=False)
        with self.db.cursor() as c:
            c.execute("CREATE DATABASE %s CHARACTER SET utf8mb4" % self.dbname)
            c.execute("USE %s" % self.dbname)

    def apps(self):
        return [{"class": "App", "id": "db", "type": "mysql",
                 "options": {"host": self.u["host"], "port": self.u["port"], "database": self.dbname,
                             "user": self.u["user"], "password": "${DIFF_DB_PASSWORD}"}}]

    def create(self, tables):
        ty = {"int": "BIGINT", "real": "DOUBLE", "text": "TEXT"}
        with self.db.cursor() as c:
            for t, cols in TABLES.items():
                c.execute("CREATE TABLE %s (%s) CHARACTER SET utf8mb4" % (t, ", ".join(
                    "%s %s%s" % (n, ty[k], " PRIMARY KEY" if n == KEY[t] else "") for n, k in cols)))
        self.db.commit()
        self.write(tables, set())

    def write(self, tables, corrupt):
        with self.db.cursor() as c:
            for t, cols in TABLES.items():
                names = [n for n, _ in cols]
                c.execute("DELETE FROM %s" % t)
                for r in tables[t]:
                    c.execute("INSERT INTO %s VALUES (%s)" % (t, ",".join(["%s"] * len(names))),
                              [r.get(n) for n in names])
        self.db.commit()

    def select(self, t, names):
        with self.db.cursor() as c:
            c.execute("SELECT %s FROM %s ORDER BY %s" % (",".join(names), t, KEY[t]))
            rows = c.fetchall()
        self.db.commit()
        return rows

    def close(self):
        try:
            with self.db.cursor() as c:
                c.execute("DROP DATABASE IF EXISTS %s" % self.dbname)
            self.db.close()
        except Exception:
            pass


def make(source, tmp):
    return {"sqlite": SQLite, "csv": CSV, "postgres": Postgres, "mysql": MySQL}[source](tmp)
