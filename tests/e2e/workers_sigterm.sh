#!/usr/bin/env bash
# workers_sigterm.sh: items given back on SIGTERM do not count as workers dying on them (workers_sigterm.py).
exec python3 "$(dirname "$0")/workers_sigterm.py"
