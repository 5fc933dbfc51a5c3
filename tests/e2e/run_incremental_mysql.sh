#!/usr/bin/env bash
# run_incremental_mysql.sh: the incremental-schedule scenarios of run_incremental.sh with the
# warehouse in MariaDB (skipped when scripts/test.sh started no server).
E2E_BACKEND=mysql exec bash "$(dirname "$0")/run_incremental.sh"
