#!/usr/bin/env bash
# state_pg_serve_api.sh: serve_api with the state store in PostgreSQL (skipped without JOEY_PG_URL).
E2E_STATE=postgres exec python3 "$(dirname "$0")/serve_api.py"
