#!/usr/bin/env bash
# serve_concurrent_edits.sh: two people editing one config object or file through the
# API: the second save, made to an older version, is refused (see serve_concurrent_edits.py).
exec python3 "$(dirname "$0")/serve_concurrent_edits.py"
