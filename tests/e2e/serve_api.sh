#!/usr/bin/env bash
# serve_api.sh: the JSON API of joey serve, every route (see serve_api.py).
exec python3 "$(dirname "$0")/serve_api.py"
