#!/usr/bin/env bash
# serve_requests.sh: how joey serve reads a request (see serve_requests.py).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" "$(dirname "$0")/serve_requests.py"
