#!/usr/bin/env bash
# state_pg_run_incremental_mysql.sh: run_incremental_mysql.sh with the state store in PostgreSQL
# (E2E_STATE=postgres; skipped without JOEY_PG_URL).
E2E_STATE=postgres exec bash "$(dirname "$0")/run_incremental_mysql.sh"
