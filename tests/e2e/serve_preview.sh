#!/usr/bin/env bash
# serve_preview.sh: POST /api/v1/apps/{app}/preview, an SQL query's columns and first rows
# for the UI's source editor, on SQLite and (with $JOEY_PG_URL) PostgreSQL; write
# attempts change nothing; roles (see serve_preview.py).
exec python3 "$(dirname "$0")/serve_preview.py"
