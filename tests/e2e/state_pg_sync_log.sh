#!/usr/bin/env bash
# state_pg_sync_log.sh: sync_log.sh with the state store (and its outbox) in PostgreSQL
# (skipped without JOEY_PG_URL).
E2E_STATE=postgres exec bash "$(dirname "$0")/sync_log.sh"
