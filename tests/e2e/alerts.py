"""alerts.py: alerts end to end (docs/config.md "Alerts", docs/api.md "Alerts").

Every trigger and channel against receivers started here on 127.0.0.1 (a webhook
receiver and an SMTP server with STARTTLS, alert_servers.py): the HMAC signature
checked independently, one message per incident (three failing runs, one alert), one
resolved message when it clears, retries with backoff (500 then 200), a message queued
by joey run and sent by joey serve after it, the API (create with secrets, masked
answers, the guard, test sends, deliveries, incidents) and no secret in any answer,
log or the state store.
"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_lib import JOEY, TMP, Server, Sim, bad, check, finish, ok, small_config, wait_for  # noqa: E402
from alert_servers import Smtp, Webhook, make_cert, verify_signature  # noqa: E402

WH_SECRET = "whsec-" + os.urandom(12).hex()
SMTP_PASSWORD = "smtp-pw-" + os.urandom(12).hex()
URL_TOKEN = "hooktoken" + os.urandom(8).hex()  # the part of each webhook URL that is a secret

sim = Sim()
wh = Webhook()
cert, key = make_cert(TMP)
smtp = Smtp(cert, key, user="joey", password=SMTP_PASSWORD)

root = os.path.join(TMP, "p")
os.makedirs(root)
cfg, db = small_config(root, sim.url, n=20)
state = os.path.join(root, ".joey", "state.db")
LOGS = []


def hook(name):
    return "%s/%s/%s" % (wh.url, name, URL_TOKEN)


def path(name):
    return "/%s/%s" % (name, URL_TOKEN)


def write_alert(obj):
    d = os.path.join(cfg, "alerts")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, obj["id"] + ".json"), "w") as f:
        json.dump(obj, f, indent=2)


ENV = dict(os.environ, BRAZE_KEY="test-key", WH_SECRET=WH_SECRET, SMTP_PASSWORD=SMTP_PASSWORD,
           JOEY_ALERT_RETRY_MS="300", JOEY_ALERT_WAIT="10")
for name in ("ops", "rows", "pct", "drop", "slow"):
    ENV["URL_" + name.upper()] = hook(name)

write_alert({"class": "Alert", "id": "ops", "name": "Ops on call", "type": "webhook", "destinationIds": ["d"],
             "triggers": {"runFailed": True}, "options": {"url": "${URL_OPS}", "secret": "${WH_SECRET}"}})
write_alert({"class": "Alert", "id": "rows", "name": "Rows channel", "type": "slack", "modelId": "users",
             "triggers": {"failedRows": 0}, "options": {"url": "${URL_ROWS}"}})
write_alert({"class": "Alert", "id": "pct", "type": "webhook", "triggers": {"failedRowsPercent": 4},
             "options": {"url": "${URL_PCT}", "secret": "${WH_SECRET}"}})
write_alert({"class": "Alert", "id": "guard", "name": "Guard mail", "type": "email", "triggers": {"deleteGuard": True},
             "options": {"host": "127.0.0.1", "port": smtp.port, "user": "joey", "password": "${SMTP_PASSWORD}",
                         "from": "joey@example.com", "to": "ops@example.com, data@example.com", "caFile": cert}})
write_alert({"class": "Alert", "id": "drop", "type": "webhook", "triggers": {"recordsDropPercent": 20},
             "options": {"url": "${URL_DROP}", "secret": "${WH_SECRET}"}})
write_alert({"class": "Alert", "id": "slow", "type": "webhook", "triggers": {"runLongerThan": "1s"},
             "options": {"url": "${URL_SLOW}", "secret": "${WH_SECRET}"}})


def joey(*args, env=None):
    p = subprocess.run([JOEY] + list(args), capture_output=True, text=True, env=env or ENV, cwd=root, timeout=120)
    LOGS.append(p.stdout + p.stderr)
    return p


def run(*extra, env=None):
    return joey("run", "--config", cfg, "--state", state, *extra, env=env)


def events(name):
    return [json.loads(r["body"]) for r in wh.got(path(name))]


def kinds(name):
    return [e.get("event") for e in events(name)]


def sql(q):
    with sqlite3.connect(state) as c:
        return c.execute(q).fetchall()


# ---- validation ----
p = joey("validate", "--config", cfg)
check("validate: the alerts are valid", p.returncode == 0, p.stdout + p.stderr)

# ---- runFailed: three failing runs make one message; a good run resolves it ----
bad_key = dict(ENV, BRAZE_KEY="wrong-key")
for i in range(3):
    p = run(env=bad_key)
    check("runFailed: failing run %d fails" % (i + 1), p.returncode == 1, p.stdout + p.stderr)
check("runFailed: three failing runs, one alert", kinds("ops") == ["alert.opened"], kinds("ops"))
reqs = wh.got(path("ops"))
try:
    ev = verify_signature(WH_SECRET, reqs[0])
    ok("webhook: the HMAC-SHA256 signature and timestamp verify independently")
except (ValueError, IndexError) as e:
    bad("webhook: signature", e)
    ev = events("ops")[0] if reqs else {}
try:
    verify_signature("another-secret", reqs[0])
    bad("webhook: a wrong secret must not verify")
except (ValueError, IndexError):
    ok("webhook: a wrong secret does not verify")
tampered = dict(reqs[0], body=reqs[0]["body"].replace(b'"runFailed"', b'"runFai1ed"')) if reqs else {}
try:
    verify_signature(WH_SECRET, tampered)
    bad("webhook: a changed body must not verify")
except (ValueError, KeyError):
    ok("webhook: a changed body does not verify")
check("webhook: the event names alert, destination, trigger, run and incident",
      ev.get("alert", {}).get("id") == "ops" and ev.get("destination") == "d" and ev.get("trigger") == "runFailed"
      and ev.get("run", {}).get("status") == "failed" and ev.get("incident", {}).get("id"), ev)
check("webhook: the summary says why (the key was refused)", "failed" in ev.get("summary", ""), ev.get("summary"))
check("webhook: X-Joey-Delivery and X-Joey-Event headers",
      reqs and reqs[0]["headers"].get("x-joey-delivery") == str(ev.get("delivery"))
      and reqs[0]["headers"].get("x-joey-event") == "alert.opened", reqs[0]["headers"] if reqs else None)
inc = sql("SELECT count(*), max(hits) FROM alert_incidents WHERE alert_id = 'ops' AND resolved_at IS NULL")
check("runFailed: one open incident seen by three runs", inc == [(1, 3)], inc)

p = run()
check("runFailed: a good run succeeds", p.returncode == 0, p.stdout + p.stderr)
check("runFailed: one resolved message", kinds("ops") == ["alert.opened", "alert.resolved"], kinds("ops"))
p = run()
check("runFailed: another good run sends nothing", len(kinds("ops")) == 2, kinds("ops"))

# ---- failedRows (Slack) and failedRowsPercent: a row Braze refuses ----
sim.post("/_sim/faults", {"action": "row_error", "external_id": "7", "type": "EMAIL_BAD_FORMAT"})
subprocess.run(["sqlite3", "-cmd", ".timeout 20000", db, "UPDATE users SET n = n + 100"], check=True)  # n is mapped: every user changes
run()
run()
slack = wh.got(path("rows"))
check("failedRows: two runs with a failed row, one Slack message", len(slack) == 1, [r["body"] for r in slack])
text = json.loads(slack[0]["body"]).get("text", "") if slack else ""
check("slack: a readable message naming the alert, destination and rows", "Rows channel" in text and "`d`" in text
      and "rows failed" in text, text)
check("slack: only a text member (Slack's incoming webhook format)", slack and list(json.loads(slack[0]["body"])) == ["text"],
      slack[0]["body"] if slack else None)
check("failedRowsPercent: 1 of 20 rows (5%) fired once", kinds("pct") == ["alert.opened"], kinds("pct"))
sim.post("/_sim/faults", {"action": "clear_row_error", "external_id": "7"})
run()
check("failedRows: resolved once the row goes through", len(wh.got(path("rows"))) == 2
      and ":white_check_mark:" in json.loads(wh.got(path("rows"))[-1]["body"])["text"], [r["body"] for r in wh.got(path("rows"))])
check("failedRowsPercent: resolved", kinds("pct") == ["alert.opened", "alert.resolved"], kinds("pct"))

# ---- deleteGuard (email over STARTTLS) and recordsDropPercent ----
subprocess.run(["sqlite3", "-cmd", ".timeout 20000", db, "DELETE FROM users WHERE id > 15"], check=True)  # 5 of 20: past the 10% guard
p = run()
check("deleteGuard: the guard holds the run", p.returncode == 1, p.stdout + p.stderr)
mails = smtp.got()
check("deleteGuard: one email", len(mails) == 1, mails)
m = mails[0] if mails else {"data": b"", "rcpt": [], "tls": False}
check("email: sent over STARTTLS, after AUTH PLAIN as the configured user", m["tls"] and m.get("auth_user") == "joey", m)
check("email: to both recipients", sorted(m["rcpt"]) == ["<data@example.com>", "<ops@example.com>"], m["rcpt"])
data = m["data"].decode("utf-8", "replace")
check("email: subject and body name the alert and the deletes held back",
      "Subject: [joey] ALERT d: " in data and "mass-delete guard held back 5 deletes" in data and "Guard mail" in data, data)
check("recordsDropPercent: 15 records after 20 (25%) fired", kinds("drop") == ["alert.opened"], kinds("drop"))
check("runFailed: the guard's failure opened a new incident", kinds("ops")[-1:] == ["alert.opened"], kinds("ops"))
run()
check("deleteGuard: held again, no second email", len(smtp.got()) == 1, len(smtp.got()))
p = run("--force")
check("deleteGuard: --force sends the deletes", p.returncode == 0, p.stdout + p.stderr)
check("deleteGuard: one resolved email", len(smtp.got()) == 2 and "RESOLVED" in smtp.got()[-1]["data"].decode(), len(smtp.got()))
check("recordsDropPercent: resolved when the count holds", kinds("drop") == ["alert.opened", "alert.resolved"], kinds("drop"))
check("runFailed: resolved again", kinds("ops")[-1:] == ["alert.resolved"], kinds("ops"))

# ---- runLongerThan ----
# (the runs that retried Braze's row errors above took longer than 1 s too: their
# incident opened and resolved already)
n0 = len(kinds("slow"))
check("runLongerThan: no incident open before", kinds("slow")[-1:] in ([], ["alert.resolved"]), kinds("slow"))
subprocess.run(["sqlite3", "-cmd", ".timeout 20000", db, "UPDATE users SET n = n + 100"], check=True)
sim.post("/_sim/faults", [{"endpoint": "track", "action": "slow", "delay_ms": 1500, "count": 1}])
run()
check("runLongerThan: a run over 1 s fired", kinds("slow")[n0:] == ["alert.opened"], kinds("slow"))
ev = events("slow")[-1] if events("slow") else {}
check("runLongerThan: the summary says how long", "took 1." in ev.get("summary", "") and "more than 1.0 s" in ev.get("summary", ""), ev)
run()
check("runLongerThan: a quick run resolves it", kinds("slow")[n0:] == ["alert.opened", "alert.resolved"], kinds("slow"))

# ---- retry with backoff: 500, then 200 ----
wh.answer(path("ops"), 500)
before = len(wh.got(path("ops")))
subprocess.run(["sqlite3", "-cmd", ".timeout 20000", db, "UPDATE users SET n = n + 100"], check=True)  # something to send with the wrong key
t0 = time.time()
run(env=bad_key)
got = wh.got(path("ops"))[before:]
check("retry: the receiver got the message twice (500, then 200)", len(got) == 2, [r["headers"] for r in got])
if len(got) == 2:
    check("retry: the same delivery both times", got[0]["headers"]["x-joey-delivery"] == got[1]["headers"]["x-joey-delivery"],
          [r["headers"] for r in got])
    d = sql("SELECT status, attempts, last_error FROM alert_deliveries WHERE id = %s" % got[0]["headers"]["x-joey-delivery"])
    check("retry: recorded as sent after 2 attempts", d and d[0][0] == "sent" and d[0][1] == 2, d)
opened = sql("SELECT count(*) FROM alert_deliveries WHERE alert_id = 'ops' AND event = 'opened'")[0][0]

# ---- a message joey run could not send is sent by joey serve later ----
wh.answer(path("ops"), 500)
run(env=dict(ENV, JOEY_ALERT_WAIT="0"))  # the good run resolves; the message fails once and stays queued
pend = sql("SELECT id, status, attempts FROM alert_deliveries WHERE alert_id = 'ops' AND event = 'resolved' ORDER BY id DESC LIMIT 1")
check("queued: joey run left the failed message pending", pend and pend[0][1] == "pending" and pend[0][2] == 1, pend)

srv = Server(cfg, state, env={k: v for k, v in ENV.items() if k not in ("JOEY_API_TOKEN",)} | {
    "JOEY_ALERT_CHECK_MS": "300", "JOEY_ALLOW_ENDPOINTS": "http://127.0.0.1:*,smtp://127.0.0.1:*"},
    args=["--public-url", "https://joey.example.com"])
delivered = wait_for(lambda: sql("SELECT status FROM alert_deliveries WHERE id = %d" % pend[0][0])[0][0] == "sent" if pend else None, 60)
check("queued: joey serve sent it", delivered, sql("SELECT * FROM alert_deliveries WHERE id = %d" % pend[0][0]) if pend else None)
same = [r for r in wh.got(path("ops")) if r["headers"].get("x-joey-delivery") == str(pend[0][0] if pend else -1)]
check("queued: tried once by joey run, once by serve: the same delivery id", len(same) == 2, len(same))

# ---- the API ----
r = srv.get("/api/v1/alerts")
check("GET /api/v1/alerts lists the alerts", r.status == 200 and sorted(a["id"] for a in r.json) ==
      ["drop", "guard", "ops", "pct", "rows", "slow"], r)
ops = next((a for a in r.json or [] if a["id"] == "ops"), {})
check("GET /api/v1/alerts: scope, triggers and masked options", ops.get("scope", {}).get("destinations") == ["d"]
      and ops.get("triggers") == {"runFailed": True} and ops.get("options", {}).get("url") == "${URL_OPS}"
      and ops.get("options", {}).get("secret") == "${WH_SECRET}", ops)
r = srv.get("/api/v1/alerts/deliveries?alert=ops&limit=2")
check("GET /api/v1/alerts/deliveries: newest first, paged", r.status == 200 and len(r.json["items"]) == 2 and r.json["next"],
      r)
r2 = srv.get("/api/v1/alerts/deliveries?alert=ops&limit=100")
check("deliveries: status, attempts and summary of each", r2.status == 200 and all(
    x["status"] in ("sent", "pending", "failed", "sending") and x["summary"] is not None for x in r2.json["items"]), r2)
r = srv.get("/api/v1/alerts/incidents?open=true")
check("GET /api/v1/alerts/incidents?open=true: nothing open", r.status == 200 and r.json["items"] == [], r)
r = srv.get("/api/v1/alerts/incidents?alert=ops")
check("incidents: the runFailed incidents of ops, resolved", r.status == 200 and r.json["items"]
      and all(i["status"] == "resolved" and i["trigger"] == "runFailed" for i in r.json["items"]), r)
r = srv.get("/api/v1/alerts/incidents?bogus=1")
check("incidents: an unknown parameter is 400", r.status == 400, r)

# create through the API: literal secrets go to the secrets file
lit_url = hook("api")
r = srv.post("/api/v1/config/alerts", {"id": "api", "name": "API made", "type": "webhook",
                                       "triggers": {"runFailed": True, "noSuccessFor": "4s"},
                                       "options": {"url": lit_url, "secret": WH_SECRET}})
check("POST /api/v1/config/alerts: created", r.status == 201, r)
check("create: the answer holds no secret", URL_TOKEN not in r.raw and WH_SECRET not in r.raw, r)
secrets_file = os.path.join(root, ".joey", "secrets.json")
sf = json.load(open(secrets_file)) if os.path.exists(secrets_file) else {}
check("create: secrets file holds them as JOEY_SECRET_ALERT_API_*", sf.get("JOEY_SECRET_ALERT_API_URL") == lit_url
      and sf.get("JOEY_SECRET_ALERT_API_SECRET") == WH_SECRET, list(sf))
cfile = open(os.path.join(cfg, "alerts", "api.json")).read()
check("create: the config file refers to them", URL_TOKEN not in cfile and WH_SECRET not in cfile
      and "${JOEY_SECRET_ALERT_API_URL}" in cfile, cfile)
r = srv.get("/api/v1/config/alerts/api")
check("GET /api/v1/config/alerts/api: masked", r.status == 200 and URL_TOKEN not in r.raw and WH_SECRET not in r.raw, r)

# noSuccessFor: the periodic check
wait_for(lambda: kinds("api"), 60)
check("noSuccessFor: the periodic check opened it", kinds("api") == ["alert.opened"], kinds("api"))
ev = events("api")[0] if events("api") else {}
check("noSuccessFor: trigger and summary", ev.get("trigger") == "noSuccessFor" and "no successful run" in ev.get("summary", ""), ev)
r = srv.post("/api/v1/runs", {"destination": "d"})
srv.wait_runs_done()
wait_for(lambda: "alert.resolved" in kinds("api"), 60)
check("noSuccessFor: a successful run resolves it", kinds("api")[:2] == ["alert.opened", "alert.resolved"], kinds("api"))

# the guard
r = srv.post("/api/v1/config/alerts", {"id": "evil", "type": "webhook", "triggers": {"runFailed": True},
                                       "options": {"url": "https://evil.example/collect", "secret": "x"}})
check("guard: a webhook URL the operator did not allow is 400", r.status == 400 and "not an endpoint" in r.json["error"], r)
r = srv.post("/api/v1/config/alerts", {"id": "evil", "type": "email", "triggers": {"runFailed": True},
                                       "options": {"host": "smtp.evil.example", "from": "a@b.example", "to": "c@d.example",
                                                   "user": "u", "password": "p"}})
check("guard: an SMTP server the operator did not allow is 400", r.status == 400, r)
# 4 s after that run, noSuccessFor holds again: a second incident opens
check("noSuccessFor: opens again 4 s after the last success", wait_for(lambda: kinds("api").count("alert.opened") >= 2, 60),
      kinds("api"))
n_api = len(kinds("api"))
r = srv.call("PUT", "/api/v1/config/alerts/api", {"id": "api", "name": "Renamed", "type": "webhook",
                                                   "triggers": {"runFailed": True},
                                                   "options": {"url": "****", "secret": "****"}})
check("guard: a change keeping url and secret as **** passes", r.status == 200, r)
r = srv.call("PUT", "/api/v1/config/alerts/api", {"id": "api", "type": "webhook", "triggers": {"runFailed": True},
                                                   "options": {"url": hook("other"), "secret": "****"}})
check("guard: a new url with the kept secret is 400 (send it again)", r.status == 400 and "sent again" in r.json["error"], r)
r = srv.call("PUT", "/api/v1/config/alerts/api", {"id": "api", "type": "webhook", "triggers": {"runFailed": True},
                                                   "options": {"url": "****", "secret": "${BRAZE_KEY}"}})
check("guard: a secret set to a reference is 400", r.status == 400, r)
r = srv.post("/api/v1/config/alerts", {"id": "bad", "type": "webhook", "triggers": {"runFailed": "yes"},
                                       "options": {"url": hook("bad"), "secret": "s"}})
check("validation: 422 naming the field", r.status == 422 and any(d["field"] == "triggers.runFailed" for d in r.json["diagnostics"]), r)

# roles: an editor may not write or test alerts
u = subprocess.run([JOEY, "user", "add", "ed", "--role", "editor", "--password-stdin", "--config", cfg, "--state", state],
                   input="editor password 1\n", capture_output=True, text=True, env=ENV, timeout=60)
u = subprocess.run([JOEY, "user", "token", "ed", "--label", "e2e", "--config", cfg, "--state", state],
                   capture_output=True, text=True, env=ENV, timeout=60)
ed = u.stdout.strip().split()[-1] if u.returncode == 0 and u.stdout.strip() else None
check("roles: an editor's token", ed and ed.startswith("joey_"), u.stdout + u.stderr)
r = srv.post("/api/v1/config/alerts", {"id": "x", "type": "slack", "triggers": {"runFailed": True},
                                       "options": {"url": "https://hooks.slack.com/services/x"}}, token=ed)
check("roles: an editor cannot create an alert (403)", r.status == 403, r)
r = srv.post("/api/v1/alerts/ops/test", token=ed)
check("roles: an editor cannot send a test (403)", r.status == 403, r)
r = srv.get("/api/v1/alerts", token=ed)
check("roles: an editor reads the alerts", r.status == 200, r)

# test sends
n = len(wh.got(path("api")))
r = srv.post("/api/v1/alerts/api/test")
check("POST /api/v1/alerts/api/test: ok", r.status == 200 and r.json.get("ok") is True and r.json.get("delivery"), r)
t = wh.got(path("api"))[n:]
try:
    tev = verify_signature(WH_SECRET, t[0])
    check("test: a signed alert.test message", tev["event"] == "alert.test", tev)
except (ValueError, IndexError) as e:
    bad("test: signed message", e)
r = srv.post("/api/v1/alerts/guard/test")
check("test: the email alert sends a test mail over STARTTLS", r.status == 200 and r.json.get("ok") is True
      and smtp.got()[-1]["tls"] and "test message" in smtp.got()[-1]["data"].decode(), r)
# a local relay in plain text (starttls false: loopback only)
relay = Smtp(cert, key, require_tls=False)
r = srv.post("/api/v1/config/alerts", {"id": "relay", "type": "email", "triggers": {"runFailed": True},
                                       "options": {"host": "127.0.0.1", "port": relay.port, "starttls": False,
                                                   "from": "joey@example.com", "to": "ops@example.com"}})
check("email: a plain-text relay on 127.0.0.1 is accepted", r.status == 201, r)
r = srv.post("/api/v1/alerts/relay/test")
check("email: the relay gets the test mail without TLS", r.status == 200 and r.json.get("ok") is True
      and relay.got() and relay.got()[0]["tls"] is False, (r, relay.got()))
vdir = os.path.join(TMP, "vcfg")
os.makedirs(vdir, exist_ok=True)
with open(os.path.join(vdir, "plain.json"), "w") as f:
    json.dump({"class": "Alert", "id": "plain", "type": "email", "triggers": {"runFailed": True},
               "options": {"host": "mail.example.com", "starttls": False, "from": "joey@example.com", "to": "ops@example.com"}}, f)
p = joey("validate", "--config", vdir)
check("email: starttls false to another host is a validation error at options.starttls", p.returncode == 1
      and 'Alert "plain": options.starttls: starttls false is only allowed for a server on 127.0.0.1 or localhost' in p.stdout + p.stderr,
      p.stdout + p.stderr)
# a server that offers no STARTTLS: the message fails rather than go out in plain text
notls = Smtp(cert, key, require_tls=False, offer_tls=False)
r = srv.post("/api/v1/config/alerts", {"id": "strict", "type": "email", "triggers": {"runFailed": True},
                                       "options": {"host": "127.0.0.1", "port": notls.port,
                                                   "from": "joey@example.com", "to": "ops@example.com"}})
check("email: an alert to a server without STARTTLS is saved", r.status == 201, r)
r = srv.post("/api/v1/alerts/strict/test")
check("email: a server that offers no STARTTLS gets nothing (the test fails)", r.status == 200 and r.json.get("ok") is False
      and not notls.got(), (r, notls.got()))
srv.call("DELETE", "/api/v1/config/alerts/strict")
srv.call("DELETE", "/api/v1/config/alerts/relay")

# only the test message gets the 500: the alert thread may deliver to the same path meanwhile
n = len(wh.got(path("api")))
wh.answer(path("api"), 500, event="alert.test")
r = srv.post("/api/v1/alerts/api/test")
check("test: a receiver answering 500 is ok:false with the status", r.status == 200 and r.json.get("ok") is False
      and "HTTP 500" in r.json.get("error", ""),
      (r, [json.loads(x["body"]).get("event") for x in wh.got(path("api"))[n:]]))
others = [json.loads(x["body"]).get("event") for x in wh.got(path("api"))[n:]]
if others != ["alert.test"]:
    print("  (the messages that reached the api alert's URL meanwhile: %s)" % others, flush=True)
check("test: the failed test leaves no secret in the answer", URL_TOKEN not in r.raw and WH_SECRET not in r.raw, r)
r = srv.post("/api/v1/alerts/nope/test")
check("test: an unknown alert is 404", r.status == 404, r)
r = srv.get("/api/v1/audit?limit=50")
check("audit: the test sends are logged", r.status == 200 and any(e["action"] == "alert.test" for e in r.json["entries"]), r)
check("audit: no secret in the audit log", URL_TOKEN not in r.raw and WH_SECRET not in r.raw, r.raw[:400])

# slack link to the run (serve's --public-url)
sim.post("/_sim/faults", {"action": "row_error", "external_id": "3", "type": "EMAIL_BAD_FORMAT"})
subprocess.run(["sqlite3", "-cmd", ".timeout 20000", db, "UPDATE users SET n = n + 100"], check=True)
n = len(wh.got(path("rows")))
srv.post("/api/v1/runs", {"destination": "d"})
srv.wait_runs_done()
wait_for(lambda: len(wh.got(path("rows"))) > n, 60)
text = json.loads(wh.got(path("rows"))[-1]["body"])["text"] if len(wh.got(path("rows"))) > n else ""
check("slack: a link to the run on serve's --public-url", "<https://joey.example.com/#/runs/" in text, text)
sim.post("/_sim/faults", {"action": "clear_row_error", "external_id": "3"})

# restart: nothing sent again
counts = {k: len(wh.got(path(k))) for k in ("ops", "rows", "pct", "drop", "slow", "api")}
mails = len(smtp.got())
srv.stop()
srv2 = Server(cfg, state, env={k: v for k, v in ENV.items() if k != "JOEY_API_TOKEN"} | {"JOEY_ALERT_CHECK_MS": "300"})
time.sleep(2)
after = {k: len(wh.got(path(k))) for k in counts}
# api's noSuccessFor may fire again (4 s without a run): that is a new incident, not a repeat
after_no_api = {k: v for k, v in after.items() if k != "api"}
check("restart: no message is sent twice", after_no_api == {k: v for k, v in counts.items() if k != "api"}
      and len(smtp.got()) == mails, (counts, after))
check("orphans: closing them sends nothing", kinds("api")[n_api:].count("alert.resolved") == 0, kinds("api")[n_api:])
r = srv2.get("/api/v1/alerts/incidents?alert=api&open=true")
check("orphans: the noSuccessFor incident of api (trigger removed by the PUT) is closed", r.status == 200
      and not [i for i in r.json["items"] if i["trigger"] == "noSuccessFor"], r)
dup = sql("SELECT incident_id, event, count(*) FROM alert_deliveries WHERE incident_id IS NOT NULL"
          " GROUP BY incident_id, event HAVING count(*) > 1")
check("store: one message per incident and event", dup == [], dup)
srv2.stop()

# ---- serve --worker on a PostgreSQL store: the jobs the workers run are judged too ----
if os.environ.get("JOEY_PG_URL"):
    from serve_lib import pg_state_url
    pg = pg_state_url()
    wsrv = Server(cfg, pg, args=["--worker"], env={k: v for k, v in ENV.items() if k != "JOEY_API_TOKEN"} | {
        "JOEY_ALERT_CHECK_MS": "300", "BRAZE_KEY": "wrong-key"})
    before = len(kinds("ops"))
    subprocess.run(["sqlite3", "-cmd", ".timeout 20000", db, "UPDATE users SET n = n + 100"], check=True)
    wsrv.post("/api/v1/runs", {"destination": "d"})
    wait_for(lambda: len(kinds("ops")) > before, 60)
    new = events("ops")[before:]
    check("worker job: a failed job opens runFailed once", [e["event"] for e in new] == ["alert.opened"]
          and new[0]["run"]["status"] == "failed", new)
    r = wsrv.get("/api/v1/alerts/incidents?alert=ops&open=true")
    check("worker job: the incident is in the PostgreSQL store", r.status == 200 and len(r.json["items"]) == 1, r)
    LOGS.append(wsrv.read_log())
    wsrv.stop()
else:
    print("skipped: serve --worker (JOEY_PG_URL is not set)")

# ---- secrets: nowhere ----
logs = "\n".join(LOGS) + srv.read_log() + srv2.read_log()
check("no sanitizer report in any joey output", "Sanitizer" not in logs and "runtime error:" not in logs,
      [l for l in logs.split("\n") if "Sanitizer" in l or "runtime error:" in l][:5])
check("secrets: no log holds the HMAC secret, the SMTP password or a webhook URL",
      WH_SECRET not in logs and SMTP_PASSWORD not in logs and URL_TOKEN not in logs,
      [s for s in (WH_SECRET, SMTP_PASSWORD, URL_TOKEN) if s in logs])
blob = b""
for dp, _, files in os.walk(os.path.join(root, ".joey")):
    for f in files:
        if f != "secrets.json":
            blob += open(os.path.join(dp, f), "rb").read()
check("secrets: the state store holds none of them",
      WH_SECRET.encode() not in blob and SMTP_PASSWORD.encode() not in blob and URL_TOKEN.encode() not in blob)
finish()
