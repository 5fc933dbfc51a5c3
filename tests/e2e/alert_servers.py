"""alert_servers.py: receivers for joey's alert messages, for the tests (Python 3 stdlib only).

Webhook: an HTTP server on 127.0.0.1 that records every request (path, headers, body)
and answers the statuses queued for its path (default 200).
SMTP: a minimal server on 127.0.0.1 speaking EHLO, STARTTLS (ssl with a self-signed
certificate for 127.0.0.1 made by openssl at start), AUTH PLAIN, MAIL, RCPT, DATA,
RSET, NOOP, QUIT; it records each message with whether it came over TLS and who
authenticated, and refuses MAIL before STARTTLS when require_tls is set; with offer_tls False it never
offers STARTTLS (a server a client must refuse to send through).
Both run in daemon threads and stop with the test process.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import socketserver
import ssl
import subprocess
import threading


class Webhook:
    def __init__(self):
        self.requests = []  # dicts: path, headers (lower-case names), body (bytes)
        self.statuses = {}  # path -> list of statuses still to answer
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with outer.lock:
                    outer.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                           "body": body})
                    try:
                        event = json.loads(body).get("event")
                    except (ValueError, AttributeError):
                        event = None
                    # the first status queued for this path and for any event or this one
                    q = outer.statuses.get(self.path) or []
                    i = next((i for i, (_, ev) in enumerate(q) if ev is None or ev == event), None)
                    status = q.pop(i)[0] if i is not None else 200
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, path, *statuses, event=None):
        """Queue statuses for the next requests to path; with event, only for requests
        whose JSON body's "event" is that (other messages, e.g. a retried delivery of
        the pump, get 200 meanwhile)."""
        with self.lock:
            self.statuses.setdefault(path, []).extend((s, event) for s in statuses)

    def got(self, path=None):
        with self.lock:
            return [r for r in self.requests if path is None or r["path"] == path]


def verify_signature(secret, req, max_age=300, now=None):
    """Check a webhook request the way docs/security.md tells receivers to: the HMAC of
    the exact body, the timestamp header equal to the body's and recent. Returns the
    parsed body, or raises ValueError."""
    import time
    h = req["headers"]
    sig = h.get("x-joey-signature", "")
    if not sig.startswith("sha256="):
        raise ValueError("no sha256= signature")
    want = hmac.new(secret.encode(), req["body"], hashlib.sha256).hexdigest()
    if not hmac.compare_digest(sig[7:], want):
        raise ValueError("signature mismatch")
    body = json.loads(req["body"])
    ts = int(h.get("x-joey-timestamp", "0"))
    if body.get("timestamp") != ts:
        raise ValueError("timestamp header %r differs from the body's %r" % (ts, body.get("timestamp")))
    if abs((now or time.time()) - ts) > max_age:
        raise ValueError("stale timestamp")
    return body


def make_cert(d):
    """A self-signed certificate for 127.0.0.1 (and localhost) in d: (cert, key) paths."""
    cert, key = os.path.join(d, "smtp-cert.pem"), os.path.join(d, "smtp-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


class Smtp:
    def __init__(self, cert, key, user=None, password=None, require_tls=True, offer_tls=True):
        self.messages = []  # dicts: mail_from, rcpt, data (bytes), tls, auth_user
        self.sessions = []  # per connection: commands seen (AUTH lines redacted)
        self.lock = threading.Lock()
        self.fail_next = 0  # answer DATA with 451 this many times
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            def setup(self):
                super().setup()
                self.tls = False
                self.auth_user = None
                self.cmds = []

            def send(self, line):
                self.wfile.write(line.encode() + b"\r\n")
                self.wfile.flush()

            def readline(self):
                line = self.rfile.readline(65536)
                if not line:
                    raise EOFError
                return line.decode("utf-8", "replace").rstrip("\r\n")

            def check_plain(self, b64):
                try:
                    parts = base64.b64decode(b64).split(b"\0")
                    u, p = parts[1].decode(), parts[2].decode()
                except Exception:
                    return False
                if user is not None and (u != user or p != password):
                    return False
                self.auth_user = u
                return True

            def handle(self):
                mail_from, rcpt = None, []
                self.send("220 127.0.0.1 ESMTP test")
                try:
                    while True:
                        line = self.readline()
                        verb = line.split(" ", 1)[0].upper()
                        self.cmds.append("AUTH ..." if verb == "AUTH" else line)
                        if verb in ("EHLO", "HELO"):
                            ext = ["250-127.0.0.1", "250-8BITMIME", "250-SIZE 10485760"]
                            if self.tls or not offer_tls:
                                ext.append("250-AUTH PLAIN")
                            else:
                                ext.append("250-STARTTLS")
                            ext.append("250 HELP")
                            for e in ext:
                                self.send(e)
                        elif verb == "STARTTLS":
                            self.send("220 ready to start TLS")
                            self.wfile.flush()
                            self.request = ctx.wrap_socket(self.connection, server_side=True)
                            self.connection = self.request
                            self.rfile = self.connection.makefile("rb")
                            self.wfile = self.connection.makefile("wb")
                            self.tls = True
                        elif verb == "AUTH":
                            args = line.split(" ")
                            if len(args) < 2 or args[1].upper() != "PLAIN":
                                self.send("504 only PLAIN")
                                continue
                            b64 = args[2] if len(args) > 2 else None
                            if b64 is None:
                                self.send("334 ")
                                b64 = self.readline()
                            self.send("235 ok" if self.check_plain(b64) else "535 bad credentials")
                        elif verb == "MAIL":
                            if require_tls and not self.tls:
                                self.send("530 must issue STARTTLS first")
                                continue
                            if user is not None and not self.auth_user:
                                self.send("530 authentication required")
                                continue
                            mail_from, rcpt = line[10:].strip(), []
                            self.send("250 ok")
                        elif verb == "RCPT":
                            rcpt.append(line[8:].strip())
                            self.send("250 ok")
                        elif verb == "DATA":
                            self.send("354 go ahead")
                            data = b""
                            while True:
                                l = self.rfile.readline(1 << 20)
                                if not l or l == b".\r\n":
                                    break
                                data += l[1:] if l.startswith(b"..") else l
                            with outer.lock:
                                if outer.fail_next > 0:
                                    outer.fail_next -= 1
                                    self.send("451 try again later")
                                    continue
                                outer.messages.append({"mail_from": mail_from, "rcpt": rcpt, "data": data,
                                                       "tls": self.tls, "auth_user": self.auth_user})
                            self.send("250 queued")
                        elif verb == "RSET":
                            mail_from, rcpt = None, []
                            self.send("250 ok")
                        elif verb == "NOOP":
                            self.send("250 ok")
                        elif verb == "QUIT":
                            self.send("221 bye")
                            break
                        else:
                            self.send("502 not implemented")
                except (EOFError, ConnectionError, ssl.SSLError, OSError):
                    pass
                finally:
                    with outer.lock:
                        outer.sessions.append(self.cmds)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def got(self):
        with self.lock:
            return list(self.messages)
