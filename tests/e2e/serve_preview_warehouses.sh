#!/usr/bin/env bash
# serve_preview_warehouses.sh: the UI's table list, table preview and query preview
# (GET /api/v1/apps/{app}/tables, POST /api/v1/apps/{app}/preview) for a ClickHouse app
# ($JOEY_CLICKHOUSE_URL) and a redshift app pointed at $JOEY_PG_URL in Redshift strict
# mode; a write through a preview changes nothing (see serve_preview_warehouses.py).
exec /usr/bin/python3 "$(dirname "$0")/serve_preview_warehouses.py"
