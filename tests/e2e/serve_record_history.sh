#!/usr/bin/env bash
# serve_record_history.sh: a record's history on the Records page's API (see serve_record_history.py).
exec python3 "$(dirname "$0")/serve_record_history.py"
