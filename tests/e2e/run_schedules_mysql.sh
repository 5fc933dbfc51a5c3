#!/usr/bin/env bash
# run_schedules_mysql.sh: the scenarios of run_schedules.sh with the warehouse in MariaDB (skipped when scripts/test.sh started no server).
E2E_BACKEND=mysql exec bash "$(dirname "$0")/run_schedules.sh"
