#!/usr/bin/env bash
# workers_alerts.sh: alerts of runs that only `joey worker` processes see (see workers_alerts.py).
exec python3 "$(dirname "$0")/workers_alerts.py"
