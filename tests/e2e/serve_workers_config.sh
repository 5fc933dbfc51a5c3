#!/usr/bin/env bash
# serve_workers_config.sh: one config for a job across workers that do not share files (serve_workers_config.py).
exec python3 "$(dirname "$0")/serve_workers_config.py"
