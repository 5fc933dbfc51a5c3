#!/usr/bin/env bash
# serve_slow.sh: slow clients cannot stop joey serve (see serve_slow.py).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
exec "$PY" "$(dirname "$0")/serve_slow.py"
