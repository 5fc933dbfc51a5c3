#!/usr/bin/env bash
# alerts_stop.sh: joey serve stops promptly while an alert's webhook hangs (see alerts_stop.py).
exec python3 "$(dirname "$0")/alerts_stop.py"
