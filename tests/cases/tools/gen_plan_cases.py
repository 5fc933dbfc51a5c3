#!/usr/bin/env python3
"""gen_plan_cases.py: writes the generated part of tests/cases/plan/.

Each case directory it writes is self-contained data (config/, data.sql, state.json,
env, options.json); the runner (tests/unit/engine/cases.c) needs no generator.
Hand-written cases live beside them and are not touched. expected.json is written by
running the suite once with JOEY_UPDATE_EXPECTED=1 and then *reviewed by hand*.
"""
import json, os, shutil, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "plan")
NOW = "JOEY_NOW=2026-11-24T12:00:00Z\n"

USERS_SQL = """
CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT, name TEXT, age INTEGER,
  score REAL, vip INTEGER, signup TEXT, city TEXT);
INSERT INTO users VALUES
 (1,'ann@example.com','Ann',34,7.5,1,'2026-11-20T10:00:00Z','Paris'),
 (2,'bob@test.org','Bob',17,2.25,0,'2026-06-01T00:00:00Z','Berlin'),
 (3,NULL,'Cy',NULL,NULL,NULL,NULL,NULL),
 (10,'dee@example.com','dee',51,9,1,'2027-01-10T00:00:00Z','paris');
CREATE TABLE purchases (id INTEGER PRIMARY KEY, user_id INTEGER, amount REAL, item TEXT, at TEXT);
INSERT INTO purchases (user_id, amount, item, at) VALUES
 (1, 10, 'pen', '2026-01-01T00:00:00Z'),
 (1, 30, 'book', '2026-03-01T00:00:00Z'),
 (1, 20, 'lamp', '2026-02-01T00:00:00Z'),
 (2, 5, 'gum', '2026-05-05T00:00:00Z'),
 (10, 100, 'desk', '2026-04-04T00:00:00Z'),
 (10, NULL, 'gift', '2026-04-05T00:00:00Z'),
 (99, 1, 'orphan', '2026-01-01T00:00:00Z');
"""

def base_objects():
    return [
        {"class": "App", "id": "db", "type": "sqlite", "options": {"file": "data.db"}},
        {"class": "App", "id": "braze", "type": "braze",
         "options": {"apiKey": "TEST_KEY", "restEndpoint": "http://127.0.0.1:4710"}},
        {"class": "Model", "id": "users", "name": "Users", "type": "profile"},
        {"class": "Source", "id": "users_src", "type": "sqlite-import-table", "appId": "db",
         "modelId": "users", "options": {"table": "users"}, "mapping": {"id": "user_id"}},
        {"class": "Property", "id": "user_id", "type": "integer", "unique": True,
         "sourceId": "users_src", "options": {"column": "id"}},
    ]

def prop(pid, typ, column, src="users_src", agg="exact", sort=None, filters=None, is_array=False):
    o = {"class": "Property", "id": pid, "type": typ, "sourceId": src,
         "options": {"column": column, "aggregationMethod": agg}}
    if sort:
        o["options"]["sortColumn"] = sort
    if filters:
        o["filters"] = filters
    if is_array:
        o["isArray"] = True
    return o

PURCHASES_SRC = {"class": "Source", "id": "purchases_src", "type": "sqlite-import-table",
                 "appId": "db", "modelId": "users", "options": {"table": "purchases"},
                 "mapping": {"user_id": "user_id"}}

def dest(did, mapping, mode="sync", collection="model", group=None, groups=None):
    o = {"class": "Destination", "id": did, "type": "braze-export-users", "appId": "braze",
         "modelId": "users", "syncMode": mode, "collection": collection,
         "mapping": dict({"external_id": "user_id"}, **mapping)}
    if group:
        o["groupId"] = group
    if groups:
        o["destinationGroupMemberships"] = groups
    return o

def write_case(name, objects, sql=USERS_SQL, state=None, env=NOW, options=None):
    d = os.path.join(ROOT, name)
    if os.path.exists(os.path.join(d, "config")):
        shutil.rmtree(os.path.join(d, "config"))
    os.makedirs(os.path.join(d, "config"), exist_ok=True)
    with open(os.path.join(d, "config", "config.json"), "w") as f:
        json.dump(objects, f, indent=2)
        f.write("\n")
    with open(os.path.join(d, "data.sql"), "w") as f:
        f.write(sql.lstrip())
    for fn, content in (("state.json", state), ("options.json", options)):
        p = os.path.join(d, fn)
        if content is None:
            if os.path.exists(p):
                os.remove(p)
            continue
        with open(p, "w") as f:
            json.dump(content, f, indent=2)
            f.write("\n")
    with open(os.path.join(d, "env"), "w") as f:
        f.write(env)

def main():
    # one case per aggregation method, on the purchases source
    for agg, column, sort, typ in [
        ("exact", "item", None, "string"),
        ("count", "amount", None, "integer"),
        ("sum", "amount", None, "float"),
        ("average", "amount", None, "float"),
        ("min", "amount", None, "float"),
        ("max", "amount", None, "float"),
        ("most recent value", "item", "at", "string"),
        ("least recent value", "item", "at", "string"),
    ]:
        objs = base_objects() + [PURCHASES_SRC, prop("p", typ, column, "purchases_src", agg, sort),
                                 dest("d", {"value": "p"})]
        write_case("agg_" + agg.replace(" ", "_"), objs)

    # exact with a sort column and an array property
    objs = base_objects() + [PURCHASES_SRC,
                             prop("first_item", "string", "item", "purchases_src", "exact", "at"),
                             prop("items", "string", "item", "purchases_src", "exact", "at", is_array=True),
                             dest("d", {"first_item": "first_item", "items": "items"})]
    write_case("agg_exact_sorted_and_array", objs)

    # property filters
    objs = base_objects() + [PURCHASES_SRC,
                             prop("big", "integer", "amount", "purchases_src", "count",
                                  filters=[{"key": "amount", "op": "gte", "match": 20}]),
                             prop("not_pen_sum", "float", "amount", "purchases_src", "sum",
                                  filters=[{"key": "item", "op": "ne", "match": "pen"}]),
                             prop("with_o", "integer", "id", "purchases_src", "count",
                                  filters=[{"key": "item", "op": "substring", "match": "O"}]),
                             dest("d", {"big": "big", "not_pen_sum": "not_pen_sum", "with_o": "with_o"})]
    write_case("property_filters", objs)

    # text filters compare case-sensitively on every backend ("PEN" is not "pen")
    objs = base_objects() + [PURCHASES_SRC,
                             prop("pens", "integer", "id", "purchases_src", "count",
                                  filters=[{"key": "item", "op": "eq", "match": "PEN"}]),
                             prop("not_pen", "integer", "id", "purchases_src", "count",
                                  filters=[{"key": "item", "op": "ne", "match": "PEN"}]),
                             prop("in_list", "integer", "id", "purchases_src", "count",
                                  filters=[{"key": "item", "op": "in", "match": ["BOOK", "lamp"]}]),
                             dest("d", {"pens": "pens", "not_pen": "not_pen", "in_list": "in_list"})]
    write_case("filter_text_case", objs)

    # one case per group operator: destination tracks the group, plan lists members
    users_props = [prop("email", "email", "email"), prop("name", "string", "name"),
                   prop("age", "integer", "age"), prop("score", "float", "score"),
                   prop("vip", "boolean", "vip"), prop("signup", "date", "signup")]
    rules = [
        ("exists", {"propertyId": "email", "op": "exists"}),
        ("notExists", {"propertyId": "email", "op": "notExists"}),
        ("eq_string", {"propertyId": "name", "op": "eq", "match": "Ann"}),
        ("ne_string", {"propertyId": "name", "op": "ne", "match": "Ann"}),
        ("eq_boolean", {"propertyId": "vip", "op": "eq", "match": True}),
        ("gt_integer", {"propertyId": "age", "op": "gt", "match": 34}),
        ("gte_integer", {"propertyId": "age", "op": "gte", "match": 34}),
        ("lt_float", {"propertyId": "score", "op": "lt", "match": 7.5}),
        ("lte_float", {"propertyId": "score", "op": "lte", "match": 7.5}),
        ("like", {"propertyId": "email", "op": "like", "match": "%@example.com"}),
        ("notLike", {"propertyId": "email", "op": "notLike", "match": "%@example.com"}),
        ("iLike", {"propertyId": "name", "op": "iLike", "match": "D%"}),
        ("notILike", {"propertyId": "name", "op": "notILike", "match": "d%"}),
        ("startsWith", {"propertyId": "name", "op": "startsWith", "match": "B"}),
        ("endsWith", {"propertyId": "email", "op": "endsWith", "match": ".org"}),
        ("substring", {"propertyId": "email", "op": "substring", "match": "example"}),
        ("notSubstring", {"propertyId": "email", "op": "notSubstring", "match": "example"}),
        ("gt_date", {"propertyId": "signup", "op": "gt", "match": "2026-07-01T00:00:00Z"}),
        ("relative_gt", {"propertyId": "signup", "op": "relative_gt", "relativeMatchNumber": 30,
                         "relativeMatchUnit": "days", "relativeMatchDirection": "subtract"}),
        ("relative_lt", {"propertyId": "signup", "op": "relative_lt", "relativeMatchNumber": 2,
                         "relativeMatchUnit": "months", "relativeMatchDirection": "add"}),
    ]
    for name, rule in rules:
        objs = base_objects() + users_props + [
            {"class": "Group", "id": "g", "name": "G", "modelId": "users", "rules": [rule]},
            dest("d", {"name": "name"}, collection="group", group="g")]
        write_case("rule_" + name, objs)

    # match any vs all
    for mt in ("all", "any"):
        objs = base_objects() + users_props + [
            {"class": "Group", "id": "g", "name": "G", "modelId": "users", "matchType": mt,
             "rules": [{"propertyId": "vip", "op": "eq", "match": True},
                       {"propertyId": "age", "op": "lt", "match": 18}]},
            dest("d", {"name": "name"}, collection="group", group="g")]
        write_case("group_match_" + mt, objs)

    # sync modes against a prior state: 1 unchanged, 2 changed, 3 new, 10 new, 7 gone
    def prior(did, in_scope=True):
        return [
            {"destination": did, "key": 1, "payload": {"attributes": {"email": "ann@example.com", "external_id": "1", "name": "Ann"}, "groups": ["VIP"]}, "in_scope": in_scope},
            {"destination": did, "key": 2, "payload": {"attributes": {"email": "bob@old.org", "external_id": "2", "name": "Bob"}, "groups": ["VIP"]}},
            {"destination": did, "key": 7, "payload": {"attributes": {"email": "gone@example.com", "external_id": "7", "name": "Gone"}, "groups": ["VIP"]}},
        ]
    vip = {"class": "Group", "id": "vip", "name": "VIP", "modelId": "users",
           "rules": [{"propertyId": "vip", "op": "eq", "match": True}]}
    for mode in ("sync", "additive", "enrich"):
        objs = base_objects() + users_props + [vip, dest("d", {"email": "email", "name": "name"}, mode=mode,
                                                         groups={"VIP": "vip"})]
        write_case("mode_" + mode, objs, state=prior("d"), options={"max_delete_percent": 50})

    # records leaving and entering a group-scoped destination, per mode
    for mode in ("sync", "additive"):
        objs = base_objects() + users_props + [vip, dest("d", {"email": "email"}, mode=mode,
                                                         collection="group", group="vip")]
        st = [  # 2 was a member (now vip=0: leaves), 1 and 10 are members (1 known, 10 enters)
            {"destination": "d", "key": 1, "payload": {"attributes": {"email": "ann@example.com", "external_id": "1"}, "groups": []}},
            {"destination": "d", "key": 2, "payload": {"attributes": {"email": "bob@test.org", "external_id": "2"}, "groups": []}},
        ]
        write_case("group_leave_enter_" + mode, objs, state=st, options={"max_delete_percent": 100})

    # a record released earlier (additive, out of scope) comes back into the group
    objs = base_objects() + users_props + [vip, dest("d", {"email": "email"}, mode="additive",
                                                     collection="group", group="vip", groups={"VIP": "vip"})]
    st = [{"destination": "d", "key": 10, "payload": {"attributes": {"email": "old@example.com", "external_id": "10"}, "groups": []}, "in_scope": False},
          {"destination": "d", "key": 2, "payload": {"attributes": {"email": "bob@test.org", "external_id": "2"}, "groups": []}, "in_scope": False}]
    write_case("released_record_returns", objs, state=st)

    # field cleared, pending retry, mass-delete guard tripped
    objs = base_objects() + users_props + [dest("d", {"email": "email", "age": "age"})]
    st = [{"destination": "d", "key": 3, "payload": {"attributes": {"age": 40, "email": "cy@example.com", "external_id": "3"}, "groups": []}},
          {"destination": "d", "key": 2, "payload": {"attributes": {"age": 17, "email": "bob@test.org", "external_id": "2"}, "groups": []}, "attempts": 2, "error": "HTTP 500"},
          {"destination": "d", "key": 5, "payload": {"attributes": {"age": 1, "email": "x@example.com", "external_id": "5"}, "groups": []}},
          {"destination": "d", "key": 6, "payload": {"attributes": {"age": 1, "email": "y@example.com", "external_id": "6"}, "groups": []}}]
    write_case("cleared_retry_and_guard", objs, state=st)

    # text primary key ordered bytewise; secondary source keyed by text
    sql = """
CREATE TABLE accounts (code TEXT PRIMARY KEY, name TEXT);
INSERT INTO accounts VALUES ('b','Bee'),('A','Ay'),('10','Ten'),('9','Nine'),('a','ay');
CREATE TABLE events (code TEXT, n INTEGER);
INSERT INTO events VALUES ('9',1),('9',2),('10',5),('zz',1);
"""
    objs = [
        {"class": "App", "id": "db", "type": "sqlite", "options": {"file": "data.db"}},
        {"class": "App", "id": "braze", "type": "braze", "options": {"apiKey": "K", "restEndpoint": "http://localhost:4710"}},
        {"class": "Model", "id": "accounts", "name": "Accounts", "type": "account"},
        {"class": "Source", "id": "acc", "type": "sqlite-import-table", "appId": "db", "modelId": "accounts",
         "options": {"table": "accounts"}, "mapping": {"code": "code"}},
        {"class": "Property", "id": "code", "type": "string", "unique": True, "sourceId": "acc", "options": {"column": "code"}},
        {"class": "Property", "id": "name", "type": "string", "sourceId": "acc", "options": {"column": "name"}},
        {"class": "Source", "id": "ev", "type": "sqlite-import-table", "appId": "db", "modelId": "accounts",
         "options": {"table": "events"}, "mapping": {"code": "code"}},
        {"class": "Property", "id": "total", "type": "integer", "sourceId": "ev", "options": {"column": "n", "aggregationMethod": "sum"}},
        {"class": "Destination", "id": "d", "type": "braze-export-users", "appId": "braze", "modelId": "accounts",
         "syncMode": "sync", "collection": "model", "mapping": {"external_id": "code", "name": "name", "total": "total"}},
    ]
    st = [{"destination": "d", "key": "9", "payload": {"attributes": {"external_id": "9", "name": "Nine", "total": 3}, "groups": []}},
          {"destination": "d", "key": "Z", "payload": {"attributes": {"external_id": "Z", "name": "Zed", "total": 0}, "groups": []}}]
    write_case("text_keys_order", objs, sql=sql, state=st, options={"max_delete_percent": 100})

    # Braze field conversions: dob as a date, numbers into string fields, booleans
    objs = base_objects() + users_props + [dest("d", {"dob": "signup", "first_name": "age", "email_open_tracking_disabled": "vip", "signed_up": "signup", "vip": "vip", "score": "score"})]
    write_case("braze_field_conversion", objs)

    # one destination selected among two; collection none exports nothing
    objs = base_objects() + users_props + [dest("d1", {"name": "name"}), dest("d2", {"name": "name"}, collection="none")]
    write_case("only_destination", objs, options={"destination": "d1"})
    st = [{"destination": "d2", "key": 1, "payload": {"attributes": {"external_id": "1", "name": "Ann"}, "groups": []}}]
    write_case("collection_none_deletes", objs, state=st, options={"max_delete_percent": 100})

if __name__ == "__main__":
    main()
