#!/usr/bin/env bash
# run_modes_postgres.sh: the sync-mode scenarios of run_modes.sh with the warehouse in
# PostgreSQL (skipped when scripts/test.sh started no server).
E2E_BACKEND=postgres exec bash "$(dirname "$0")/run_modes.sh"
