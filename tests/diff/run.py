#!/usr/bin/python3
"""tests/diff/run.py: randomized differential test of joey against an independent
reference of Grouparoo's semantics (see tests/diff/README.md).

  tests/diff/run.py --seed N --steps K --source sqlite|postgres|mysql|csv|all
                    [--state sqlite|postgres|both]

Each seed generates a random Grouparoo config (sources, properties with aggregations and
filters, groups with random rules, 1-3 Braze destinations in every sync mode, incremental
or full schedules) over a small warehouse, then K steps of random warehouse changes, each
followed by the `joey run` a user would do (sometimes --full, sometimes killed with
SIGKILL and re-run, sometimes against injected 429/5xx storms and per-row errors). After
each run the simulators' whole user stores are compared with the reference model
(tests/diff/reference.py), which never looks at joey's code.
"""
import argparse
import copy
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference as REF  # noqa: E402
import warehouse as WH  # noqa: E402
import gen as GEN  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def find_bin(name, env):
    if os.environ.get(env):
        return os.environ[env]
    if name == "braze-sim" and os.environ.get("JOEY_BIN"):
        p = os.path.join(os.path.dirname(os.environ["JOEY_BIN"]), "braze-sim")
        if os.path.exists(p):
            return p
    for d in ("build-diff", "build", "build-test"):
        p = os.path.join(ROOT, d, name)
        if os.path.exists(p):
            return p
    sys.exit("cannot find %s (set %s)" % (name, env))


# ---------------------------------------------------------------- the simulators

class Sim:
    def __init__(self, binary, tmp, idx):
        self.portfile = os.path.join(tmp, "sim%d.port" % idx)
        self.proc = subprocess.Popen(
            [binary, "--port", "0", "--port-file", self.portfile, "--api-key", "diff-key",
             "--max-lifetime", "3600", "--quiet", "--seed", str(idx + 1)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            if os.path.exists(self.portfile) and os.path.getsize(self.portfile) > 0:
                break
            time.sleep(0.02)
        self.url = "http://127.0.0.1:%s" % open(self.portfile).read().strip()

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read() or b"null")

    def users(self):
        return self.call("GET", "/_sim/users")["users"]

    def last_seq(self):
        return self.call("GET", "/_sim/requests?since=999999999")["last_seq"]

    def requests(self, since):
        return self.call("GET", "/_sim/requests?since=%d" % since)["requests"]

    def stop(self):
        try:
            self.proc.terminate()
            self.proc.wait(5)
        except Exception:
            self.proc.kill()


# ---------------------------------------------------------------- the state store

_state_counter = [0]


def state_unavailable(state):
    if state == "sqlite":
        return None
    if state != "postgres":
        return "unknown state backend %s" % state
    if not os.environ.get("JOEY_PG_URL"):
        return "JOEY_PG_URL is not set (the PostgreSQL state store needs a server)"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "python3-psycopg2 is not installed (run with /usr/bin/python3 or apt-get install python3-psycopg2)"
    return None


class SqliteState:
    """joey's default store: a file in the scenario's work directory."""
    kind = "sqlite"

    def __init__(self, tmp):
        self.path = os.path.join(tmp, "state", "state.db")
        os.makedirs(os.path.dirname(self.path))
        self.arg = self.path

    def marks(self):
        import sqlite3
        con = sqlite3.connect(self.path)
        try:
            return dict(con.execute("SELECT schedule_id, value FROM marks").fetchall())
        finally:
            con.close()

    def pending(self):
        import sqlite3
        if not os.path.exists(self.path):
            return {}
        con = sqlite3.connect(self.path)
        try:
            rows = con.execute("SELECT dest_id, key FROM records WHERE pending = 1").fetchall()
        except sqlite3.OperationalError:  # no records table yet
            rows = []
        finally:
            con.close()
        out = {}
        for d, k in rows:
            out.setdefault(d, set()).add(str(k))
        return out

    def close(self):
        pass


class PgState:
    """`--state postgresql://...?schema=S`: a fresh schema in $JOEY_PG_URL's database
    (`diffstate_<pid>_<n>`; joey creates it), dropped at the end, as
    tests/e2e/lib.bash does for E2E_STATE=postgres."""
    kind = "postgres"

    def __init__(self, tmp):
        _state_counter[0] += 1
        self.schema = "diffstate_%d_%d" % (os.getpid(), _state_counter[0])
        url = os.environ["JOEY_PG_URL"]
        self.arg = url + ("&" if "?" in url else "?") + "schema=" + self.schema
        self.u = WH._url("JOEY_PG_URL")

    def _connect(self):
        import psycopg2
        return psycopg2.connect(host=self.u["host"], port=self.u["port"], user=self.u["user"],
                                password=self.u["password"], dbname=self.u["database"])

    def marks(self):
        con = self._connect()
        try:
            with con.cursor() as c:
                c.execute("SELECT to_regclass(%s)", (self.schema + ".marks",))
                if c.fetchone()[0] is None:
                    return {}
                c.execute("SELECT schedule_id, value FROM %s.marks" % self.schema)
                return dict(c.fetchall())
        finally:
            con.close()

    def pending(self):
        con = self._connect()
        out = {}
        try:
            with con.cursor() as c:
                c.execute("SELECT to_regclass(%s)", (self.schema + ".records",))
                if c.fetchone()[0] is None:
                    return {}
                c.execute("SELECT dest_id, CASE key_kind WHEN 0 THEN key_int::text"
                          " ELSE convert_from(key_text, 'UTF8') END FROM %s.records WHERE pending" % self.schema)
                for d, k in c.fetchall():
                    out.setdefault(d, set()).add(k)
        finally:
            con.close()
        return out

    def close(self):
        try:
            con = self._connect()
            con.autocommit = True
            with con.cursor() as c:
                c.execute("DROP SCHEMA IF EXISTS %s CASCADE" % self.schema)
            con.close()
        except Exception:
            pass


def make_state(kind, tmp):
    return PgState(tmp) if kind == "postgres" else SqliteState(tmp)


def kill_latency_ms(kill):
    """The simulators' latency during a run killed after `kill` seconds: 10%, 40%, 70%,
    90% or 150% of it, picked by the kill time's milliseconds (deterministic per
    scenario), so that the kill lands before, during or after the first answers."""
    ms = int(round(kill * 1000))
    return int(ms * (0.1, 0.4, 0.7, 0.9, 1.5)[ms % 5])


# ---------------------------------------------------------------- one scenario

class Failure(Exception):
    pass


class Scenario:
    """Runs a (spec, steps) scenario over one source type; raises Failure on the first
    difference. Deterministic apart from kill timing and wall-clock time."""

    def __init__(self, spec, steps, source, t0, joey, sim_bin, keep=False, verbose=False, state="sqlite"):
        self.spec, self.steps, self.source, self.t0 = spec, steps, source, t0
        self.state_kind = state
        self.joey, self.sim_bin, self.keep, self.verbose = joey, sim_bin, keep, verbose
        self.log = []

    def note(self, msg):
        self.log.append(msg)
        if self.verbose:
            print("   " + msg, flush=True)

    def run(self):
        self.tmp = tempfile.mkdtemp(prefix="joey-diff.")
        self.wh = WH.make(self.source, self.tmp)
        self.state = make_state(self.state_kind, self.tmp)
        self.sims = []
        try:
            return self._run()
        finally:
            for s in self.sims:
                s.stop()
            self.wh.close()
            if not self.keep:
                self.state.close()
            elif self.state.kind == "postgres":
                print("   state store kept: %s" % self.state.arg, flush=True)
            if not self.keep:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def joey_run(self, full, kill_after=None):
        cmd = [self.joey, "run", "--config", self.cfgdir, "--state", self.state.arg, "--force"]
        if full:
            cmd.append("--full")
        # the records joey's store says pending before this run (an attempt failed, or a
        # killed run may have sent them): re-sent in full, which the data-point check allows
        self.pending_at_start = self.state.pending()
        env = dict(os.environ, DIFF_BRAZE_KEY="diff-key", DIFF_DB_PASSWORD=self.wh.password)
        for i, s in enumerate(self.sims):
            env["GROUPAROO_OPTION__APP__DIFF_BRAZE_URL_%d" % i] = s.url
        t = time.time()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        if kill_after is not None:
            try:
                out, err = p.communicate(timeout=kill_after)
                return p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), False
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
                p.communicate()
                return None, "", "", True
        try:
            out, err = p.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise Failure("joey run did not finish in 300 s\n" + err.decode(errors="replace")[-3000:])
        self.note("joey run%s: exit %d in %.2fs" % (" --full" if full else "", p.returncode, time.time() - t))
        return p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), False

    def _run(self):
        spec = self.spec
        self.cfgdir = os.path.join(self.tmp, "config")
        os.makedirs(self.cfgdir)
        self.sims = [Sim(self.sim_bin, self.tmp, i) for i in range(len(spec["dests"]))]
        tables = copy.deepcopy(GEN.initial_tables(spec))
        self.wh.create(tables)
        cfg = GEN.render(spec, self.wh, len(self.sims))
        with open(os.path.join(self.cfgdir, "config.json"), "w") as f:
            json.dump(cfg, f, indent=1, ensure_ascii=False)
        model = REF.Model(spec, self.t0)
        REF.SOURCE[0] = self.source
        # seed the enrich destinations' simulators
        for di, d in enumerate(spec["dests"]):
            if d.get("seed"):
                self.sims[di].call("POST", "/_sim/users", {"users": d["seed"]})
        model.load_braze([s.users() for s in self.sims])
        clean_before = True
        for si, step in enumerate([{"muts": [], "run": {"full": False}}] + self.steps):
            self.step_no = si
            corrupt = set()
            for m in step["muts"]:
                GEN.apply_mut(tables, m)
                if m[0] == "corrupt" and "unreadable-row" not in REF.ALLOW:
                    corrupt.add(m[1])
            self.wh.write(tables, corrupt)
            r = step["run"]
            self.note("step %d: %d changes%s, run %s" % (si, len(step["muts"]),
                                                        " (corrupt %s)" % sorted(corrupt) if corrupt else "", json.dumps(r)))
            rows = self.wh.read(tables)
            # rows made unreadable: the reference sees them as unreadable, not deleted
            rows["users"] = [u for u in rows["users"] if u["id"] not in corrupt]
            before = [s.users() for s in self.sims]
            seqs = [s.last_seq() for s in self.sims]
            faulty = False
            if r.get("faults"):
                for di, rules in r["faults"]:
                    if di < len(self.sims):
                        self.sims[di].call("POST", "/_sim/faults", {"faults": rules})
                        faulty = True
            if r.get("kill") is not None:
                # joey's runs over this little data take some 20 ms, so a kill after
                # 10-300 ms would mostly come after the end: the simulators answer late
                # (after applying the request) by a latency taken from the kill time, so
                # kills land before, between and after Braze's answers and joey's commits
                lat = kill_latency_ms(r["kill"])
                for s in self.sims:
                    s.call("POST", "/_sim/config", {"latency_ms": lat})
                rc, out, err, killed = self.joey_run(r["full"], kill_after=r["kill"])
                if killed:
                    # a request of the killed run is applied at once but logged when its
                    # late answer goes out: wait for those, or the next run's request log
                    # would hold them
                    time.sleep(lat / 1000.0 + 0.2)
                for s in self.sims:
                    s.call("POST", "/_sim/config", {"latency_ms": 0})
                self.note("killed after %.2fs" % r["kill"] if killed else "finished before the kill (exit %s)" % rc)
                if not killed:
                    self.after_run(model, rows, rc, out, err, r, corrupt, strict=self.claims_success(rc, corrupt),
                                   before=before, seqs=seqs, clean_before=False)
                for s in self.sims:
                    s.call("DELETE", "/_sim/faults")
                rc, out, err, _ = self.joey_run(False)
                ok_rc = not corrupt
                self.after_run(model, rows, rc, out, err, {"full": False}, corrupt, strict=ok_rc, before=before,
                               seqs=seqs, clean_before=False)
                clean_before = False
                continue
            rc, out, err, _ = self.joey_run(r["full"])
            if faulty:
                self.after_run(model, rows, rc, out, err, r, corrupt, strict=self.claims_success(rc, corrupt),
                                   before=before, seqs=seqs, clean_before=False)
                for s in self.sims:
                    s.call("DELETE", "/_sim/faults")
                before = [s.users() for s in self.sims]
                seqs = [s.last_seq() for s in self.sims]
                rc, out, err, _ = self.joey_run(False)
                self.after_run(model, rows, rc, out, err, {"full": False}, corrupt, strict=not corrupt,
                               before=before, seqs=seqs, clean_before=(model.last_rc == 0))
                clean_before = False
                continue
            self.after_run(model, rows, rc, out, err, r, corrupt, strict=not corrupt, before=before, seqs=seqs,
                           clean_before=clean_before)
            clean_before = (rc == 0)
        return True

    @staticmethod
    def claims_success(rc, corrupt):
        """A run with injected faults (or one that finished before its kill) is held to
        the obligations when joey says it succeeded (exit 0: every export confirmed),
        not only "previous state or reference": otherwise an export that changes
        nothing visible (an additive leave re-sending the same fields) leaves the
        reference unsure whether it happened, and it expects it again later."""
        return rc == 0 and not corrupt

    def after_run(self, model, rows, rc, out, err, r, corrupt, strict, before, seqs, clean_before):
        """Compare the simulators with the reference after one joey run."""
        where = "step %d" % self.step_no
        actual = [s.users() for s in self.sims]
        if corrupt:
            if rc == 0:
                raise Failure("%s: a row was unreadable (record %s) but joey exited 0\nstderr: %s" %
                              (where, sorted(corrupt), err[-2000:]))
        elif strict and rc != 0:
            raise Failure("%s: joey run exited %d on a clean run\nstderr: %s" % (where, rc, err[-3000:]))
        fresh = [{ext for ext in b if ext not in model.sent[di]} for di, b in enumerate(model.bz)]
        # a pending record is re-sent in full (docs/internals/export.md): joey no longer
        # knows what Braze has for it. Pending after a clean run only when a killed run
        # may have sent it (docs/internals/state.md, "Writing and crash safety")
        for di, d in enumerate(self.spec["dests"]):
            fresh[di] |= self.pending_at_start.get(d["id"], set())
        first = [set(model.sent[di]) for di in range(len(model.bz))]  # exported before: not first
        # `groups` values Braze got from outside (a seeded user's) that joey never sent:
        # it cannot know Braze has them, so adding one is not a wasted data point
        outside = [{str(u["external_id"]): set(u.get("groups") or []) - set((model.sent[di].get(str(u["external_id"])) or {}).get("g", []))
                    for u in d.get("seed") or []} for di, d in enumerate(self.spec["dests"])]
        diffs = model.step(rows, actual, full=r["full"], ok=(rc == 0), strict=strict, frozen=corrupt)
        if diffs:
            raise Failure("%s: Braze differs from the reference (joey exit %s):\n%s\njoey stderr (tail):\n%s" %
                          (where, rc, "\n".join(diffs[:25]) + ("\n... %d more" % (len(diffs) - 25) if len(diffs) > 25 else ""),
                           err[-1500:]))
        model.last_rc = rc
        if rc == 0:
            self.check_marks(model, where)
        if strict and clean_before and rc == 0:
            for di, s in enumerate(self.sims):
                reqs = s.requests(seqs[di])
                msg = REF.check_data_points(before[di], actual[di], reqs, fresh[di], first[di], outside[di])
                if msg:
                    raise Failure("%s: destination %s: %s" % (where, self.spec["dests"][di]["id"], msg))


    def check_marks(self, model, where):
        """After a run that exits 0 joey's stored marks are the reference's: each
        incremental schedule's mark is the largest value its listing found (never moved
        back by an incremental run), or of all rows after a read of everything."""
        stored = self.state.marks()
        for t, sd in self.spec["sources"].items():
            if sd["schedule"] != "inc":
                continue
            want = model.marks.get(t)
            got = stored.get(t + "_sched")
            if (None if want is None else str(want)) != got:
                raise Failure("%s: schedule %s_sched: joey's mark is %r, the reference's %r" % (where, t, got, want))


# ---------------------------------------------------------------- driver, shrinking

def fails(spec, steps, args, source, t0, state):
    sc = Scenario(spec, steps, source, t0, args.joey, args.sim, state=state)
    try:
        sc.run()
        return None
    except Failure as e:
        return str(e)
    except WH.Skip:
        raise
    except Exception as e:  # a harness error is a failure too, but says so
        import traceback
        return "harness error: %s\n%s" % (e, traceback.format_exc())


def shrink(spec, steps, args, source, t0, first_msg, state):
    deadline = time.time() + args.shrink_seconds
    msg = first_msg
    tries = 0

    def attempt(s2, st2):
        nonlocal msg, tries
        if time.time() > deadline:
            return False
        tries += 1
        m = fails(s2, st2, args, source, t0, state)
        if m and not m.startswith("harness error"):
            msg = m
            return True
        return False

    changed = True
    while changed and time.time() < deadline:
        changed = False
        # drop whole steps (from the end first: later steps rarely matter)
        i = len(steps) - 1
        while i >= 0:
            st2 = steps[:i] + steps[i + 1:]
            if attempt(spec, st2):
                steps = st2
                changed = True
            i -= 1
        for cand in GEN.spec_reductions(spec):
            if attempt(cand, steps):
                spec = cand
                changed = True
                break
        if changed:
            continue
        # drop single changes, then simplify runs
        for i in range(len(steps)):
            j = len(steps[i]["muts"]) - 1
            while j >= 0:
                st2 = copy.deepcopy(steps)
                del st2[i]["muts"][j]
                if attempt(spec, st2):
                    steps = st2
                    changed = True
                j -= 1
            for k in ("faults", "kill"):
                if steps[i]["run"].get(k) is not None:
                    st2 = copy.deepcopy(steps)
                    st2[i]["run"].pop(k)
                    if attempt(spec, st2):
                        steps = st2
                        changed = True
    return spec, steps, msg, tries


def one_seed(seed, nsteps, source, args, state="sqlite"):
    rnd = random.Random("%s:%d" % (source, seed))
    t0 = int(time.time() // 3600 * 3600)
    spec = GEN.gen_spec(rnd, source, t0)
    steps = GEN.gen_steps(rnd, spec, nsteps, source, t0)
    t = time.time()
    sc = Scenario(spec, steps, source, t0, args.joey, args.sim, keep=args.keep, verbose=args.verbose,
                  state=state)
    what = "seed %d source %s state %s" % (seed, source, state)
    try:
        sc.run()
        print("ok   %s: %d steps in %.1fs" % (what, nsteps, time.time() - t), flush=True)
        return True
    except WH.Skip as e:
        print("skip %s: %s" % (what, e), flush=True)
        return True
    except Failure as e:
        msg = str(e)
    except Exception:
        import traceback
        msg = "harness error\n" + traceback.format_exc()
    print("FAIL %s (after %.1fs)\n%s" % (what, time.time() - t, msg), flush=True)
    if args.shrink_seconds > 0 and not msg.startswith("harness error"):
        print("  minimizing (up to %ds)..." % args.shrink_seconds, flush=True)
        s2, st2, m2, tries = shrink(spec, steps, args, source, t0, msg, state)
    else:
        s2, st2, m2, tries = spec, steps, msg, 0
    out = tempfile.mkdtemp(prefix="joey-diff-repro.%s.%s.%d." % (source, state, seed))
    cfg = GEN.render(s2, WH.Placeholder(source), len(s2["dests"]))
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1, ensure_ascii=False)
    with open(os.path.join(out, "scenario.json"), "w") as f:
        json.dump({"source": source, "state": state, "seed": seed, "t0": t0, "spec": s2, "steps": st2,
                   "initial_tables": GEN.initial_tables(s2)}, f, indent=1, ensure_ascii=False)
    with open(os.path.join(out, "failure.txt"), "w") as f:
        f.write(m2 + "\n")
    print("  minimized (%d replays): %d destinations, %d groups, %d properties, %d steps, %d changes" % (
        tries, len(s2["dests"]), len(s2["groups"]), len(s2["props"]), len(st2), sum(len(s["muts"]) for s in st2)))
    print("  minimized failure:\n" + "\n".join("    " + l for l in m2.splitlines()[:40]))
    print("  steps: " + json.dumps(st2, ensure_ascii=False)[:3000])
    print("  reproduction written to %s (config.json, scenario.json; replay: %s --replay %s/scenario.json)" % (
        out, sys.argv[0], out), flush=True)
    return False


def replay(path, args, verbose=True):
    sc = json.load(open(path))
    state = args.state_override or sc.get("state", "sqlite")
    s = Scenario(sc["spec"], sc["steps"], sc["source"], sc["t0"], args.joey, args.sim, keep=verbose, verbose=verbose,
                 state=state)
    try:
        s.run()
        print("replay passed" if verbose else "ok   scenario %s (state %s)" % (os.path.basename(path), state), flush=True)
        return True
    except Failure as e:
        print("replay FAILED: %s\n%s%s" % (path, e, "\n(work dir %s)" % s.tmp if verbose else ""), flush=True)
        return False


SCENARIOS = os.path.join(HERE, "scenarios")


def replay_fixed(args):
    """The fixed scenarios (tests/diff/scenarios/*.json): failures the soak found, kept
    as regression tests, each replayed over its own source type."""
    ok = True
    for name in sorted(os.listdir(SCENARIOS)) if os.path.isdir(SCENARIOS) else []:
        if not name.endswith(".json"):
            continue
        path = os.path.join(SCENARIOS, name)
        sc = json.load(open(path))
        reason = WH.unavailable(sc["source"]) or state_unavailable(args.state_override or sc.get("state", "sqlite"))
        if reason:
            print("skip scenario %s: %s" % (name, reason), flush=True)
            continue
        ok = replay(path, args, verbose=False) and ok
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=1, help="run seeds seed..seed+N-1")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--source", default="sqlite")
    ap.add_argument("--state", default=None,
                    help="joey's state store: sqlite (a file), postgres (a fresh schema in $JOEY_PG_URL's "
                         "database per scenario) or both; with --replay/--scenarios it overrides the "
                         "scenario's own")
    ap.add_argument("--shrink-seconds", type=int, default=120)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--allow", default=os.environ.get("DIFF_ALLOW", ""),
                    help="accept these known differences (comma list; see reference.KNOWN); default strict")
    ap.add_argument("--ctest", action="store_true",
                    help="the CTest set: fixed seeds per source type within about 150 s")
    ap.add_argument("--budget", type=float, default=0, help="start no new seed after this many seconds")
    ap.add_argument("--replay", help="replay a scenario.json written by a failure")
    ap.add_argument("--scenarios", action="store_true",
                    help="replay the fixed scenarios in tests/diff/scenarios (--ctest does too)")
    args = ap.parse_args()
    for a in filter(None, args.allow.split(",")):
        if a not in REF.KNOWN:
            sys.exit("unknown --allow %s (known: %s)" % (a, ", ".join(sorted(REF.KNOWN))))
        REF.ALLOW.add(a)
    states = ["sqlite", "postgres"] if args.state == "both" else (args.state or "sqlite").split(",")
    for st in states:
        if st not in ("sqlite", "postgres"):
            sys.exit("unknown --state %s (sqlite, postgres or both)" % st)
    args.state_override = states[0] if args.state and len(states) == 1 else None
    args.joey = find_bin("joey", "JOEY_BIN")
    args.sim = find_bin("braze-sim", "BRAZE_SIM_BIN")
    if args.replay:
        sys.exit(0 if replay(args.replay, args) else 1)
    if args.scenarios:
        sys.exit(0 if replay_fixed(args) else 1)
    sources = ["sqlite", "csv", "postgres", "mysql"] if args.source == "all" else args.source.split(",")
    plan = [(src, range(args.seed, args.seed + args.seeds), args.steps, st) for st in states for src in sources]
    if args.ctest:
        # fixed seeds; a failure is shrunk for at most 20 s. Two seeds with the state
        # store in PostgreSQL (skipped with a message without JOEY_PG_URL)
        plan = [("sqlite", range(1, 9), 10, "sqlite"), ("csv", range(1, 7), 10, "sqlite"),
                ("postgres", range(1, 5), 10, "sqlite"), ("sqlite", range(101, 102), 10, "postgres"),
                ("postgres", range(101, 102), 10, "postgres"), ("mysql", range(1, 4), 10, "sqlite")]
        args.shrink_seconds = min(args.shrink_seconds, 15)
        args.budget = args.budget or 140
    t = time.time()
    ok = replay_fixed(args) if args.ctest else True
    counts = {}
    for src, seeds, nsteps, st in plan:
        reason = WH.unavailable(src)
        if reason:
            print("skip source %s: %s" % (src, reason), flush=True)
            continue
        reason = state_unavailable(st)
        if reason:
            print("skip state %s (source %s): %s" % (st, src, reason), flush=True)
            continue
        for seed in seeds:
            if args.budget and time.time() - t > args.budget:
                print("time budget of %ds used: seeds from %s seed %d on not run" % (args.budget, src, seed))
                break
            ok = one_seed(seed, nsteps, src, args, st) and ok
            key = src if st == "sqlite" else "%s/%s-state" % (src, st)
            counts[key] = counts.get(key, 0) + 1
    print("seeds run: %s" % ", ".join("%s %d" % kv for kv in counts.items()))
    print("%s in %.1fs" % ("all passed" if ok else "FAILURES", time.time() - t))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
