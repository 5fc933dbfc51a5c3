#!/usr/bin/env bash
# sync_log_mysql.sh: sync_log.sh with the log tables in MariaDB/MySQL (skipped without JOEY_MYSQL_URL).
E2E_LOG=mysql exec bash "$(dirname "$0")/sync_log.sh"
