#!/usr/bin/env python3
"""serve_requests.py: how `joey serve` reads a request (issue #14): path ids are
percent-decoded once and "%00" is refused, error answers keep their "error" member when
the request put invalid UTF-8 in the message, a chunked upload over the limit is
refused as soon as it passes the limit (not read to its end), and the Host header is
parsed strictly on loopback."""
import http.client
import json
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import TMP, Server, Sim, check, finish, small_config  # noqa: E402

TOKEN = "h3-requests-token-0123456789abcdefghijkl"
sim = Sim()
os.environ["BRAZE_KEY"] = "test-key"
cfg, _ = small_config(TMP, sim.url, n=5)
state = os.path.join(TMP, "st", "state.db")
os.makedirs(os.path.dirname(state))
srv = Server(cfg, state, env={"JOEY_API_TOKEN": TOKEN})
host, port = srv.url[len("http://"):].rsplit(":", 1)
port = int(port)


def raw(method, path, headers=None):
    """One request with the path exactly as given; (status, parsed JSON or None)."""
    h = {"Authorization": "Bearer " + TOKEN}
    h.update(headers or {})
    c = http.client.HTTPConnection(host, port, timeout=20)
    c.putrequest(method, path, skip_host="Host" in h)
    for k, v in h.items():
        c.putheader(k, v)
    c.endheaders()
    r = c.getresponse()
    body = r.read()
    c.close()
    try:
        return r.status, json.loads(body) if body else None
    except ValueError:
        return r.status, body


# ---- path ids: decoded once, "%00" refused ----
st, j = raw("GET", "/api/v1/config/groups/big")
check("the group exists", st == 200, (st, j))
st, j = raw("GET", "/api/v1/config/groups/big%00junk")
check("%00 in a path id: 400, not the object before it", st == 400, (st, j))
st, j = raw("DELETE", "/api/v1/config/groups/big%00junk")
check("DELETE .../big%00junk: 400", st == 400, (st, j))
st, j = raw("GET", "/api/v1/config/groups/big")
check("... and the group is still there", st == 200, (st, j))
st, j = raw("GET", "/api/v1/config/groups/bi%67")
check("an escaped id is decoded (bi%67 is big)", st == 200 and j.get("id") == "big", (st, j))
st, j = raw("GET", "/api/v1/config/groups/bi%2567")
check("decoded once: bi%2567 is \"bi%67\", not big", st != 200, (st, j))
st, j = raw("DELETE", "/api/v1/config/groups/bi%2567")
check("DELETE .../bi%2567 does not delete big", st != 204 and raw("GET", "/api/v1/config/groups/big")[0] == 200,
      (st, j))
st, j = raw("GET", "/api/v1/runs?limit=1%00")
check("%00 in the query: 400", st == 400, (st, j))

# ---- error answers with invalid UTF-8 keep their members ----
st, j = raw("GET", "/api/v1/models?%FF%FE=1")
check("invalid UTF-8 in a query parameter name: 400 with its error",
      st == 400 and isinstance(j, dict) and "unknown query parameter" in j.get("error", "")
      and "\ufffd" in j["error"], (st, j))
st, j = raw("GET", "/api/v1/models/%C3%28")
check("invalid UTF-8 in an id: 404 with error and detail",
      st == 404 and isinstance(j, dict) and j.get("error") == "no such model" and j.get("detail") == "\ufffd(",
      (st, j))

# ---- a chunked body over the limit: refused at the limit, not read to its end ----
c = socket.create_connection((host, port))
c.sendall(("POST /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
           "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" % TOKEN).encode())
chunk = b"10000\r\n" + b" " * 0x10000 + b"\r\n"
sent, answer, t0 = 0, b"", time.time()
c.setblocking(False)
try:
    while sent < (256 << 20) and time.time() - t0 < 30:
        r, w, _ = select.select([c], [c], [], 1)
        if r:
            data = c.recv(4096)
            answer += data
            if not data or b"\r\n\r\n" in answer:
                break
        if w:
            try:
                sent += c.send(chunk)
            except BlockingIOError:
                pass
except OSError as e:
    answer = answer or str(e).encode()
c.close()
check("chunked upload over the limit: 413 before 8 MiB are sent (not read to its end)",
      answer.startswith(b"HTTP/1.1 413") and sent < (8 << 20), (answer[:200], sent, time.time() - t0))
check("... with the JSON error", b'"error":"request body too large"' in answer, answer[:600])
r = srv.get("/healthz", token=False)
check("the server still answers", r.status == 200, r)

# ---- Host: host [":" port], strictly ----
for h in ["127.0.0.1:x@evil.example", "127.0.0.1:8020@evil.example", "127.0.0.1:", "127.0.0.1:80:80",
          "127.0.0.1 evil.example", "[::1]x", "[::1]:80x", "127.0.0.1:123456", "localhost@evil.example"]:
    st, j = raw("GET", "/api/v1/models", {"Host": h})
    check("Host %r: 403" % h, st == 403, (st, j))
for h in ["127.0.0.1", "127.0.0.1:8020", "localhost:80", "[::1]", "[::1]:8020", "127.1.2.3:1"]:
    st, j = raw("GET", "/api/v1/models", {"Host": h})
    check("Host %r: not refused" % h, st != 403, (st, j))

check("stops cleanly", srv.stop() == 0, srv.read_log()[-2000:])
finish()
