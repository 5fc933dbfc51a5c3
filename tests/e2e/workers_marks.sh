#!/usr/bin/env bash
# workers_marks.sh: a worker job follows every incremental schedule as a single run does (workers_marks.py).
exec python3 "$(dirname "$0")/workers_marks.py"
