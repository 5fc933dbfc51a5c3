#!/usr/bin/env bash
# serve_preview_warehouse.sh: the source editor's table list, table preview and query
# preview on a Snowflake and a BigQuery app through warehouse-fake (see
# serve_preview_warehouse.py).
exec python3 "$(dirname "$0")/serve_preview_warehouse.py"
