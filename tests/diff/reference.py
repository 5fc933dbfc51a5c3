"""The reference: what each Braze destination should hold, from Grouparoo's semantics
(shared/docs/grouparoo-config.md; grouparoo/grouparoo core/src/models/Group.ts,
core/src/modules/ops/*, plugins/@grouparoo/sqlite/src/lib/table-import/getPropertyValues.ts,
plugins/@grouparoo/braze) and joey's documented differences (docs/config.md,
docs/internals/export.md). Written without reading joey's src/.

Everything is computed in Python from the rows read back from the warehouse."""
import calendar
import datetime
import math
import re

META = {"external_id", "user_aliases", "braze_id", "created_at", "random_bucket", "email_subscribe",
        "push_subscribe", "custom_attributes", "subscription_groups", "deprecated_external_ids", "total_revenue"}
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
KEYCOL = {"users": "id", "purchases": "user_id", "profiles": "uid"}

# Grouparoo's additive/enrich "leave" export is an update carrying the record's current
# properties with newGroups = [] (core DestinationOps.exportRecords, shared doc §3.3).
LEAVE_UPDATES_FIELDS = True

# Known differences the reference can be told to accept (run.py --allow NAME,...), so a
# run can look past them for others. The default is strict (Grouparoo's behaviour).
KNOWN = {
    "first-export-nulls": "(fixed in cfe1ea9) first export to a user Braze already has: Grouparoo sends null for "
                          "every mapped property that is null; joey sent only non-null fields",
    "secondary-schedule-ignored": "(fixed in ac4efe6) a schedule on a secondary source was ignored, "
                                  "so a change only in its rows was not sent by an incremental run",
    "int64-limits": "(fixed in 677073a) PostgreSQL/MariaDB sources: joey read 19-digit integers through a double: "
                    "-10^18-1 arrives as -10^18, and 2^63-1 / -2^63 / 2^63-2 become invalid (sent as empty); "
                    "SQLite and CSV keep them exact. With this, the generated int64 edges are accepted as NULL",
    "csv-text-numbers": "(fixed in the CSV joey_number change) CSV: a number that SQLite's %.15g does not print "
                        "back identically (-0.0, 0.30000000000000004, 1e+308) is TEXT, so numeric filters compared it as text",
    "unreadable-row": "(fixed in ac4efe6) an unreadable CSV row was skipped (exit 0) and its record "
                      "treated as deleted; with this, unreadable rows are not generated",
    "min-max-csv": "(fixed in the CSV joey_number change) CSV: MIN/MAX over a column mixing numbers stored as REAL "
                   "and as TEXT (see csv-text-numbers) returned by SQLite's type order; with this, such values are not "
                   "generated in purchases",
    "leave-keeps-fields": "(fixed in 1926ab1) additive/enrich record leaving the destination: Grouparoo's leave "
                          "export also updates the mapped fields; joey only removed groups",
}
ALLOW = set()


def parse_iso_ms(s):
    try:
        dt = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (ValueError, TypeError):
        return None
    return int(dt.timestamp()) * 1000


def iso_ms(ms):
    dt = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def ascii_lower(s):
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)


# ---------------------------------------------------------------- properties

def coerce(v, ty):
    """Grouparoo's recordProperty coercion (core/src/modules/ops/recordProperty.ts):
    empty/NULL -> null, invalid -> null."""
    if v is None or v == "":
        return None
    if ty == "string":
        return v if isinstance(v, str) else str(v)
    if ty == "email":
        return v if isinstance(v, str) and EMAIL_RE.match(v) else None
    if ty == "integer":
        if "int64-limits" in ALLOW and SOURCE[0] in ("postgres", "mysql") and v in (2 ** 63 - 1, -2 ** 63):
            return None
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, int):
            return v
        if isinstance(v, float) and v == int(v):
            return int(v)
        return None
    if ty == "float":
        return float(v) if isinstance(v, (int, float)) else None
    if ty == "boolean":
        if v in (1, "1", "true", "TRUE", "True") and not (isinstance(v, float)):
            return True
        if v in (0, "0", "false", "FALSE", "False") and not (isinstance(v, float)):
            return False
        return None
    if ty == "date":
        return parse_iso_ms(v) if isinstance(v, str) else None
    raise ValueError(ty)


SOURCE = [None]


def csv_text_number(v):
    return (isinstance(v, float) and SOURCE[0] == "csv" and "csv-text-numbers" in ALLOW
            and ("%.15g" % v != repr(v).replace(".0", "") or v == 0 and str(v).startswith("-")
                 or "e" in repr(v)))


def filt_ok(row, f):
    """Property filters are SQL WHERE conditions (plugins/@grouparoo/sqlite/.../util.ts)."""
    v, op = row.get(f["key"]), f["op"]
    m = f.get("match")
    if csv_text_number(v) and op in ("eq", "ne", "gt", "gte", "lt", "lte") and not isinstance(m, str):
        return op in ("ne", "gt", "gte")  # SQLite: TEXT sorts after every number
    if op == "exists":
        return v is not None
    if op == "notExists":
        return v is None
    if v is None:
        return False
    if op in ("substring", "notSubstring"):
        hit = ascii_lower(str(m)) in ascii_lower(v if isinstance(v, str) else repr(v))
        return hit if op == "substring" else not hit
    if op == "in":
        ms = m if isinstance(m, list) else [x.strip() for x in str(m).split(",")]
        return v in ms
    if isinstance(v, str) != isinstance(m, str):
        return False
    return {"eq": v == m, "ne": v != m, "gt": v > m, "gte": v >= m, "lt": v < m, "lte": v <= m}[op]


def aggregate(rows, p):
    """getPropertyValues: filters in WHERE, then the aggregation per key."""
    rows = [r for r in rows if all(filt_ok(r, f) for f in p.get("filters", []))]
    col, agg = p["column"], p["agg"]
    vals = [r[col] for r in rows if r[col] is not None]
    if agg in ("sum", "count"):
        # records with no rows get 0 (shared doc §2.3)
        if agg == "count":
            return len(vals)
        return sum(vals) if vals else 0
    if agg == "average":
        if not rows:
            return None
        return (math.fsum(vals) / len(vals)) if vals else 0
    if agg == "min":
        return min(vals) if vals else None
    if agg == "max":
        return max(vals) if vals else None
    if not rows:
        return None
    if agg in ("most recent value",):
        return sorted(rows, key=lambda r: r[p["sort"]], reverse=True)[0][col]
    if agg in ("least recent value", "exact"):
        if p.get("sort"):
            return sorted(rows, key=lambda r: r[p["sort"]])[0][col]
        return rows[0][col]
    raise ValueError(agg)


# ---------------------------------------------------------------- groups

def like_re(pattern, ci):
    out = ""
    for c in pattern:
        out += ".*" if c == "%" else "." if c == "_" else re.escape(c)
    return re.compile("^" + out + "$", re.S | (re.I if ci else 0))


def add_months(ms, months):
    dt = datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc)
    y, mo = divmod(dt.month - 1 + months, 12)
    y += dt.year
    day = min(dt.day, calendar.monthrange(y, mo + 1)[1])
    return int(dt.replace(year=y, month=mo + 1, day=day).timestamp() * 1000)


def moment_round(x):
    """moment.js absRound (addSubtract): Math.round of the magnitude."""
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def relative_threshold(now_ms, n, unit, direction):
    # moment add()/subtract(): weeks become days, quarters and years months, then the
    # days and months are rounded (absRound), so 1.5 days is 2 days, 1.5 weeks 11
    sign = 1 if direction == "add" else -1
    if unit in ("days", "weeks"):
        return now_ms + sign * moment_round(n * (7 if unit == "weeks" else 1)) * 86400000
    months = moment_round(n * {"months": 1, "quarters": 3, "years": 12}[unit])
    return add_months(now_ms, sign * months)


def rule_match(v, ty, r, now_ms):
    """core/src/models/Group.ts _buildGroupMemberQueryParts: CAST(rawValue AS type) <op> match,
    SQL NULL semantics; "null" matches mean NULL; exists = ne null, notExists = eq null."""
    op = r["op"]
    if op == "exists":
        return v is not None
    if op == "notExists":
        return v is None
    if op.startswith("relative_"):
        base = op[len("relative_"):]
        # Group.fromConvenientRules (core/src/modules/ruleOpsDictionary.ts
        # _convenientRules): relative_gt is read back as gt + "subtract" and relative_lt
        # as lt + "add", whatever relativeMatchDirection the config gave (shared doc 2.4)
        direction = "subtract" if base == "gt" else "add"
        th = relative_threshold(now_ms, r["relativeMatchNumber"], r["relativeMatchUnit"], direction)
        if v is None:
            return False
        if base == "gt":
            return v > th and v <= now_ms
        return v < th and v >= now_ms
    m = r.get("match")
    if isinstance(m, str) and m.lower() == "null":
        if op == "eq":
            return v is None
        if op == "ne":
            return v is not None
        return False
    if v is None:
        return False
    if ty in ("integer", "float"):
        m = float(m)
        v = float(v)
    elif ty == "boolean":
        m = m if isinstance(m, bool) else str(m).lower() in ("true", "1")
    elif ty == "date":
        m = parse_iso_ms(m)
    else:
        m = str(m)
        if op in ("like", "notLike", "iLike", "notILike"):
            hit = bool(like_re(m, op in ("iLike", "notILike")).match(v))
            return hit if op in ("like", "iLike") else not hit
        if op == "startsWith":
            return v.startswith(m)
        if op == "endsWith":
            return v.endswith(m)
        if op in ("substring", "notSubstring"):
            return (m in v) if op == "substring" else (m not in v)
    return {"eq": v == m, "ne": v != m, "gt": v > m, "gte": v >= m, "lt": v < m, "lte": v <= m}[op]


# ---------------------------------------------------------------- Braze users

def braze_value(v, ty):
    """What Braze stores for a property value (plugins/@grouparoo/braze exportRecords:
    Dates as ISO strings, other values as they are; Braze truncates strings to 255)."""
    if v is None:
        return None
    if ty == "date":
        return iso_ms(v)
    if isinstance(v, str):
        return v[:255]
    return v


def norm_user(u):
    f = {k: v for k, v in u.items() if k not in META}
    ca = dict(u.get("custom_attributes") or {})
    g = ca.pop("groups", None) or []
    f.update(ca)
    s = {x["subscription_group_id"]: x["subscription_state"] for x in u.get("subscription_groups") or []}
    return {"f": f, "g": sorted(set(g)), "s": s}


def same_value(a, b):
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
            return a == b
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return False
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0) or a == b
    return a == b and type(a) == type(b)


def exact_value(a, b):
    num = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool)
    if num(a) and num(b):
        return a == b
    return same_value(a, b)


def user_diffs(exp, got):
    """Field-level differences between two normalized users (None = no user)."""
    if exp is None and got is None:
        return []
    if exp is None:
        return [("(user)", "absent", "present: %s" % short(got))]
    if got is None:
        return [("(user)", "present: %s" % short(exp), "absent")]
    out = []
    for k in sorted(set(exp["f"]) | set(got["f"])):
        a, b = exp["f"].get(k), got["f"].get(k)
        if not same_value(a, b):
            out.append((k, a, b))
    if exp["g"] != got["g"]:
        out.append(("groups", exp["g"], got["g"]))
    if exp["s"] != got["s"]:
        out.append(("subscription_groups", exp["s"], got["s"]))
    return out


def short(u):
    s = repr(u)
    return s if len(s) < 300 else s[:300] + "..."


class Model:
    def __init__(self, spec, t0):
        self.spec = spec
        self.t0 = t0
        self.marks = {}
        self.bz = [dict() for _ in spec["dests"]]      # the reference's view of each Braze
        self.sent = [dict() for _ in spec["dests"]]    # last confirmed export per key
        self.last_rc = 0

    def load_braze(self, user_lists):
        for di, users in enumerate(user_lists):
            for u in users:
                self.bz[di][u["external_id"]] = norm_user(u)

    # ---- the record set: properties and groups
    def records(self, rows):
        spec = self.spec
        by = {}
        for t in ("purchases", "profiles"):
            idx = {}
            for r in rows[t]:
                idx.setdefault(r[KEYCOL[t]], []).append(r)
            by[t] = idx
        recs = {}
        for u in rows["users"]:
            if not isinstance(u["id"], int):
                continue
            props = {"user_id": u["id"]}
            for pid, p in spec["props"].items():
                if p["source"] == "users":
                    raw = aggregate([u], p)
                else:
                    raw = aggregate(by[p["source"]].get(u["id"], []), p)
                props[pid] = coerce(raw, p["type"])
            recs[u["id"]] = props
        now_ms = int(__import__("time").time() * 1000)
        members = {}
        for k, props in recs.items():
            ms = set()
            for gid, g in spec["groups"].items():
                res = [rule_match(props[r["propertyId"]], spec["props"][r["propertyId"]]["type"], r, now_ms)
                       for r in g["rules"]]
                # joey honours matchType (documented difference: Grouparoo's loader ignored it)
                if (all(res) if g["matchType"] == "all" else any(res)):
                    ms.add(gid)
            members[k] = ms
        return recs, members

    def reads_everything(self, full):
        """Whether a run reads every record (docs/config.md "Incremental schedules"):
        --full, a primary source without an incremental schedule, a schedule that is not
        incremental, or an incremental schedule without a mark yet."""
        srcs = self.spec["sources"]
        inc = [t for t, sd in srcs.items() if sd["schedule"] == "inc"]
        return (full or srcs["users"]["schedule"] != "inc"
                or any(sd["schedule"] not in ("inc", None) for sd in srcs.values())
                or any(t not in self.marks for t in inc))

    def obligations(self, rows, full, recs):
        """Keys a run must bring up to date. A read of everything (reads_everything)
        covers every key, deletions included; this includes, as joey documents it, a
        model with a schedule that is not incremental (Grouparoo re-imported every row
        of that source; joey reads every record). Otherwise the run is incremental: the
        primary rows whose mark column is at or past the mark, plus the keys of rows of
        secondary sources with an incremental schedule, from their own mark. Deletions
        are not seen."""
        srcs = self.spec["sources"]
        if self.reads_everything(full):
            return None
        keys = set()
        for t, sd in srcs.items():
            if t != "users" and (not sd["schedule"] or "secondary-schedule-ignored" in ALLOW):
                continue
            mark = self.marks.get(t)
            for r in rows[t]:
                if mark is None or r["updated_at"] >= mark:
                    if r[KEYCOL[t]] in recs:
                        keys.add(r[KEYCOL[t]])
        return keys

    def desired(self, d, k, recs, members):
        props = self.spec["props"]
        fields = {}
        for f, pid in d["mapping"].items():
            fields[f] = braze_value(recs[k][pid], props[pid]["type"])
        ms = members[k]
        names = {n for n, g in d["memberships"].items() if g in ms and not UUID_RE.match(n)}
        subs = {n for n, g in d["memberships"].items() if g in ms and UUID_RE.match(n)}
        in_scope = d["collection"] == "model" or (d["collection"] == "group" and d["groupId"] in ms)
        return fields, names, subs, in_scope

    def transition(self, di, k, recs, members):
        """(user, sent) after an export of key k to destination di."""
        d = self.spec["dests"][di]
        ext = str(k)
        prev = self.bz[di].get(ext)
        sent = self.sent[di].get(ext)
        if k in recs:
            fields, names, subs, in_scope = self.desired(d, k, recs, members)
        else:
            fields, names, subs, in_scope = None, set(), set(), False

        def apply(u, fields, names, subs, sent):
            u = {"f": dict(u["f"]), "g": set(u["g"]), "s": dict(u["s"])}
            if fields is not None:
                for f, v in fields.items():
                    if "first-export-nulls" in ALLOW and (
                            (sent is None and v is None) or
                            (sent is not None and f in sent.get("f", {}) and same_value(sent["f"][f], v))):
                        continue  # joey sends only what changed since its last export
                    if v is None:
                        u["f"].pop(f, None)
                    else:
                        u["f"][f] = v
            old_names = set(sent["g"]) if sent else set()
            old_subs = set(sent["s"]) if sent else set()
            u["g"] = (u["g"] - (old_names - names)) | names
            for s in subs:
                u["s"][s] = "subscribed"
            for s in old_subs - subs:
                u["s"][s] = "unsubscribed"
            u["g"] = sorted(u["g"])
            return u

        if in_scope:
            if d["mode"] == "enrich" and prev is None:
                return None, sent
            base = prev or {"f": {}, "g": [], "s": {}}
            u = apply(base, fields, names, subs, sent)
            return u, {"g": sorted(names), "s": sorted(subs), "f": fields, "in": True}
        if sent is None or not sent.get("in"):
            return prev, sent
        if d["mode"] == "sync":
            return None, None
        if prev is None:
            return None, None
        upd = LEAVE_UPDATES_FIELDS and "leave-keeps-fields" not in ALLOW and fields is not None
        u = apply(prev, fields if upd else None, set(), set(), sent)
        # the baseline stays the last export (core: oldRecordProperties = last complete export)
        return u, {"g": [], "s": [], "f": fields if upd else sent.get("f", {}), "in": False}

    def step(self, rows, actual_lists, full, ok, strict, frozen):
        """Compares the simulators after a run with the reference and moves the model on.
        strict: keys the run is obliged to have exported must match the reference; others
        must hold either their previous state or the reference. Not strict (a run with
        injected faults): any key may hold its previous state or the reference, and a key
        holding neither is taken as it is (the next clean run must bring it to the
        reference). frozen: keys whose row was unreadable must keep their previous state."""
        recs, members = self.records(rows)
        oblig = self.obligations(rows, full, recs)
        diffs = []
        for di, d in enumerate(self.spec["dests"]):
            actual = {u["external_id"]: norm_user(u) for u in actual_lists[di]}
            keys = set(self.bz[di]) | set(self.sent[di]) | {str(k) for k in recs} | set(actual)
            for ext in sorted(keys, key=lambda x: (len(x), x)):
                try:
                    k = int(ext)
                except ValueError:
                    k = ext
                prev = self.bz[di].get(ext)
                got = actual.get(ext)
                if k in frozen:
                    dd = user_diffs(prev, got)
                    for f, a, b in dd:
                        diffs.append("destination %s (%s) record %s (unreadable row: must be left alone) field %s: expected %r, got %r"
                                     % (d["id"], d["mode"], ext, f, a, b))
                    continue
                u, s = self.transition(di, k, recs, members)
                obliged = strict and (oblig is None or k in oblig)
                if not obliged and not user_diffs(prev, got):
                    continue  # not read by this run (or nothing to do): keep what was sent
                if not user_diffs(u, got):
                    self._set(di, ext, u, s)
                    continue
                if not strict:
                    self._set(di, ext, got, self.sent[di].get(ext))
                    continue
                for f, a, b in user_diffs(u, got):
                    diffs.append("destination %s (%s) record %s field %s: expected %r, got %r%s" % (
                        d["id"], d["mode"], ext, f, a, b, "" if obliged else " (nor the previous %r)" % (
                            dict(prev["f"], groups=prev["g"], subs=prev["s"]) if prev else None,)))
        if ok and not diffs:
            self.move_marks(rows, full)
        return diffs

    def move_marks(self, rows, full):
        """After a successful run each incremental schedule's mark becomes the largest
        value the run read. Grouparoo (shared doc §2.5 "options.column"): the run lists
        `WHERE col >= <hwm>` and the new hwm is the last row's value; a run that lists no
        row leaves the hwm where it was (the next run starts from the last run that
        created an import). So an incremental read never moves a mark back, not even when
        the row holding the largest value was deleted. A read of everything (joey:
        --full, a primary source without an incremental schedule, a schedule that is not
        incremental, a schedule without a mark yet; docs/config.md "Incremental
        schedules") takes every mark from all the rows it saw."""
        srcs = self.spec["sources"]
        inc = [t for t, sd in srcs.items() if sd["schedule"] == "inc"]
        whole = self.reads_everything(full)
        for t in inc:
            mark = None if whole else self.marks.get(t)
            vals = [r["updated_at"] for r in rows[t] if mark is None or r["updated_at"] >= mark]
            if vals:
                self.marks[t] = max(vals)

    def _set(self, di, ext, u, s):
        if u is None:
            self.bz[di].pop(ext, None)
        else:
            self.bz[di][ext] = u
        if s is None:
            self.sent[di].pop(ext, None)
        else:
            self.sent[di][ext] = s


# ---------------------------------------------------------------- data points

EXEMPT = {"external_id", "_update_existing_only", "subscription_groups", "country", "language",
          "email_subscribe", "push_subscribe", "user_alias", "braze_id"}


def check_data_points(before, after, reqs, fresh=(), exported=None, outside=None):
    """On a clean run after a clean run: every attribute sent changed in Braze, and every
    change was sent once (data points = fields that changed). fresh: keys exported for the
    first time to a user that already existed (seeded): joey cannot know Braze's values.
    exported (None: not checked): keys exported before this run; a record's first export
    sets every mapped field, so a null sent there is the deliberate unset Grouparoo's
    first export also sent (the user may exist in Braze already), not a wasted change.
    outside: {key: `groups` values Braze got from elsewhere (a seeded user) and joey never
    sent}: joey knows only what it sent, so adding one of those when the record joins the
    group is not a wasted change (Grouparoo sent the whole array on every export)."""
    b = {u["external_id"]: norm_user(u) for u in before}
    a = {u["external_id"]: norm_user(u) for u in after}
    sent = {}
    problems = []
    for q in reqs:
        if q.get("endpoint") != "track" or not (200 <= q.get("status", 0) < 300):
            continue
        for obj in (q.get("body") or {}).get("attributes", []):
            ext = obj.get("external_id")
            if ext in fresh:
                continue
            for key, v in obj.items():
                if key in EXEMPT:
                    continue
                if key == "groups" and isinstance(v, dict):
                    old = set(b[ext]["g"]) if ext in b else set()
                    for x in v.get("add", []):
                        if x in old and x not in (outside or {}).get(ext, ()):
                            problems.append("record %s: groups value %r added but Braze already had it" % (ext, x))
                    for x in v.get("remove", []):
                        if x not in old:
                            problems.append("record %s: groups value %r removed but Braze did not have it" % (ext, x))
                    continue
                sent.setdefault(ext, []).append(key)
    for ext, keys in sent.items():
        if len(keys) != len(set(keys)):
            problems.append("record %s: fields sent more than once in one run: %s" % (ext, sorted(keys)))
        old = b.get(ext, {"f": {}})["f"]
        new = a.get(ext, {"f": {}})["f"]
        for key in set(keys):
            if key == "groups":
                continue
            # exactly the same value (no float tolerance: a sum that moved by 0.1 at 1e15
            # did change, and Braze stores the new double)
            if exact_value(old.get(key), new.get(key)):
                if exported is not None and ext not in exported and new.get(key) is None:
                    continue
                problems.append("record %s: field %s sent although unchanged (%r)" % (ext, key, old.get(key)))
    for ext, u in a.items():
        if ext in fresh:
            continue
        old = b.get(ext, {"f": {}})["f"]
        for key in set(u["f"]) | set(old):
            if not same_value(old.get(key), u["f"].get(key)) and key not in sent.get(ext, []):
                problems.append("record %s: field %s changed (%r -> %r) without being sent" % (
                    ext, key, old.get(key), u["f"].get(key)))
    return "; ".join(problems[:10]) if problems else None
