#!/usr/bin/env bash
# serve_listen.sh: loopback is decided from the address bound (see serve_listen.py).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" "$(dirname "$0")/serve_listen.py"
