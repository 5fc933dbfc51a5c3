#!/usr/bin/env bash
# serve_workers.sh: joey serve --worker and a joey worker: live progress of a job, the guard on a job and its approval (serve_workers.py).
exec python3 "$(dirname "$0")/serve_workers.py"
