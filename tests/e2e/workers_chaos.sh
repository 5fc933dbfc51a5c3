#!/usr/bin/env bash
# workers_chaos.sh: workers killed, stopped and frozen at random while jobs run; Braze converges (workers_chaos.py).
exec python3 "$(dirname "$0")/workers_chaos.py"
