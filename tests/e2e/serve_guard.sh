#!/usr/bin/env bash
# serve_guard.sh: what a change through the API may not do: secrets in plain options,
# redirecting the Braze key, files outside the data directory (see serve_guard.py).
exec python3 "$(dirname "$0")/serve_guard.py"
