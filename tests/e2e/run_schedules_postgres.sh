#!/usr/bin/env bash
# run_schedules_postgres.sh: the scenarios of run_schedules.sh with the warehouse in PostgreSQL (skipped when scripts/test.sh started no server).
E2E_BACKEND=postgres exec bash "$(dirname "$0")/run_schedules.sh"
