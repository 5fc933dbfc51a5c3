"""Random Grouparoo configs, warehouse contents and change steps (all plain data, so a
failing scenario can be replayed and shrunk)."""
import copy
import time

from warehouse import TABLES, KEY
from reference import ALLOW

DAY = 86400

NAMES = ["Ann", "ann", "ANN", "Bob", "O'Brien", 'Say "hi"', "back\\slash", "Zo\u00eb", "\u6f22\u5b57",
         "emoji \U0001F389", "  spaced ", "", None, "tab\tin", "new\nline", "100%_off", "Bobby", "caf\u00e9",
         "x" * 300, "Stra\u00dfe", "a,b", "007"]
EMAILS = ["ann@example.com", "bob.smith@example.org", "x+tag@example.net", "not-an-email", "", None,
          "zoe@example.com", "two@@example.com"]
CITIES = ["Paris", "S\u00e3o Paulo", "Z\u00fcrich", "paris", None, "New York", "", "Lagos"]
SCORES = [0.0, -0.0, 1.5, 2.25, 1e308, -1e-300, 0.30000000000000004, 123456.789, None, 7.0, -3.5, 99.5]
AGES = [0, 1, -1, 42, 2 ** 53, 2 ** 53 + 1, 2 ** 63 - 1, -2 ** 63, None, 17, 65, 30]
VIPS = [0, 1, None, 1, 0, 2]
AMOUNTS = [0.5, 10.0, 19.99, 100.0, -5.0, None, 1e15, 0.1, 3.0, 42.42, 0.30000000000000004]
QTYS = [0, 1, 2, 5, 1000, None, 2 ** 40, 3]
CATS = ["books", "games", "Books", "caf\u00e9", "toys", None, "o'reilly", "books", "bo%ks", ""]
TIERS = ["gold", "silver", "bronze", None, "Gold", "pl\u00e4tinum", ""]
STR_MATCHES = ["Ann", "ann", "A%", "%n", "_ob", "b", "Pa", "o", "gold", "Bob%", "%", "Z", "s", "e"]


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def signup_value(rnd, t0):
    x = rnd.random()
    if x < 0.1:
        return None
    if x < 0.15:
        return "not a date"
    return iso(t0 + rnd.randint(-800, 800) * DAY + DAY // 2)


class Counter:
    def __init__(self, start):
        self.n = start

    def __call__(self):
        self.n += 1
        return self.n


def user_row(rnd, uid, t0, tick):
    return {"id": uid, "email": rnd.choice(EMAILS), "name": rnd.choice(NAMES), "city": rnd.choice(CITIES),
            "score": rnd.choice(SCORES), "age": rnd.choice(AGES), "vip": rnd.choice(VIPS),
            "signup": signup_value(rnd, t0), "updated_at": tick()}


def purchase_row(rnd, pid, uid, tick):
    t = tick()
    amount = rnd.choice(AMOUNTS)
    if amount == 0.30000000000000004 and "min-max-csv" in ALLOW:
        amount = 0.3
    return {"pid": pid, "user_id": uid, "amount": amount, "qty": rnd.choice(QTYS),
            "category": rnd.choice(CATS), "created_at": t, "updated_at": t}


def profile_row(rnd, uid, tick):
    return {"uid": uid, "tier": rnd.choice(TIERS), "nickname": rnd.choice(NAMES), "updated_at": tick()}


# ---------------------------------------------------------------- the config spec

USER_PROPS = {"email": ("email", "email"), "name": ("string", "name"), "city": ("string", "city"),
              "score": ("float", "score"), "age": ("integer", "age"), "vip": ("boolean", "vip"),
              "signup": ("date", "signup")}
PURCHASE_PROPS = [  # id, type, column, aggregation, sort
    ("total_amount", "float", "amount", "sum", None), ("n_purchases", "integer", "amount", "count", None),
    ("n_rows", "integer", "pid", "count", None), ("avg_amount", "float", "amount", "average", None),
    ("avg_qty", "float", "qty", "average", None), ("max_qty", "integer", "qty", "max", None),
    ("min_amount", "float", "amount", "min", None), ("sum_qty", "integer", "qty", "sum", None),
    ("last_cat", "string", "category", "most recent value", "created_at"),
    ("first_cat", "string", "category", "least recent value", "created_at"),
    ("exact_cat", "string", "category", "exact", "created_at"),
    ("last_amount", "float", "amount", "most recent value", "created_at"),
]
PROFILE_PROPS = {"tier": ("string", "tier"), "nickname": ("string", "nickname")}
STD_FIELDS = ["first_name", "last_name", "home_city"]


def gen_filter(rnd, source):
    if source == "purchases":
        c = rnd.choice([
            {"key": "category", "op": "ne", "match": "books"}, {"key": "category", "op": "eq", "match": "games"},
            {"key": "amount", "op": "gt", "match": 5}, {"key": "amount", "op": "lte", "match": 19.99},
            {"key": "qty", "op": "gte", "match": 2}, {"key": "qty", "op": "lt", "match": 1000},
            {"key": "category", "op": "in", "match": ["books", "toys", "caf\u00e9"]},
            {"key": "category", "op": "substring", "match": "OO"}, {"key": "category", "op": "notSubstring", "match": "o"},
            {"key": "amount", "op": "exists"}, {"key": "category", "op": "notExists"},
            {"key": "amount", "op": "ne", "match": 10}])
        return [c]
    c = rnd.choice([
        {"key": "vip", "op": "eq", "match": 1}, {"key": "age", "op": "gte", "match": 18},
        {"key": "city", "op": "ne", "match": "Paris"}, {"key": "score", "op": "lt", "match": 100},
        {"key": "email", "op": "exists"}, {"key": "name", "op": "substring", "match": "an"}])
    return [c]


def gen_rule(rnd, pid, ptype, t0):
    if ptype in ("integer", "float"):
        op = rnd.choice(["eq", "ne", "gt", "gte", "lt", "lte", "exists", "notExists", "eq", "gt"])
        pool = {"integer": [0, 1, 42, 2, 17, 30, 1000, 3], "float": [0, 1.5, 10, 19.99, 7, 100, 2.25, 42.42]}[ptype]
        m = rnd.choice(pool)
        if rnd.random() < 0.3:
            m = str(m)
        if rnd.random() < 0.08 and op in ("eq", "ne"):
            m = "null"
    elif ptype == "boolean":
        op = rnd.choice(["eq", "ne", "exists", "notExists"])
        m = rnd.choice([True, False, "true", "false"])
    elif ptype == "date":
        op = rnd.choice(["gt", "gte", "lt", "lte", "relative_gt", "relative_lt", "exists", "notExists"])
        if op.startswith("relative"):
            n = rnd.randint(1, 30)
            # every fourth number a fraction (moment rounds it), without another draw
            r = {"propertyId": pid, "op": op, "relativeMatchNumber": n - 0.5 if n % 4 == 0 else n,
                 "relativeMatchUnit": rnd.choice(["days", "weeks", "months", "quarters", "years"])}
            if rnd.random() < 0.3:
                r["relativeMatchDirection"] = rnd.choice(["add", "subtract"])
            return r
        m = iso(t0 + rnd.randint(-400, 400) * DAY)
    else:
        op = rnd.choice(["eq", "ne", "like", "notLike", "iLike", "notILike", "startsWith", "endsWith",
                         "substring", "notSubstring", "exists", "notExists"])
        if op in ("eq", "ne"):
            m = rnd.choice(["Ann", "ann", "Paris", "gold", "books", "Bob", "ann@example.com", "Gold", "null"])
        elif op in ("like", "notLike", "iLike", "notILike"):
            m = rnd.choice(STR_MATCHES)
        else:
            m = rnd.choice(["Ann", "an", "o", "Pa", "gold", "B", "s", "e", "com"])
    r = {"propertyId": pid, "op": op}
    if op not in ("exists", "notExists"):
        r["match"] = m
    return r


def uuid_for(rnd):
    h = "%032x" % rnd.getrandbits(128)
    return "%s-%s-4%s-8%s-%s" % (h[:8], h[8:12], h[13:16], h[17:20], h[20:32])


def gen_spec(rnd, source, t0):
    tick = Counter(1000)
    spec = {"sources": {}, "props": {}, "groups": {}, "dests": []}
    spec["sources"]["users"] = {"schedule": rnd.choice(["inc", "inc", "full"])}
    for pid in rnd.sample(sorted(USER_PROPS), rnd.randint(2, len(USER_PROPS))):
        ty, col = USER_PROPS[pid]
        p = {"source": "users", "type": ty, "column": col, "agg": "exact"}
        if rnd.random() < 0.15:
            p["filters"] = gen_filter(rnd, "users")
        spec["props"][pid] = p
    if rnd.random() < 0.8:
        spec["sources"]["purchases"] = {"schedule": rnd.choice(["inc", "inc", "full", None])}
        for pid, ty, col, agg, sort in rnd.sample(PURCHASE_PROPS, rnd.randint(1, 6)):
            p = {"source": "purchases", "type": ty, "column": col, "agg": agg}
            if sort:
                p["sort"] = sort
            if rnd.random() < 0.35:
                p["filters"] = gen_filter(rnd, "purchases")
            spec["props"][pid] = p
    if rnd.random() < 0.5:
        spec["sources"]["profiles"] = {"schedule": rnd.choice(["inc", "full", None])}
        for pid in rnd.sample(sorted(PROFILE_PROPS), rnd.randint(1, 2)):
            ty, col = PROFILE_PROPS[pid]
            spec["props"][pid] = {"source": "profiles", "type": ty, "column": col, "agg": "exact"}
    pids = sorted(spec["props"])
    for gi in range(rnd.randint(0, 4)):
        rules = []
        for _ in range(rnd.randint(1, 3)):
            pid = rnd.choice(pids)
            rules.append(gen_rule(rnd, pid, spec["props"][pid]["type"], t0))
        spec["groups"]["g%d" % gi] = {"rules": rules, "matchType": rnd.choice(["all", "all", "any"])}
    gids = sorted(spec["groups"])
    # initial data
    users = [user_row(rnd, uid, t0, tick) for uid in rnd.sample(range(1, 40), rnd.randint(4, 14))]
    ids = [u["id"] for u in users]
    purchases = [purchase_row(rnd, pid, rnd.choice(ids + [77]), tick) for pid in range(1, rnd.randint(2, 25))]
    profiles = [profile_row(rnd, uid, tick) for uid in rnd.sample(ids, rnd.randint(1, len(ids)))]
    spec["tables0"] = {"users": users, "purchases": purchases, "profiles": profiles}
    spec["tick"] = tick.n
    for di in range(rnd.randint(1, 3)):
        mode = rnd.choice(["sync", "additive", "enrich"])
        d = {"id": "d%d" % di, "mode": mode, "collection": "model", "mapping": {}, "memberships": {}}
        if gids and rnd.random() < 0.4:
            d["collection"] = "group"
            d["groupId"] = rnd.choice(gids)
        fields = list(STD_FIELDS)
        rnd.shuffle(fields)
        for pid in rnd.sample(pids, rnd.randint(1, len(pids))):
            ty = spec["props"][pid]["type"]
            if ty == "email" and "email" not in d["mapping"]:
                d["mapping"]["email"] = pid
            elif ty == "string" and fields and rnd.random() < 0.5:
                d["mapping"][fields.pop()] = pid
            else:
                d["mapping"]["a_" + pid] = pid
        for gid in gids:
            if rnd.random() < 0.7:
                name = uuid_for(rnd) if rnd.random() < 0.5 else rnd.choice(["VIP ", "Grp \u00e9 ", "g"]) + gid
                d["memberships"][name] = gid
        if mode == "enrich" or (mode == "additive" and rnd.random() < 0.3):
            seed = []
            for uid in rnd.sample(ids + [90, 91], min(len(ids) + 2, rnd.randint(1, 6))):
                u = {"external_id": str(uid), "seed_attr": "keep me \u00e9"}
                if rnd.random() < 0.5:
                    u["first_name"] = "Seeded"
                for f, pid in d["mapping"].items():
                    if rnd.random() < 0.3:
                        u[f] = "stale" if f != "email" else "stale@example.com"
                grp = [n for n in d["memberships"] if "-" not in n]
                if rnd.random() < 0.5:
                    u["groups"] = ["outside"] + ([rnd.choice(grp)] if grp and rnd.random() < 0.5 else [])
                sgs = [n for n in d["memberships"] if "-" in n]
                if sgs and rnd.random() < 0.4:
                    u["subscription_groups"] = [{"subscription_group_id": rnd.choice(sgs),
                                                 "subscription_state": rnd.choice(["subscribed", "unsubscribed"])}]
                seed.append(u)
            d["seed"] = seed
        spec["dests"].append(d)
    return normalize(spec)


def normalize(spec):
    """Drops dangling references (after a shrink step removed something)."""
    spec = copy.deepcopy(spec)
    for pid in list(spec["props"]):
        if spec["props"][pid]["source"] not in spec["sources"]:
            del spec["props"][pid]
    for g in list(spec["groups"]):
        rules = [r for r in spec["groups"][g]["rules"] if r["propertyId"] in spec["props"]]
        if not rules:
            del spec["groups"][g]
        else:
            spec["groups"][g]["rules"] = rules
    for d in spec["dests"]:
        d["mapping"] = {f: p for f, p in d["mapping"].items() if p in spec["props"]}
        d["memberships"] = {n: g for n, g in d["memberships"].items() if g in spec["groups"]}
        if d["collection"] == "group" and d.get("groupId") not in spec["groups"]:
            d["collection"] = "model"
            d.pop("groupId", None)
    return spec


def spec_reductions(spec):
    """Smaller variants of spec, biggest cuts first."""
    out = []
    if len(spec["dests"]) > 1:
        for i in range(len(spec["dests"])):
            s = copy.deepcopy(spec)
            del s["dests"][i]
            out.append(s)
    for src in spec["sources"]:
        if src != "users":
            s = copy.deepcopy(spec)
            del s["sources"][src]
            out.append(s)
    for g in spec["groups"]:
        s = copy.deepcopy(spec)
        del s["groups"][g]
        out.append(s)
    for p in spec["props"]:
        s = copy.deepcopy(spec)
        del s["props"][p]
        out.append(s)
    for g, gd in spec["groups"].items():
        if len(gd["rules"]) > 1:
            for i in range(len(gd["rules"])):
                s = copy.deepcopy(spec)
                del s["groups"][g]["rules"][i]
                out.append(s)
        if gd["matchType"] == "any":
            s = copy.deepcopy(spec)
            s["groups"][g]["matchType"] = "all"
            out.append(s)
    for i, d in enumerate(spec["dests"]):
        for f in d["mapping"]:
            s = copy.deepcopy(spec)
            del s["dests"][i]["mapping"][f]
            out.append(s)
        for n in d["memberships"]:
            s = copy.deepcopy(spec)
            del s["dests"][i]["memberships"][n]
            out.append(s)
        if d.get("seed"):
            for j in range(len(d["seed"])):
                s = copy.deepcopy(spec)
                del s["dests"][i]["seed"][j]
                out.append(s)
        if d["collection"] == "group":
            s = copy.deepcopy(spec)
            s["dests"][i]["collection"] = "model"
            s["dests"][i].pop("groupId")
            out.append(s)
    for src, sd in spec["sources"].items():
        if sd["schedule"] == "inc":
            s = copy.deepcopy(spec)
            s["sources"][src]["schedule"] = "full"
            out.append(s)
    for p, pd in spec["props"].items():
        if pd.get("filters"):
            s = copy.deepcopy(spec)
            del s["props"][p]["filters"]
            out.append(s)
    for t in ("users", "purchases", "profiles"):
        for j in range(len(spec["tables0"][t])):
            s = copy.deepcopy(spec)
            del s["tables0"][t][j]
            out.append(s)
    return [normalize(s) for s in out]


def initial_tables(spec):
    return copy.deepcopy(spec["tables0"])


# ---------------------------------------------------------------- rendering

def render(spec, wh, nsims):
    spec = normalize(spec)
    st = wh.source_type
    objs = list(wh.apps())
    for i in range(nsims):
        objs.append({"class": "App", "id": "braze%d" % i, "name": "braze%d" % i, "type": "braze",
                     "options": {"apiKey": "${DIFF_BRAZE_KEY}", "restEndpoint": "DIFF_BRAZE_URL_%d" % i}})
    objs.append({"class": "Model", "id": "users", "name": "Users", "type": "profile"})
    keycol = {"users": "id", "purchases": "user_id", "profiles": "uid"}
    markcol = {"users": "updated_at", "purchases": "updated_at", "profiles": "updated_at"}
    for src, sd in spec["sources"].items():
        objs.append({"class": "Source", "id": src + "_src", "name": src, "type": "%s-import-table" % st,
                     "appId": wh.app_for(src), "modelId": "users", "options": {"table": src},
                     "mapping": {keycol[src]: "user_id"}})
        if sd["schedule"]:
            objs.append({"class": "Schedule", "id": src + "_sched", "name": src + " schedule",
                         "sourceId": src + "_src", "recurring": False,
                         "incremental": sd["schedule"] == "inc", "options": {"column": markcol[src]}})
    objs.append({"class": "Property", "id": "user_id", "key": "user_id", "type": "integer", "unique": True,
                 "sourceId": "users_src", "options": {"column": "id"}})
    for pid, p in spec["props"].items():
        o = {"class": "Property", "id": pid, "key": pid, "type": p["type"], "unique": False,
             "sourceId": p["source"] + "_src", "options": {"column": p["column"], "aggregationMethod": p["agg"]}}
        if p.get("sort"):
            o["options"]["sortColumn"] = p["sort"]
        if p.get("filters"):
            o["filters"] = p["filters"]
        objs.append(o)
    for gid, g in spec["groups"].items():
        objs.append({"class": "Group", "id": gid, "name": gid, "modelId": "users", "matchType": g["matchType"],
                     "rules": g["rules"]})
    for i, d in enumerate(spec["dests"]):
        o = {"class": "Destination", "id": d["id"], "name": d["id"], "type": "braze-export-users",
             "appId": "braze%d" % i, "modelId": "users", "syncMode": d["mode"], "collection": d["collection"],
             "mapping": dict({"external_id": "user_id"}, **d["mapping"]),
             "destinationGroupMemberships": d["memberships"]}
        if d["collection"] == "group":
            o["groupId"] = d["groupId"]
        objs.append(o)
    return objs


# ---------------------------------------------------------------- change steps

def apply_mut(tables, m):
    kind = m[0]
    if kind == "put":
        t, row = m[1], m[2]
        k = KEY[t]
        rows = [r for r in tables[t] if r[k] != row[k]]
        rows.append(copy.deepcopy(row))
        tables[t] = sorted(rows, key=lambda r: r[k])
    elif kind == "del":
        t, key = m[1], m[2]
        tables[t] = [r for r in tables[t] if r[KEY[t]] != key]
    elif kind == "corrupt":
        pass  # the row is written unreadable for this step only


def gen_steps(rnd, spec, nsteps, source, t0):
    tick = Counter(spec["tick"])
    tables = initial_tables(spec)
    deleted = []
    steps = []
    for _ in range(nsteps):
        muts = []
        for _ in range(rnd.randint(1, 6)):
            ids = [u["id"] for u in tables["users"]]
            x = rnd.random()
            if x < 0.15 or not ids:
                uid = rnd.choice(deleted) if deleted and rnd.random() < 0.5 else rnd.randint(1, 60)
                m = ("put", "users", user_row(rnd, uid, t0, tick))
            elif x < 0.4:
                u = copy.deepcopy(rnd.choice(tables["users"]))
                for c in rnd.sample(["email", "name", "city", "score", "age", "vip", "signup"], rnd.randint(1, 3)):
                    u[c] = {"email": lambda: rnd.choice(EMAILS), "name": lambda: rnd.choice(NAMES),
                            "city": lambda: rnd.choice(CITIES), "score": lambda: rnd.choice(SCORES),
                            "age": lambda: rnd.choice(AGES), "vip": lambda: rnd.choice(VIPS),
                            "signup": lambda: signup_value(rnd, t0)}[c]()
                u["updated_at"] = tick()
                m = ("put", "users", u)
            elif x < 0.5:
                uid = rnd.choice(ids)
                deleted.append(uid)
                m = ("del", "users", uid)
            elif x < 0.68:
                pid = max([p["pid"] for p in tables["purchases"]] + [0]) + 1
                m = ("put", "purchases", purchase_row(rnd, pid, rnd.choice(ids + [77]), tick))
            elif x < 0.78 and tables["purchases"]:
                p = copy.deepcopy(rnd.choice(tables["purchases"]))
                c = rnd.choice(["amount", "qty", "category", "created_at"])
                p[c] = {"amount": lambda: purchase_row(rnd, 0, 0, lambda: 0)["amount"], "qty": lambda: rnd.choice(QTYS),
                        "category": lambda: rnd.choice(CATS), "created_at": lambda: tick()}[c]()
                p["updated_at"] = tick()
                m = ("put", "purchases", p)
            elif x < 0.84 and tables["purchases"]:
                m = ("del", "purchases", rnd.choice(tables["purchases"])["pid"])
            elif x < 0.93:
                m = ("put", "profiles", profile_row(rnd, rnd.choice(ids), tick))
            elif tables["profiles"]:
                m = ("del", "profiles", rnd.choice(tables["profiles"])["uid"])
            else:
                continue
            apply_mut(tables, m)
            muts.append(m)
        if source == "csv" and rnd.random() < 0.12 and tables["users"]:
            muts.append(("corrupt", rnd.choice(tables["users"])["id"]))
        run = {"full": rnd.random() < 0.25}
        x = rnd.random()
        if x < 0.1:
            run["kill"] = round(rnd.uniform(0.01, 0.3), 3)
        elif x < 0.25:
            di = rnd.randrange(len(spec["dests"]))
            ids = [str(u["id"]) for u in tables["users"]] or ["1"]
            run["faults"] = [[di, rnd.choice([
                [{"endpoint": "track", "status": 429, "retry_after": 1, "count": 2}],
                [{"endpoint": "track", "status": 500, "count": 2}],
                [{"endpoint": "*", "status": 503, "count": 3}],
                [{"endpoint": "track", "action": "reset_connection", "count": 1}],
                [{"action": "row_error", "external_id": rnd.choice(ids), "type": "EMAIL_BAD_FORMAT"}],
                [{"endpoint": "delete", "status": 500, "count": 1}, {"endpoint": "track", "status": 400, "count": 1}],
            ])]]
        steps.append({"muts": muts, "run": run})
    return steps
