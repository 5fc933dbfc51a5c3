#!/usr/bin/env bash
# run_incremental_postgres.sh: the incremental-schedule scenarios of run_incremental.sh with the
# warehouse in PostgreSQL (skipped when scripts/test.sh started no server).
E2E_BACKEND=postgres exec bash "$(dirname "$0")/run_incremental.sh"
