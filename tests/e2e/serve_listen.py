#!/usr/bin/env python3
"""serve_listen.py: `joey serve` decides whether it is on loopback from the address it
actually bound, not from the text of --listen (issue #14). A name that starts with
"127." or a "localhost" that resolves to another address binds that address, and the
server must then behave as beyond loopback (every read needs a credential, no page
carries one). The names are made to resolve to 0.0.0.0 by a private /etc/hosts (a user
and mount namespace: `unshare -rm`); where that is not possible the test is skipped."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import serve_lib  # noqa: E402
from serve_lib import TMP, Server, Sim, check, finish, small_config  # noqa: E402

TOKEN = "h3-listen-token-0123456789abcdefghijklm"
hosts = os.path.join(TMP, "hosts")
with open(hosts, "w") as f:
    f.write("0.0.0.0 127.evil.test\n0.0.0.0 localhost\n")
probe = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount --bind "$0" /etc/hosts && getent hosts localhost', hosts],
                       capture_output=True, text=True)
if probe.returncode != 0 or "0.0.0.0" not in probe.stdout:
    print("skipped: no private /etc/hosts here (unshare -rm: %s)\n0 passed, 0 failed" % (probe.stderr.strip()[:200]))
    sys.exit(0)

sim = Sim()
os.environ["BRAZE_KEY"] = "test-key"
cfg, _ = small_config(TMP, sim.url, n=5)
real_joey = serve_lib.JOEY
wrapper = os.path.join(TMP, "joey-private-hosts")
with open(wrapper, "w") as f:
    f.write('#!/bin/sh\nexec unshare -rm sh -c \'mount --bind "$0" /etc/hosts && exec "$@"\' "%s" "%s" "$@"\n'
            % (hosts, real_joey))
os.chmod(wrapper, 0o755)

n = 0
for name in ["127.evil.test", "localhost"]:
    n += 1
    os.makedirs(os.path.join(TMP, "st%d" % n))
    serve_lib.JOEY = wrapper
    srv = Server(cfg, os.path.join(TMP, "st%d" % n, "state.db"), listen=name + ":0",
                 env={"JOEY_API_TOKEN": TOKEN})
    serve_lib.JOEY = real_joey
    log = srv.read_log()
    check("--listen %s (resolving to 0.0.0.0): bound 0.0.0.0" % name, "http://0.0.0.0:" in log, log)
    r = srv.get("/api/v1/status", token=False)
    check("--listen %s on 0.0.0.0: reads need a credential" % name,
          r.status in (401, 403) or (r.status == 200 and r.json.get("auth_required") is True), r)
    r = srv.get("/api/v1/models", token=False)
    check("--listen %s on 0.0.0.0: the API is not open" % name, r.status in (401, 403), r)
    r = srv.get("/", token=False)
    check("--listen %s on 0.0.0.0: the page carries no token" % name, TOKEN not in r.raw, r)
    # the loopback-only rule shows which side the server thinks it is on
    r = srv.get("/api/v1/models", token=False, headers={"Host": "evil.example"})
    check("--listen %s on 0.0.0.0: beyond loopback (no Host rule; a credential is needed instead)" % name,
          r.status == 401, r)
    check("stops cleanly (%s)" % name, srv.stop() == 0, srv.read_log()[-2000:])

# the real localhost: loopback, so the DNS-rebinding check applies
os.makedirs(os.path.join(TMP, "st-real"))
srv = Server(cfg, os.path.join(TMP, "st-real", "state.db"), listen="localhost:0", env={"JOEY_API_TOKEN": TOKEN})
r = srv.get("/api/v1/models", headers={"Host": "evil.example"})
check("--listen localhost (127.0.0.1): loopback, a foreign Host is refused", r.status == 403, r)
r = srv.get("/api/v1/models")
check("--listen localhost: the API answers with the token", r.status == 200, r)
check("stops cleanly (real localhost)", srv.stop() == 0, srv.read_log()[-2000:])
finish()
