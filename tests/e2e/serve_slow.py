#!/usr/bin/env python3
"""serve_slow.py: slow clients cannot stop `joey serve` (issue #14).

256 connections that each send one header line every few seconds, from 127.0.0.1 to
127.0.0.5 (so the 64-per-address cap does not stop them), must not keep /healthz or the
API from answering within a few seconds; a request that trickles in (headers or
body) is cut at its deadline (JOEY_HTTP_REQUEST_TIMEOUT, 3 s here, 30 s by default)
although it never stays idle long enough for the idle timeout; and 80 partial requests
held from 127.0.0.1 (where every local client comes from) do not lock /healthz out:
the address's oldest waiting connection makes room; nor do 64 connections from
127.0.0.1 that ask for answers and never read them."""
import http.client
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from serve_lib import TMP, Server, Sim, check, finish, small_config  # noqa: E402

TOKEN = "h3-slow-token-0123456789abcdefghijklmnop"
sim = Sim()
os.environ["BRAZE_KEY"] = "test-key"
cfg, _ = small_config(TMP, sim.url, n=5)
os.makedirs(os.path.join(TMP, "st"))
os.makedirs(os.path.join(TMP, "st2"))


def timed_get(host, port, path, timeout=3.0):
    """(status or the error, seconds)"""
    t0 = time.time()
    try:
        c = http.client.HTTPConnection(host, port, timeout=timeout)
        c.request("GET", path, headers={"Authorization": "Bearer " + TOKEN})
        r = c.getresponse()
        r.read()
        c.close()
        return r.status, time.time() - t0
    except (OSError, http.client.HTTPException) as e:
        return repr(e), time.time() - t0


class Slow:
    """A client that opens its request and sends one more header line every `every` s."""

    def __init__(self, host, port, src, body=False):
        self.host, self.port, self.src, self.body = host, port, src, body
        self.sock = None
        self.opened = 0
        self.closed_at = None
        self.connect()

    def connect(self):
        s = socket.socket()
        s.bind((self.src, 0))
        s.settimeout(5)
        try:
            s.connect((self.host, self.port))
            if self.body:  # headers complete, then the body one byte at a time
                s.sendall(b"POST /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TOKEN.encode()
                          + b"\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            else:
                s.sendall(b"GET /api/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        except OSError:
            s.close()
            self.sock = None
            return
        s.setblocking(False)
        self.sock = s
        self.opened = time.time()
        self.closed_at = None

    def tick(self):
        if self.sock is None:
            return
        try:
            self.sock.send(b" " if self.body else b"X-Slow: 1\r\n")
        except OSError:
            self.lost()

    def poll(self):
        """Note a close by the server."""
        if self.sock is None:
            return
        try:
            r, _, _ = select.select([self.sock], [], [], 0)
            if r and not self.sock.recv(4096):
                self.lost()
        except OSError:
            self.lost()

    def lost(self):
        if self.sock is not None:
            self.sock.close()
        self.sock = None
        self.closed_at = time.time()


# ---- a flood of slow clients: /healthz and the API still answer ----
srv = Server(cfg, os.path.join(TMP, "st", "state.db"), env={"JOEY_API_TOKEN": TOKEN})
host, port = srv.url[len("http://"):].rsplit(":", 1)
port = int(port)
flood = [Slow(host, port, "127.0.0.%d" % (1 + i % 5)) for i in range(256)]
check("256 slow connections from 5 addresses opened", sum(c.sock is not None for c in flood) >= 250,
      sum(c.sock is not None for c in flood))
worst, answers = 0.0, []
t_end = time.time() + 8
next_tick = time.time()
while time.time() < t_end:
    if time.time() >= next_tick:  # one header line every 2 s, and the flood reopens what was closed
        for c in flood:
            c.poll()
            if c.sock is None:
                c.connect()
            else:
                c.tick()
        next_tick = time.time() + 2
    st, secs = timed_get(host, port, "/healthz")
    answers.append(st)
    worst = max(worst, secs)
    time.sleep(0.5)
check("under the flood, /healthz answers every time within 3 s",
      answers and all(a == 200 for a in answers), (answers, worst))
st, secs = timed_get(host, port, "/api/v1/models")
check("under the flood, the API answers", st == 200, (st, secs))
for c in flood:
    c.lost()
check("stops cleanly", srv.stop() == 0, srv.read_log()[-2000:])

# ---- one slow request is cut at its deadline, also when it is never idle ----
srv = Server(cfg, os.path.join(TMP, "st2", "state.db"), env={"JOEY_API_TOKEN": TOKEN, "JOEY_HTTP_REQUEST_TIMEOUT": "3"})
host, port = srv.url[len("http://"):].rsplit(":", 1)
port = int(port)
heads = Slow(host, port, "127.0.0.1")
body = Slow(host, port, "127.0.0.2", body=True)
keep = http.client.HTTPConnection(host, port, timeout=5)  # a client with pauses between requests
keep_ok = True
t0 = time.time()
while time.time() - t0 < 7 and (heads.sock or body.sock):
    for c in (heads, body):
        c.poll()
        c.tick()
    keep.request("GET", "/healthz")
    r = keep.getresponse()
    r.read()
    keep_ok = keep_ok and r.status == 200
    time.sleep(1)
for c, what in ((heads, "headers"), (body, "body")):
    took = (c.closed_at or time.time()) - c.opened
    check("a request whose %s trickle in is closed at its deadline (3 s)" % what,
          c.sock is None and 2.5 <= took <= 5, (c.sock, took))
check("a kept-alive connection with pauses between its requests is not cut", keep_ok)
keep.close()
check("stops cleanly (2)", srv.stop() == 0, srv.read_log()[-2000:])

# ---- one address's partial requests: the oldest makes room, the others are not locked out ----
# (every local client is 127.0.0.1: 64 held partial requests refused /healthz before)
os.makedirs(os.path.join(TMP, "st3"))
srv = Server(cfg, os.path.join(TMP, "st3", "state.db"), env={"JOEY_API_TOKEN": TOKEN})
host, port = srv.url[len("http://"):].rsplit(":", 1)
port = int(port)
other = [Slow(host, port, "127.0.0.2") for _ in range(8)]
held = []
for _ in range(80):
    held.append(Slow(host, port, "127.0.0.1"))
    time.sleep(0.01)  # accepted in this order: the first are the oldest
st, secs = timed_get(host, port, "/healthz")
check("80 partial requests held from 127.0.0.1: /healthz from 127.0.0.1 answers", st == 200, (st, secs))
st, secs = timed_get(host, port, "/api/v1/models")
check("... and the API answers", st == 200, (st, secs))
time.sleep(1)
for c in held + other:
    c.poll()
open_held = [i for i, c in enumerate(held) if c.sock is not None]
check("127.0.0.1 still holds at most 64 connections: the oldest partial requests were closed",
      len(open_held) <= 64 and open_held and open_held[0] >= 16, open_held)
check("the newest partial requests stay open", 79 in open_held, open_held)
check("another address's connections are not closed", all(c.sock is not None for c in other))
for c in held + other:
    c.lost()
check("stops cleanly (3)", srv.stop() == 0, srv.read_log()[-2000:])
# ---- one address's answers it never reads: the slowest taker makes room ----
# (64 connections from 127.0.0.1, each asking for the UI's scripts again and again and
# reading nothing, stay "taking an answer" for 5 minutes; every new connection from
# 127.0.0.1 was closed unanswered meanwhile: no login is needed for the scripts)
os.makedirs(os.path.join(TMP, "st4"))
srv = Server(cfg, os.path.join(TMP, "st4", "state.db"), env={"JOEY_API_TOKEN": TOKEN})
host, port = srv.url[len("http://"):].rsplit(":", 1)
port = int(port)
readers = []
for _ in range(64):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind(("127.0.0.1", 0))
    s.connect((host, port))
    s.sendall(b"GET /editors.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 200)
    readers.append(s)
time.sleep(2)  # the answers fill the sockets' buffers
st, secs = timed_get(host, port, "/healthz")
check("64 connections from 127.0.0.1 that never read their answers: /healthz from 127.0.0.1 answers",
      st == 200, (st, secs))
st, secs = timed_get(host, port, "/api/v1/models")
check("... and the API answers", st == 200, (st, secs))
for s in readers:
    s.close()
check("stops cleanly (4)", srv.stop() == 0, srv.read_log()[-2000:])
finish()
