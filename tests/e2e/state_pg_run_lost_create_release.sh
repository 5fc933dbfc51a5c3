#!/usr/bin/env bash
# state_pg_run_lost_create_release.sh: run_lost_create_release.sh with the state store in PostgreSQL
# (E2E_STATE=postgres: a fresh schema in $JOEY_PG_URL's database, through JOEY_STATE_URL;
# skipped without JOEY_PG_URL).
E2E_STATE=postgres exec bash "$(dirname "$0")/run_lost_create_release.sh"
