#!/usr/bin/env bash
# serve_audiences.sh: the API behind the Audiences and Records pages (see serve_audiences.py).
exec python3 "$(dirname "$0")/serve_audiences.py"
