#!/usr/bin/env python3
"""serve_safety.py: the API's safety and clarity rules for the web UI (issue #16), against
the real binary and the Braze simulator:
- a config write that would delete or unsubscribe users, or loosen the mass-delete guard,
  is refused with 409 and its impact in words and numbers unless it carries ?confirm= with
  the impact's token (a wrong or stale token is refused too); nothing on disk changes
  until then; the confirmation is audited;
- a run the guard held says so (held: what, how many, who may approve) and
  POST /runs/{id}/approve runs it with the guard lifted, audited;
- a run whose only trouble is rows Braze refused is "completed_with_failures" with
  failed_rows, and its failed rows carry a plain explanation (retry: false for a blocked
  user ID);
- the live counters of a running run (requests, throttled) move during the run, and a
  finished run keeps its trigger and records read;
- a Braze key Braze refuses is not saved unless ?unverified=true."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import (TMP, Server, Sim, check, dir_digest, finish, small_config, wait_for)  # noqa: E402

N = 3000
# user 7's id is one Braze refuses; track allows 4 requests a second, so a run takes a while
sim = Sim("--blocklist-id", "7", "--rate", "track=4/1")
os.environ["BRAZE_KEY"] = "test-key"
cfg, db = small_config(TMP, sim.url, n=N)
state = os.path.join(TMP, "st", "state.db")
os.makedirs(os.path.dirname(state))
srv = Server(cfg, state)


def run_and_follow(body):
    x = srv.get("/api/v1/runs?destination=d&limit=1")
    prev = max([i["id"] or 0 for i in x.json["items"]] + [0]) if x.status == 200 else 0
    r = srv.post("/api/v1/runs", body)
    check("run requested", r.status == 202, r)
    seen = []

    def done():
        x = srv.get("/api/v1/runs?destination=d&limit=5")
        items = x.json["items"] if x.status == 200 else []
        for it in items:
            if it["status"] == "running":
                seen.append(it)
        if items and not any(i["status"] in ("queued", "running") for i in items):
            return items
        return None
    items = wait_for(done, 180, 0.1)
    # the API shows a run asked for as queued or running until its row is listed: the
    # first list without either must already hold the new run
    check("the run asked for is in the list once it is no longer queued or running",
          items and items[0]["id"] > prev, (prev, items and items[0]))
    return items, seen


# ---- a first run: 3,000 users, one refused, throttled on the way ----
items, live = run_and_follow({"destination": "d"})
check("the run finished", items is not None, items)
run = items[0]
check("a run with one refused row is completed_with_failures, not failed",
      run["status"] == "completed_with_failures" and run["failed_rows"] == 1
      and run["counts"]["created"] == N - 1, run)
check("the live counts moved during the run: requests and 429s (they stayed 0 before)",
      any(x["counts"]["requests"] > 0 for x in live) and any(x["counts"]["throttled"] > 0 for x in live)
      and any(0 < x["counts"]["requests"] < run["counts"]["requests"] for x in live),
      [x["counts"] for x in live[-3:]])
check("a finished run keeps its trigger and records read", run["trigger"] == "api" and run["records_read"] == N, run)
r = srv.get("/api/v1/errors?destination=d")
e = r.json["items"][0] if r.status == 200 and r.json["items"] else {}
check("the failed row comes with a plain explanation; retrying cannot help",
      e.get("key") == "7" and e["explanation"]["code"] == "BLACKLISTED_EXTERNAL_USER_ID"
      and "blocked" in e["explanation"]["title"] and e["explanation"]["retry"] is False, r)

# ---- a destructive change: Sync with nobody sent deletes every user (the refused one too:
# joey cannot tell whether Braze holds it) ----
d = srv.get("/api/v1/config/destinations/d").json
d.pop("file")
paused = dict(d, collection="none")
before = dir_digest(cfg)
r = srv.call("PUT", "/api/v1/config/destinations/d", paused)
imp = (r.json or {}).get("impact") or {}
dest = (imp.get("destinations") or [{}])[0]
check("switching to nobody under Sync is refused with 409 and the impact",
      r.status == 409 and dest.get("after", {}).get("deletes") == N and dest["destructive"] is True
      and "3,000 Braze users" in r.json["detail"] and len(imp.get("token", "")) == 16, r)
check("the impact names the guard that would hold the run",
      any("guard" in x for x in dest.get("reasons", [])), dest)
check("nothing was written", dir_digest(cfg) == before)
r2 = srv.call("PUT", "/api/v1/config/destinations/d?confirm=0000000000000000", paused)
check("a wrong token is refused the same way", r2.status == 409 and dir_digest(cfg) == before, r2)
r2 = srv.call("PUT", "/api/v1/config/destinations/d?confirmed=yes", paused)
check("an unknown query parameter is refused", r2.status == 400, r2)
r2 = srv.call("PUT", "/api/v1/config/destinations/d?confirm=" + imp["token"], paused)
check("with the impact's token the change is written", r2.status == 200 and dir_digest(cfg) != before, r2)
r2 = srv.call("PUT", "/api/v1/config/destinations/d", dict(paused, name="Braze users (paused)"))
check("a change that deletes no more than before needs no confirmation", r2.status == 200, r2)
r2 = srv.get("/api/v1/audit?limit=5")
check("the confirmation is audited with its impact",
      any(a["action"] == "config.confirm_destructive" and a["after"]["destinations"][0]["after"]["deletes"] == N
          for a in r2.json["entries"]), r2)

# ---- loosening the guard is destructive too ----
loose = dict(paused, name="Braze users (paused)", options={"maxDeletePercent": 50})
r = srv.call("PUT", "/api/v1/config/destinations/d", loose)
check("raising the mass-delete guard needs a confirmation",
      r.status == 409 and any("guard is loosened from 10% to 50%" in x
                              for x in r.json["impact"]["destinations"][0]["reasons"]), r)

# ---- the guard holds the run; an editor approves it ----
items, _ = run_and_follow({"destination": "d"})
held = items[0]
check("the guard held the run, and the API says what and who may approve",
      held["status"] == "failed" and held["held"] and held["held"]["action"] == "delete"
      and held["held"]["count"] == N and held["held"]["approvers"] == ["admin", "editor"], held)
r = srv.post("/api/v1/runs/%d/approve" % run["id"])
check("a run that was not held cannot be approved", r.status == 409, r)
r = srv.post("/api/v1/runs/%d/approve" % held["id"], raw=b"{}")
check("approve takes no body", r.status == 400, r)
r = srv.post("/api/v1/runs/%d/approve" % held["id"])
check("approving the held run starts a run with the guard lifted", r.status == 202 and r.json["started"] == ["d"], r)
items = srv.wait_runs_done(180)
check("the approved run deleted the users", items and items[0]["status"] == "success"
      and items[0]["counts"]["deleted"] == N, items and items[0])
r = srv.post("/api/v1/runs/%d/approve" % held["id"])
check("an older held run cannot be approved again", r.status == 409 and "newer" in r.json["error"], r)
r = srv.get("/api/v1/audit?limit=10")
check("the approval is audited", any(a["action"] == "run.approve" and a["object"] == "d" for a in r.json["entries"]), r)

# ---- the Braze key is checked on save ----
app = srv.get("/api/v1/config/apps/braze").json
app.pop("file")
before = dir_digest(cfg)
wrong = dict(app, options=dict(app["options"], apiKey="not-the-key"))
r = srv.call("PUT", "/api/v1/config/apps/braze", wrong)
check("a key Braze refuses is not saved: 422 in plain words",
      r.status == 422 and r.json["needs"] == "unverified" and r.json["detail"] == "Braze did not accept this API key."
      and "apiKey" not in r.json["detail"] + r.json["hint"] and dir_digest(cfg) == before, r)
r = srv.call("PUT", "/api/v1/config/apps/braze?unverified=maybe", wrong)
check("unverified must be true or false", r.status == 400, r)
r = srv.call("PUT", "/api/v1/config/apps/braze?unverified=true", wrong)
check("save anyway is an explicit choice", r.status == 200 and dir_digest(cfg) != before, r)
d_now = srv.get("/api/v1/config/destinations/d").json
d_now.pop("file")
r = srv.call("PUT", "/api/v1/config/destinations/d", dict(d_now, collection="model"))
check("sending everyone again is not destructive", r.status == 200, r)
items, _ = run_and_follow({"destination": "d"})
check("a run with a key Braze refuses stops, and says why in plain words",
      items and items[0]["status"] == "failed" and items[0]["explanation"]["code"] == "key refused"
      and "admin" in items[0]["explanation"]["action"], items and items[0])
good = dict(app, options=dict(app["options"], apiKey="test-key"))
r = srv.call("PUT", "/api/v1/config/apps/braze", good)
check("the right key is checked and saved", r.status == 200, r)
r = srv.call("PUT", "/api/v1/config/apps/braze", dict(good, name="Braze (prod)"))
check("a change that keeps key and endpoint is not checked again", r.status == 200, r)

# ---- for the forms: sample values, schedules' next runs, subscription group names ----
r = srv.get("/api/v1/models/users/samples?limit=2")
check("sample values of the first records", r.status == 200 and r.json["records"] == 2
      and r.json["properties"]["email"] == ["u1@example.com", "u2@example.com"], r)
r = srv.get("/api/v1/models/users/samples?limit=99")
check("samples: at most 10", r.status == 400, r)
r = srv.get("/api/v1/cron?expr=0%203%20*%20*%20*")
nx = r.json.get("next", []) if r.status == 200 else []
check("cron: the next three runs, a day apart at 03:00 UTC",
      r.json["valid"] is True and len(nx) == 3 and all(t % 86400000 == 3 * 3600000 for t in nx)
      and nx[1] - nx[0] == 86400000, r)
r = srv.get("/api/v1/cron?expr=61%20*%20*%20*%20*")
check("cron: an invalid expression says why", r.status == 200 and r.json["valid"] is False and r.json["error"], r)
r = srv.get("/api/v1/cron")
check("cron: expr is required", r.status == 400, r)
sub = "8f0d3c4e-6a1b-4f5e-9c2d-1a2b3c4d5e6f"
d = srv.get("/api/v1/config/destinations/d").json
d.pop("file")
named = dict(d, destinationGroupMemberships={sub: "big", "vip": "big"}, subscriptionGroupNames={sub: "Newsletter"})
r = srv.call("PUT", "/api/v1/config/destinations/d", named)
if r.status == 409:
    r = srv.call("PUT", "/api/v1/config/destinations/d?confirm=" + r.json["impact"]["token"], named)
check("a destination with a named subscription group is saved", r.status == 200, r)
ms = {m["remote"]: m for m in srv.get("/api/v1/destinations").json[0]["memberships"]}
check("memberships say what each is, and the subscription group's name",
      ms[sub]["kind"] == "subscription_group" and ms[sub]["name"] == "Newsletter"
      and ms["vip"]["kind"] == "groups_value" and ms["vip"]["group"] == "big", ms)
typo = dict(named, destinationGroupMemberships={sub[:-1]: "big"}, subscriptionGroupNames={})
r = srv.call("PUT", "/api/v1/config/destinations/d", typo)
check("a mistyped subscription group ID is refused, not sent as a groups value",
      r.status == 422 and any("looks like a Braze subscription group ID" in x["message"] for x in r.json["diagnostics"]), r)

srv.stop()

# ---- after a restart the first run still says what started it and what it read (run_notes) ----
srv = Server(cfg, state)
r = srv.get("/api/v1/runs?destination=d&limit=50")
first = [x for x in (r.json["items"] if r.status == 200 else []) if x["id"] == run["id"]]
check("after a restart a finished run keeps its trigger and records read (state store's run_notes)",
      len(first) == 1 and first[0]["trigger"] == "api" and first[0]["records_read"] == N, first or r)
srv.stop()

# ---- repair mode: a config broken at start still serves the UI ----
import shutil  # noqa: E402
cfg2 = os.path.join(TMP, "cfg2")
shutil.copytree(cfg, cfg2)
shutil.copy(db, os.path.join(TMP, "data.db")) if not os.path.exists(os.path.join(TMP, "data.db")) else None
prop = os.path.join(cfg2, "properties", "n.json")
good_text = open(prop).read()
broken_text = good_text.replace('"type": "integer",', '"type": "integer",,', 1)
open(prop, "w").write(broken_text)
srv2 = Server(cfg2, os.path.join(TMP, "st", "state2.db"))
log2 = srv2.read_log()
check("a broken config at start: serve listens in repair mode and says so", "repair mode" in log2, log2)
st = srv2.get("/api/v1/status").json
diags = st["config_error"]["diagnostics"]
check("status: repair, the errors with the root cause (the syntax error) first",
      st["repair"] is True and diags[0]["file"] == "properties/n.json" and diags[0]["message"].startswith("syntax error")
      and diags[0]["follow_on"] is False and any(d["follow_on"] for d in diags[1:]), st)
r = srv2.get("/api/v1/models")
check("repair mode serves an empty config (nothing runs)", r.status == 200 and r.json == [], r)
r = srv2.get("/api/v1/files")
files = {f["path"]: f for f in r.json["files"]} if r.status == 200 else {}
check("the config files are listed with their errors; apps need an admin",
      files.get("properties/n.json", {}).get("errors") == 1 and files["apps/braze.json"]["admin_only"] is True
      and files["properties/n.json"]["admin_only"] is False, r)
r = srv2.get("/api/v1/files/properties%2Fn.json")
check("a file's text", r.status == 200 and r.json["text"] == broken_text, r)
r = srv2.get("/api/v1/files/..%2Fdata.db")
check("a path outside the config files is 404", r.status == 404, r)
r = srv2.call("PUT", "/api/v1/files/properties%2Fn.json", {"text": broken_text.replace(",,", ",,,")})
check("a save that is still broken is written in repair mode, with its diagnostics",
      r.status == 200 and r.json["valid"] is False and r.json["repair"] is True and r.json["diagnostics"], r)
r = srv2.call("PUT", "/api/v1/files/properties%2Fn.json", {"text": good_text})
check("the fix is saved, the config installed and repair mode ends",
      r.status == 200 and r.json["valid"] is True and r.json["repair"] is False, r)
st = srv2.get("/api/v1/status").json
check("status: no error, no repair", st["repair"] is False and st["config_error"] is None, st)
r = srv2.get("/api/v1/models")
check("the fixed config serves", r.status == 200 and r.json[0]["id"] == "users", r)
r = srv2.call("PUT", "/api/v1/files/properties%2Fn.json", {"text": broken_text})
check("outside repair mode a save must leave the config valid (422, nothing written)",
      r.status == 422 and r.json["diagnostics"] and open(prop).read() == good_text, r)
r = srv2.get("/api/v1/audit?limit=5")
check("file saves are audited", any(a["action"] == "config.file_edit" and a["object"] == "properties/n.json"
                                    for a in r.json["entries"]), r)
srv2.stop()
finish()
