#!/usr/bin/env bash
# serve_safety.sh: destructive config changes need a confirmation, the guard and its approval,
# completed-with-failures runs, explained failed rows, live counters, Braze key checks (serve_safety.py).
exec python3 "$(dirname "$0")/serve_safety.py"
