#!/usr/bin/env bash
# serve_sched.sh: joey serve as a scheduler: start, overlap, SIGTERM, SIGHUP (see serve_sched.py).
exec python3 "$(dirname "$0")/serve_sched.py"
