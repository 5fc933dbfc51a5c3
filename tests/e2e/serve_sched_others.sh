#!/usr/bin/env bash
# serve_sched_others.sh: serve's schedules count runs other processes started (see serve_sched_others.py).
exec python3 "$(dirname "$0")/serve_sched_others.py"
