#!/usr/bin/env bash
# run_incremental_float_postgres.sh: the FLOAT mark scenarios of run_incremental_float.sh with the
# warehouse in PostgreSQL (skipped when scripts/test.sh started no server).
E2E_BACKEND=postgres exec bash "$(dirname "$0")/run_incremental_float.sh"
