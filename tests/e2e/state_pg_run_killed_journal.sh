#!/usr/bin/env bash
# state_pg_run_killed_journal.sh: run_killed_journal.sh with the state store in PostgreSQL
# (E2E_STATE=postgres: a fresh schema in $JOEY_PG_URL's database, through JOEY_STATE_URL;
# skipped without JOEY_PG_URL).
E2E_STATE=postgres exec bash "$(dirname "$0")/run_killed_journal.sh"
