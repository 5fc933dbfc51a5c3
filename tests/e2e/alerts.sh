#!/usr/bin/env bash
# alerts.sh: alerts end to end: every trigger and channel, signatures, deduplication, retries, the API (see alerts.py).
exec python3 "$(dirname "$0")/alerts.py"
