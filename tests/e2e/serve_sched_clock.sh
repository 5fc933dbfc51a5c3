#!/usr/bin/env bash
# serve_sched_clock.sh: a run started in the future does not hold a schedule back (see serve_sched_clock.py).
exec python3 "$(dirname "$0")/serve_sched_clock.py"
