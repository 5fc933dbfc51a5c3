#!/usr/bin/env bash
# run_modes_mysql.sh: the sync-mode scenarios of run_modes.sh with the warehouse in
# MariaDB (skipped when scripts/test.sh started no server).
E2E_BACKEND=mysql exec bash "$(dirname "$0")/run_modes.sh"
