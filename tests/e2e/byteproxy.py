#!/usr/bin/env python3
"""byteproxy.py: a TCP proxy that counts the bytes a server sends, to measure what
leaves a database (tests/e2e/diff_warehouse.sh, bench/warehouse_diff.sh).

  byteproxy.py TARGET_HOST TARGET_PORT PORT_FILE LOG_FILE [MBPS] &
  byteproxy.py total LOG_FILE     wait until every connection is closed, then print
                                  "<bytes from the server> <bytes to it> <connections>"

With MBPS, what the server sends over all connections together is held to that many
megabits per second (one link slower than loopback, for benchmarks).

It listens on a free loopback port (written to PORT_FILE) and forwards each connection
to the target. LOG_FILE gets "open" when a connection starts and "close DOWN UP" when it
ends (DOWN: bytes the server sent). Not for production: one thread per connection.
"""
import os, select, socket, sys, threading, time

LINK = {"free_at": 0.0}
LINK_LOCK = threading.Lock()

def throttle(n, mbps):
    """Wait until the shared link has carried n more bytes at mbps."""
    with LINK_LOCK:
        now = time.monotonic()
        LINK["free_at"] = max(LINK["free_at"], now) + n * 8 / (mbps * 1e6)
        wait = LINK["free_at"] - now
    if wait > 0:
        time.sleep(wait)

def pump(client, target, mbps):
    server = socket.create_connection(target)
    down = up = 0
    try:
        while True:
            r, _, _ = select.select([client, server], [], [])
            if server in r:
                b = server.recv(1 << 16)
                if not b:
                    break
                if mbps:
                    throttle(len(b), mbps)
                client.sendall(b)
                down += len(b)
            if client in r:
                b = client.recv(1 << 16)
                if not b:
                    break
                server.sendall(b)
                up += len(b)
    except OSError:
        pass
    finally:
        for s in (client, server):
            try:
                s.close()
            except OSError:
                pass
    return down, up

def serve(host, port, port_file, log_file, mbps):
    lock = threading.Lock()
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(lsock.getsockname()[1]))
    os.rename(port_file + ".tmp", port_file)

    def one(c):
        down, up = pump(c, (host, port), mbps)
        with lock, open(log_file, "a") as f:
            f.write("close %d %d\n" % (down, up))

    while True:
        c, _ = lsock.accept()
        with lock, open(log_file, "a") as f:
            f.write("open\n")
        threading.Thread(target=one, args=(c,), daemon=True).start()

def total(log_file):
    for _ in range(200):
        lines = open(log_file).read().split("\n") if os.path.exists(log_file) else []
        opened = sum(1 for l in lines if l == "open")
        closed = [l.split() for l in lines if l.startswith("close ")]
        if opened == len(closed):
            print(sum(int(c[1]) for c in closed), sum(int(c[2]) for c in closed), opened)
            return 0
        time.sleep(0.05)
    print("connections still open", file=sys.stderr)
    return 1

if __name__ == "__main__":
    if sys.argv[1] == "total":
        sys.exit(total(sys.argv[2]))
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], float(sys.argv[5]) if len(sys.argv) > 5 else 0)
