#!/usr/bin/env bash
# run_incremental_float_mysql.sh: the FLOAT mark scenarios of run_incremental_float.sh with the
# warehouse in MariaDB (skipped when scripts/test.sh started no server).
E2E_BACKEND=mysql exec bash "$(dirname "$0")/run_incremental_float.sh"
