#!/usr/bin/env bash
# sync_log_postgres.sh: sync_log.sh with the log tables in PostgreSQL (skipped without JOEY_PG_URL).
E2E_LOG=postgres exec bash "$(dirname "$0")/sync_log.sh"
